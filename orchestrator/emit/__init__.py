"""The plan rendered for the programs that consume it, and drawn as a graph.

``FORMATS`` are the ``--emit`` formats, in the order ``--help`` lists them: ``plan``
itself, then one per emitter of ``orchestrator.emit.formats``.  The list lives here, a
plain tuple, so that the command line can offer it without importing any emitter.
"""

FORMATS = (
    "plan",
    "rumprun-json",
    "qemu-append",
    "rumprun-bake-conf",
    "qemu-args",
    "xl",
    "solo5-manifest",
    "solo5-hvt",
    "solo5-spt",
)
