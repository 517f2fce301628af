"""Plans read back and questioned: ``bakeplan why``, ``bakeplan diff`` and lock checks."""
