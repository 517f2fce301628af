"""Disk images behind a guest's block devices, each holding a file whose content names
the image, so the probe's report says which image rumprun mounted where.

An image is an ISO 9660 file system with Rock Ridge names (``genisoimage -R``) or ext2
(``mke2fs -t ext2 -I 128 -O none``), the two kinds both rumprun toolchains mount. An
image may hold further images, for a ``vnd`` device over a file on a mounted disk.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rumprun.proc import run
from rumprun.tools import which

PROBE_FILE = "bakeplan-probe.txt"
# The file system type rumprun reports for each image kind (statvfs f_fstypename).
FSTYPE = {"iso": "cd9660", "ext2": "ext2fs"}
MIB = 1 << 20


@dataclass(frozen=True)
class Image:
    """An image to make: its kind, the name its probe file gives, and images inside."""

    kind: str
    token: str
    inner: Mapping[str, Image] = field(default_factory=dict)

    @property
    def fstype(self) -> str:
        return FSTYPE[self.kind]

    def content(self) -> str:
        return f"bakeplan e2e image {self.token}\n"

    def find(self, relative: str) -> Image | None:
        """The image at ``relative`` inside this one."""
        return self.inner.get(relative.strip("/"))


def image_from_spec(token: str, spec: str | Mapping[str, object]) -> Image:
    """An Image from a case's disk entry: a kind, or {"kind": ..., "images": {...}}."""
    if isinstance(spec, str):
        return Image(_kind(spec, token), token)
    kind = _kind(str(spec.get("kind", "iso")), token)
    images = spec.get("images", {})
    if not isinstance(images, Mapping):
        raise TypeError(f"disk {token}: 'images' must be an object of name to kind")
    inner = {str(name): image_from_spec(f"{token}:/{name}", sub) for name, sub in images.items()}
    return Image(kind, token, inner)


def _kind(kind: str, token: str) -> str:
    if kind not in FSTYPE:
        raise ValueError(f"disk {token}: kind {kind!r} is not one of {sorted(FSTYPE)}")
    return kind


def make(image: Image, dest: Path) -> Path:
    """Write ``image`` (and the images inside it) to ``dest``."""
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        (tree / PROBE_FILE).write_text(image.content())
        for name, inner in image.inner.items():
            make(inner, tree / name)
        if image.kind == "iso":
            run([which("genisoimage") or "genisoimage", "-quiet", "-R", "-o", dest, tree])
        else:
            used = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
            size_mib = 2 + used // MIB
            dest.unlink(missing_ok=True)
            run(
                [
                    which("mke2fs") or "mke2fs",
                    "-q",
                    "-F",
                    "-t",
                    "ext2",
                    "-I",
                    "128",
                    "-O",
                    "none",
                    "-d",
                    tree,
                    dest,
                    f"{size_mib}M",
                ]
            )
    return dest
