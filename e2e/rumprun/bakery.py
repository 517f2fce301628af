"""From a case to a bootable image, through bakeplan's own outputs only.

For one case and one dialect: plan it (``--rumprun DIALECT``); when the case says
bakeplan must refuse it, stop there, before anything is baked. Otherwise emit the
rumprun-bake configuration, the runtime config bytes and the QEMU line, ask the
dialect's real ``rumprun-bake`` to ``describe`` the emitted configuration, compile a
probe per baked name (once per toolchain and name in a run), bake, and make the disk
images the plan's block devices need.

The work runs on a small thread pool (``Bakery.prefetch``) so that the next cases bake
while the test in front boots one; compiling and baking are separate processes, so two
workers keep both cores busy without waiting on each other.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rumprun import disks, net
from rumprun.cases import Case
from rumprun.proc import ToolFailed, run
from rumprun.tools import PROBE_C, TOOLCHAINS, Toolchain, bakeplan_command

MEMORY_MIB = 64
_CONF_NAME = re.compile(r"^conf\s+(\S+)", re.MULTILINE)
_DISK = re.compile(r"(?:ld|sd)\d+")  # virtio-blk and virtio-scsi disks


@dataclass(frozen=True)
class Refused:
    """bakeplan's answer to a config the dialect's rumprun cannot be given."""

    exit_code: int
    stderr: str
    workdir: Path


@dataclass(frozen=True)
class Baked:
    """A baked image with everything its boot needs."""

    case: Case
    dialect: str
    workdir: Path
    plan: dict[str, Any]
    bins: tuple[str, ...]
    described: tuple[str, ...]  # what rumprun-bake describe printed, in order
    describe_command: str
    images: dict[str, disks.Image]  # by block device name
    taps: dict[str, str]  # net device name -> the tap the QEMU line names
    qemu_line: str


Prepared = Baked | Refused


class Bakery:
    """Plans and bakes cases ahead of the tests that boot them."""

    def __init__(self, root: Path, *, workers: int = 2) -> None:
        self.root = root
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bake")
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], Future[Prepared]] = {}
        self._probes: dict[tuple[str, str], Future[Path]] = {}
        home = root / "home"
        self.env = dict(os.environ)
        self.env.pop("BAKEPLAN_REGISTRY", None)
        # bakeplan's user registry and caches stay inside the run: nothing of the
        # developer's own is read, nothing of the run is left behind.
        self.env["XDG_CONFIG_HOME"] = str(home / "config")
        self.env["XDG_CACHE_HOME"] = str(home / "cache")
        # Registry commands name the reference delegates, installed beside bakeplan.
        bindir = str(Path(bakeplan_command()[0]).parent)
        self.env["PATH"] = os.pathsep.join([bindir, self.env.get("PATH", "")])

    def prefetch(self, case: Case, dialect: str) -> Future[Prepared]:
        with self._lock:
            key = (case.name, dialect)
            if key not in self._jobs:
                self._jobs[key] = self._pool.submit(self._prepare, case, dialect)
            return self._jobs[key]

    def get(self, case: Case, dialect: str) -> Prepared:
        return self.prefetch(case, dialect).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- the steps --------------------------------------------------------------------

    def bakeplan(
        self, *args: str | Path, cwd: Path, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run([*bakeplan_command(), *map(str, args)], cwd=cwd, env=self.env, check=check)

    def _prepare(self, case: Case, dialect: str) -> Prepared:
        work = self.root / f"{case.name}-{dialect}"
        work.mkdir(parents=True)
        config = self._config(case, work)
        bins = case.bins or _bins_of(config)
        args: list[str | Path] = [config, "-r", self._registry(case, work)]
        if case.bake_config:
            args += ["-b", case.bake_config]
        for conf in case.bake_conf:
            args += ["--bake-conf", case.folder / conf]
        for name in bins:
            args += ["--bin", name]
        args += ["--rumprun", dialect]
        if case.pad_to is not None:
            self._pad(config, args, case.pad_to, work)

        planned = self.bakeplan("plan", *args, "-o", work / "plan.json", cwd=work, check=False)
        if case.refusal(dialect):
            # Refused or not, nothing of a config the dialect cannot take is baked.
            return Refused(planned.returncode, planned.stderr, work)
        if planned.returncode != 0:
            raise ToolFailed(
                f"bakeplan plan exited {planned.returncode} for {case.name} ({dialect}):\n"
                f"{planned.stderr}"
            )
        plan = json.loads((work / "plan.json").read_text())
        if plan["runtime"].get("dialect") != dialect:
            raise ToolFailed(
                f"{case.name}: planned with --rumprun {dialect}, the plan's runtime.dialect "
                f"is {plan['runtime'].get('dialect')!r}"
            )

        self.bakeplan("plan", *args, "--emit", "rumprun-bake-conf", "-o", "plan.conf", cwd=work)
        self.bakeplan("plan", *args, "--emit", "rumprun-json", "-o", "runtime.json", cwd=work)
        images = self._images(case, plan, work)
        taps = {
            d["name"]: net.tap_name(i)
            for i, d in enumerate(x for x in plan["devices"] if x["kind"] == "net")
        }
        host = [f"kernel={work}/kernel.bin", f"config={work}/runtime.json"]
        host += [f"memory={MEMORY_MIB}"]
        host += [f"disk.{name}={work}/{name}.img" for name in images]
        host += [f"tap.{name}={tap}" for name, tap in taps.items()]
        hosts = [a for h in host for a in ("--host", h)]
        self.bakeplan("plan", *args, "--emit", "qemu-args", *hosts, "-o", "qemu-args", cwd=work)
        describe, described = self._bake(case, TOOLCHAINS[dialect], bins, work)
        return Baked(
            case=case,
            dialect=dialect,
            workdir=work,
            plan=plan,
            bins=tuple(bins),
            described=tuple(described),
            describe_command=shlex.join(map(str, describe)),
            images=images,
            taps=taps,
            qemu_line=(work / "qemu-args").read_text().strip(),
        )

    def _bake(
        self, case: Case, toolchain: Toolchain, bins: Sequence[str], work: Path
    ) -> tuple[list[str | Path], list[str]]:
        """Ask rumprun-bake to describe the emitted config, then bake the probes with it
        into ``kernel.bin``; the describe command and what it printed."""
        names = _CONF_NAME.findall((work / "plan.conf").read_text())
        if len(names) != 1:
            raise ToolFailed(f"{work}/plan.conf defines {names or 'no config'}, not one")
        # A base config of the case's own file is defined there, read before the plan's.
        confs: list[str | Path] = [a for c in case.bake_conf for a in ("-c", case.folder / c)]
        confs += ["-c", work / "plan.conf"]
        describe: list[str | Path] = [toolchain.bake, *confs, "describe", names[0]]
        described = run(describe, cwd=work).stdout.split()
        probes = [self._probe(toolchain, name) for name in bins]
        run([toolchain.bake, *confs, names[0], "kernel.bin", *probes], cwd=work, timeout=300)
        return describe, described

    def _config(self, case: Case, work: Path) -> Path:
        """The config to plan: the case's own, upgraded from its legacy file, or a copy
        that ``_pad`` will pad."""
        if case.legacy is not None:
            upgraded = work / "config.json"
            self.bakeplan("upgrade", case.folder / case.legacy, "-o", upgraded, cwd=work)
            return upgraded
        assert case.config is not None
        if case.pad_to is None:
            return case.folder / case.config
        copy = work / "config.json"
        copy.write_text((case.folder / case.config).read_text())
        return copy

    def _pad(self, config: Path, args: Sequence[str | Path], size: int, work: Path) -> None:
        """Pad ``env.BAKEPLAN_PAD`` in ``config`` (the run's own copy) so that the runtime
        config bakeplan emits is ``size`` bytes: the value appears once, unescaped, in
        both dialects, so each byte of it is a byte of the emitted text."""
        data = json.loads(config.read_text())
        data.setdefault("env", {})["BAKEPLAN_PAD"] = ""
        config.write_text(json.dumps(data))
        emitted = work / "unpadded.json"
        self.bakeplan("plan", *args, "--emit", "rumprun-json", "-o", emitted, cwd=work)
        missing = size - len(emitted.read_bytes())
        if missing < 0:
            raise ToolFailed(f"{config}: the runtime config is over {size} bytes already")
        data["env"]["BAKEPLAN_PAD"] = "x" * missing
        config.write_text(json.dumps(data))

    def _registry(self, case: Case, work: Path) -> Path:
        """The case's registry (an empty one by default), copied so that its mode is
        0644 whatever the checkout's umask: bakeplan refuses one others may write."""
        registry = work / "registry.json"
        text = (case.folder / case.registry).read_text() if case.registry else ""
        registry.write_text(text or '{"delegates": []}\n')
        registry.chmod(0o644)
        return registry

    def _images(self, case: Case, plan: dict[str, Any], work: Path) -> dict[str, disks.Image]:
        """An image for each disk the plan attaches through QEMU."""
        images = {}
        for device in plan["devices"]:
            name = device["name"]
            if device["kind"] == "block" and _DISK.fullmatch(name):
                image = disks.image_from_spec(name, case.disks.get(name, "iso"))
                disks.make(image, work / f"{name}.img")
                images[name] = image
        unused = sorted(case.disks.keys() - images.keys())
        if unused:
            raise ToolFailed(f"{case.name}/case.json gives disks {unused} the plan does not attach")
        return images

    def _probe(self, toolchain: Toolchain, name: str) -> Path:
        """The probe compiled under ``name`` (rumprun-bake records a binary's basename),
        once per toolchain and name in a run."""
        key = (toolchain.dialect, name)
        with self._lock:
            job = self._probes.get(key)
            mine = job is None
            if job is None:
                job = self._probes[key] = Future()
        if mine:
            try:
                job.set_result(self._compile(toolchain, name))
            except BaseException as exc:
                job.set_exception(exc)
        return job.result()

    def _compile(self, toolchain: Toolchain, name: str) -> Path:
        out = self.root / f"probe-{toolchain.dialect}" / _safe(name) / name
        out.parent.mkdir(parents=True)
        image = json.dumps(name)  # a C string literal for these plain names
        run([toolchain.cc, "-O2", "-Wall", f"-DPROBE_IMAGE={image}", "-o", out, PROBE_C])
        return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _bins_of(config: Path) -> tuple[str, ...]:
    rc: Sequence[dict[str, Any]] = json.loads(config.read_text()).get("rc") or []
    names: list[str] = []
    for entry in rc:
        name = Path(entry["bin"]).name
        if name not in names:
            names.append(name)
    return tuple(names) or ("probe",)
