"""bakeplan's reference delegates, installed as commands.

``mirage-net-config`` and ``rumprun-config``; the folder installs as ``bakeplan_delegates``.
"""
