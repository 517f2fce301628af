"""bakeplan's outputs proven by the real rumprun: every case of ``e2e/cases`` is planned
for each dialect, linked by that dialect's real ``rumprun-bake`` from the emitted
configuration, and booted under QEMU with the emitted command line; a probe program
reports what rumprun configured, and the report must match the plan, fact by fact.

- ``test_refused``: a config the dialect's rumprun cannot be given is refused (exit 3,
  naming each pointer the case lists), and nothing is baked.
- ``test_link``: ``rumprun-bake describe`` of the emitted configuration is the plan's
  ``bake.libs``, in order, without the libraries the case forbids.
- ``test_boot``: the image boots to rumprun's ``halted`` and the probe saw what the
  plan says (``rumprun/expect.py`` reads the plan as the real rumprun reads it).

Off CI a test whose tools are missing skips with the reason; with ``CI=true`` it fails.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from needs import need
from rumprun import cases, expect, net, proc, report
from rumprun.bakery import Baked, Bakery, Prepared, Refused
from rumprun.tools import DIALECTS, TOOLCHAINS, dhcp_support, missing_host_tools, tap_support

# Emulated, on a shared machine: a boot takes about a second, a DHCP lease a few more.
BOOT_TIMEOUT = 120
CASES = cases.load_all()


def _params(test: str) -> list[object]:
    """Every case and dialect ``test`` applies to; a known bakeplan bug marks the test
    as failing until it is fixed."""
    return [
        pytest.param(
            case,
            dialect,
            id=f"{case.name}-{dialect}",
            marks=[pytest.mark.xfail(reason=bug, strict=True)]
            if (bug := case.known_bug(test, dialect))
            else [],
        )
        for case in CASES
        for dialect in DIALECTS
        if bool(case.refusal(dialect)) == (test == "refused")
    ]


def _unusable(dialect: str) -> str | None:
    return missing_host_tools() or TOOLCHAINS[dialect].missing()


@pytest.fixture(scope="session")
def bakery(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bakery]:
    """One bakery for the run; it starts on every selected case at once, in test order,
    so that baking runs ahead of booting."""
    shop = Bakery(tmp_path_factory.mktemp("rumprun"))
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        case, dialect = params.get("case"), params.get("dialect")
        if isinstance(case, cases.Case) and dialect and not _unusable(dialect):
            shop.prefetch(case, dialect)
    yield shop
    shop.close()


def _prepared(bakery: Bakery, case: cases.Case, dialect: str) -> Prepared:
    need(_unusable(dialect))
    return bakery.get(case, dialect)


@pytest.mark.parametrize(("case", "dialect"), _params("refused"))
def test_refused(bakery: Bakery, case: cases.Case, dialect: str) -> None:
    prepared = _prepared(bakery, case, dialect)
    assert isinstance(prepared, Refused)
    pointers = case.refusal(dialect)
    assert prepared.exit_code == 3, (
        f"{case.name}: the {dialect} rumprun cannot be given {', '.join(pointers)}, so "
        f"bakeplan must refuse it (exit 3); it exited {prepared.exit_code}"
        + (
            f":\n{prepared.stderr}"
            if prepared.stderr
            else f" and wrote {prepared.workdir}/plan.json"
        )
    )
    # A pointer counts as named when bakeplan names it or one beneath it.
    unnamed = [p for p in pointers if not re.search(re.escape(p) + r"(?![\w~.-])", prepared.stderr)]
    assert not unnamed, f"bakeplan's refusal does not name {unnamed}:\n{prepared.stderr}"


@pytest.fixture
def baked(bakery: Bakery, case: cases.Case, dialect: str) -> Baked:
    """The case planned, emitted, described and baked for the dialect."""
    prepared = _prepared(bakery, case, dialect)
    assert isinstance(prepared, Baked)
    return prepared


@pytest.fixture
def machine(baked: Baked, case: cases.Case) -> expect.Machine:
    """What the probe must see, from the plan (and the host side the harness made)."""
    pools = {name: net.DhcpPool(net.dhcp_network(i)) for i, name in enumerate(baked.taps)}
    seen = expect.from_plan(baked.plan, bins=baked.bins, disks=baked.images, pools=pools)
    seen.forbid_families = frozenset(case.forbid_families)
    return seen


@pytest.fixture
def network(baked: Baked, machine: expect.Machine) -> Iterator[None]:
    """The taps the QEMU line names, made for this boot and removed after it, and a
    DHCP server on each tap whose interface the plan configures by DHCP."""
    if not baked.taps:
        yield
        return
    need(tap_support())
    if machine.dhcp:
        need(dhcp_support())
    with net.taps(list(baked.taps.values())), contextlib.ExitStack() as servers:
        for interface, pool in machine.dhcp.items():
            servers.enter_context(
                net.dhcp_server(baked.taps[interface], pool, workdir=baked.workdir)
            )
        yield


# scope="module" keeps each case's tests together, so baking runs ahead of booting.
@pytest.mark.parametrize(("case", "dialect"), _params("link"), scope="module")
def test_link(baked: Baked, case: cases.Case) -> None:
    libs = list(baked.plan["bake"]["libs"])
    described = list(baked.described)
    assert described == libs, (
        f"`{baked.describe_command}` differs from the plan's bake.libs:\n"
        + "\n".join(
            difflib.unified_diff(libs, described, "plan bake.libs", "rumprun-bake", lineterm="")
        )
    )
    linked = [lib for lib in case.forbid_libs if lib in described]
    assert not linked, f"{case.name} must not link {linked}; `{baked.describe_command}` has them"


@pytest.mark.parametrize(("case", "dialect"), _params("boot"), scope="module")
@pytest.mark.usefixtures("network")
def test_boot(baked: Baked, machine: expect.Machine, case: cases.Case, dialect: str) -> None:
    assert "<host:" not in baked.qemu_line, f"a host value is missing: {baked.qemu_line}"
    log = baked.workdir / "console.log"
    console = proc.boot(shlex.split(baked.qemu_line), log=log, timeout=BOOT_TIMEOUT)
    reports = report.parse(console.text)
    warnings = baked.plan["warnings"]
    if case.panics:
        stopped = console.ended_by == "panic" and case.panics in console.text and not reports
        assert stopped, (
            f"{case.name} ({dialect}): the boot must panic with {case.panics!r} before any "
            f"program; it ended by {console.ended_by}, {len(reports)} programs reported\n"
            + proc.tail(console.text)
        )
        assert warnings, f"rumprun panics at boot on this plan, which warns of nothing ({log})"
        return
    if case.pad_to is not None:
        assert not warnings, f"the plan warns of a config rumprun boots: {warnings}"
    diffs = expect.compare(machine, reports)
    if not console.halted:
        diffs.insert(0, f"the boot ended by {console.ended_by}, not by rumprun's `halted`")
    assert not diffs, "\n".join(
        [
            f"{case.name} ({dialect}): what the probe saw differs from the plan",
            *(f"  - {line}" for line in diffs),
            f"booted: {baked.qemu_line}",
            f"runtime config: {Path(baked.workdir, 'runtime.json').read_text()}",
            f"console ({log}), last lines:",
            proc.tail(console.text),
        ]
    )
    # Passed: the image (17 MB) is not worth keeping; a failed one stays for a look.
    (baked.workdir / "kernel.bin").unlink()
