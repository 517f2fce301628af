"""bakeplan's reference delegates, installed as commands.

``mirage-net-config``, ``rumprun-config`` and ``cni-ipam``; the folder installs as
``bakeplan_delegates``.
"""
