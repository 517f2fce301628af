"""Plans read back and questioned: ``bakeplan why`` and ``bakeplan diff``."""
