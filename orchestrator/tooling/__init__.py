"""The delegate tooling of ``bakeplan delegates``: managing entries and checking delegates."""
