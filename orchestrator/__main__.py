"""``python -m orchestrator``: the same program as the ``bakeplan`` command."""

from orchestrator.cli import main

raise SystemExit(main())
