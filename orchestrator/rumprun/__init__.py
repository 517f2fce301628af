"""rumprun's own knowledge: its config dialects, what it reads at boot, rumprun-bake."""
