"""The subcommands of ``bakeplan``: one module each, holding its parser and its handler."""
