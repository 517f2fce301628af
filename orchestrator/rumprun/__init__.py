"""rumprun's own knowledge: its config dialects, what it reads at boot, rumprun-bake.

The dialect names live here, with no import, so that the command line can offer them
without loading what reads them.
"""

# The rumprun that reads the runtime config at boot: the released one (master), or the
# configuration specification's parser (spec).
DIALECTS = ("master", "spec")
DEFAULT_DIALECT = "master"
