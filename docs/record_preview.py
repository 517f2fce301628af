"""Records the dry-run preview of an example as an SVG for the README (``make images``).

Usage: python docs/record_preview.py CONFIG REGISTRY OUT.svg
"""

from __future__ import annotations

import io
import sys

from orchestrator.core import pipeline
from orchestrator.show import preview


def main(config: str, registry: str, out: str) -> None:
    data = pipeline.dry_run(pipeline.Options(config=config, registries=(registry,)))
    console = preview.console_for(io.StringIO(), width=100, record=True)
    console.force_terminal = True  # colours, as a person at a terminal sees them
    preview.render_dry_run(data, console)
    console.save_svg(out, title=f"bakeplan plan --dry-run {config}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
