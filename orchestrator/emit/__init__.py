"""The plan rendered for the programs that consume it, and drawn as a graph.

``FORMATS`` names what ``plan --emit`` prints, here so that ``--help`` needs no emitter:
``plan`` (the plan itself) and one emitter of ``formats.EMITTERS`` for each of the rest.
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
