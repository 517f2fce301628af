"""bakeplan: split a rumprun unikernel config among the toolchains that own its parts.

The package is deliberately light at import time: ``bakeplan --version`` must not pay
for jsonschema or rich, so modules import those only where they are used.
"""

__version__ = "0.1.0"
