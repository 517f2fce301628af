"""The rumprun part of bakeplan's end-to-end suite: bakeplan's outputs fed to the real
rumprun-bake and booted under QEMU, with a probe program reporting what rumprun did.

``tools`` finds the real programs, ``proc`` runs them, ``disks`` and ``net`` make the
host side of a boot, ``cases`` reads the corpus in ``e2e/cases``, ``bakery`` plans and
bakes a case, ``report`` reads the probe's console lines and ``expect`` says, from the
plan alone, what the probe must have seen.
"""
