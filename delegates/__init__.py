"""bakeplan's reference delegates, installed as commands (``mirage-net-config``, ``rumprun-config``)."""
