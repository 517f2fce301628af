"""Assembly's link and boot rules (``rumprun.LINK_RULES``): what the real toolchain needs,
found by linking and booting real images, refused when a delegate breaks it."""

from __future__ import annotations

import pytest

from orchestrator.core import plan
from orchestrator.core.protocol import Answer
from orchestrator.core.registry import BUILTIN
from orchestrator.core.routing import Run
from orchestrator.core.scheduler import Result
from orchestrator.errors import ConflictError, exit_code_of
from orchestrator.pointers import tokens_of
from orchestrator.rumprun.bake import BakeConfig, standard_book

HW = standard_book().get("hw_virtio")


def run(delegate: str, pointer: str, answer: Answer) -> Result:
    return Result(
        run=Run(delegate=delegate, pointer=pointer, tokens=tokens_of(pointer)),
        command=() if delegate == BUILTIN else (delegate,),
        request=b"",
        answer_bytes=b"",
        answer=answer,
    )


def rumprun_keeping(runtime: dict[str, object]) -> Result:
    return run(BUILTIN, "", Answer(replaced=True, replace=runtime))


def net(**components: tuple[str, ...]) -> Result:
    return run("mirage", "/net", Answer(replaced=False, **components))


RC = {"rc": [{"bin": "www"}]}


def test_removing_both_ip_stacks_is_refused_naming_the_delegate_and_the_boot_panic() -> None:
    results = [net(remove=("rumpnet_netinet", "rumpnet_netinet6")), rumprun_keeping(RC)]
    with pytest.raises(ConflictError) as caught:
        plan.assemble(HW, results)
    assert exit_code_of(caught.value) == 3
    assert caught.value.message == (
        "mirage removed rumpnet_netinet and rumpnet_netinet6, so bake config hw_virtio would "
        "link no rumpnet_netinet or rumpnet_netinet6: rumpnet_config panics at boot without "
        "an IP stack linked (netconfig: missing both inet and inet6)"
    )
    assert caught.value.hint and "keeps the other linked" in caught.value.hint


def test_removing_one_stack_boots_and_plans() -> None:
    built = plan.assemble(HW, [net(remove=("rumpnet_netinet",)), rumprun_keeping(RC)])
    assert "-lrumpnet_netinet" not in built.bake.libs
    assert "-lrumpnet_netinet6" in built.bake.libs


def test_removing_rumpnet_config_is_refused_it_does_not_link_without() -> None:
    with pytest.raises(ConflictError) as caught:
        plan.assemble(HW, [net(remove=("rumpnet_config",)), rumprun_keeping(RC)])
    assert "librumprun_base calls rumpnet_config's functions" in caught.value.message


def test_another_delegate_adding_a_stack_back_keeps_the_rule() -> None:
    results = [
        net(remove=("rumpnet_netinet", "rumpnet_netinet6")),
        run("v6", "/env", Answer(replaced=True, replace={}, add=("rumpnet_netinet6",))),
        rumprun_keeping(RC),
    ]
    assert "-lrumpnet_netinet6" in plan.assemble(HW, results).bake.libs


def test_a_base_config_that_breaks_a_rule_itself_is_only_warned_about() -> None:
    tiny = BakeConfig(name="hw_tiny", description="d", platform="hw", libs=("-lrumpvfs",))
    built = plan.assemble(tiny, [rumprun_keeping(RC)])
    messages = [w.message for w in built.warnings if w.by == "bakeplan"]
    assert messages == [
        "bake config hw_tiny links no rumpnet_config: librumprun_base calls rumpnet_config's "
        "functions, so the link fails without it"
    ]
