"""The probe's report, read back from the serial console.

Every line holding ``BAKEPLAN-PROBE `` carries one JSON fact (``e2e/probe/probe.c``
lists them); facts are grouped by the reporting process's pid, in the order each
program began. Kernel messages may stand between the lines; they are left alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MARK = "BAKEPLAN-PROBE "


class ReportError(AssertionError):
    """The console held a probe line that is not what the probe writes."""


@dataclass
class ProgramReport:
    """What one program of the image saw, fact by fact."""

    pid: int
    image: str = "?"
    facts: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # by mountpoint
    tmpfs: dict[str, dict[str, Any]] = field(default_factory=dict)  # by mountpoint
    sysctls: dict[str, dict[str, Any]] = field(default_factory=dict)  # by node name
    complete: bool = False
    last: str = "begin"

    def value(self, fact: str) -> Any:
        """A fact's value, or None when the probe did not report it."""
        entry = self.facts.get(fact)
        return None if entry is None else entry.get("value")

    def error(self, fact: str) -> str | None:
        entry = self.facts.get(fact)
        return None if entry is None else entry.get("error")

    def describe(self) -> str:
        argv = self.value("argv")
        return f"pid {self.pid} ({self.image}, argv {argv!r})"


def parse(console: str) -> list[ProgramReport]:
    """Each program's report, in the order the programs began."""
    reports: dict[int, ProgramReport] = {}
    for number, line in enumerate(console.splitlines(), 1):
        at = line.find(MARK)
        if at < 0:
            continue
        text = line[at + len(MARK) :].strip()
        try:
            fact = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReportError(
                f"console line {number}: a probe line that is not JSON ({exc}): {line!r}"
            ) from exc
        if not isinstance(fact, dict) or not isinstance(fact.get("pid"), int):
            raise ReportError(f"console line {number}: a probe fact without a pid: {line!r}")
        pid = fact["pid"]
        kind = str(fact.get("fact"))
        report = reports.setdefault(pid, ProgramReport(pid))
        report.last = kind
        if kind == "begin":
            report.image = str(fact.get("image", "?"))
        elif kind == "end":
            report.complete = True
        elif kind == "file":
            report.files[str(fact.get("mountpoint"))] = fact
        elif kind == "tmpfs":
            report.tmpfs[str(fact.get("mountpoint"))] = fact
        elif kind == "sysctl":
            report.sysctls[str(fact.get("name"))] = fact
        else:
            report.facts[kind] = fact
    return list(reports.values())
