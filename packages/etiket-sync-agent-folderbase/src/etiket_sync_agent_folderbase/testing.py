"""Generators of folderbase trees for tests, benchmarks and the demo (no pytest needed)."""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path
from typing import Any

from etiket_sync_agent_folderbase.info_file import INFO_FILE

__all__ = ["make_dataset", "make_demo_source", "png_bytes"]


def png_bytes(width: int = 16, height: int = 16, seed: int = 0) -> bytes:
    """A small valid PNG (a colour gradient), for thumbnails."""
    rows = b"".join(
        b"\x00" + bytes((x * 16 + seed) % 256 for x in range(width) for _ in range(3))
        for _ in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def make_dataset(
    root: Path,
    rel: str,
    *,
    name: str | None = None,
    files: dict[str, bytes] | None = None,
    info: str | None = None,
) -> Path:
    """Write a dataset folder with an info file (``info`` overrides the generated YAML)."""
    folder = root / rel
    folder.mkdir(parents=True, exist_ok=True)
    if info is None:
        info = (
            f"version: 0.1\ndataset_name: {name or folder.name}\n"
            "collected: 2024-05-01T10:00:00\ndescription: generated test dataset\n"
            "tags: [generated]\nattributes:\n  sample: chip-7\n  cooldown: 3\n"
        )
    (folder / INFO_FILE).write_text(info, encoding="utf-8")
    for rel_file, content in (files or {}).items():
        path = folder / rel_file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder


def make_demo_source(root: Path) -> dict[str, Any]:
    """A small realistic tree: sweeps as CSV, a figure as thumbnail, notes, a skipped scratch dir."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(6):
        csv = "frequency (Hz),amplitude (V)\n" + "".join(
            f"{4e9 + k * 1e6:.0f},{math.exp(-(((k - 50) / (8 + i)) ** 2)):.6f}\n"
            for k in range(100)
        )
        make_dataset(
            root,
            f"2024-05/resonator scan {i:02d}",
            info=(
                f"dataset_name: Resonator scan {i}\ncollected: 2024-05-0{1 + i}T09:30:00\n"
                f"description: Transmission of resonator R{i} vs frequency\n"
                f"tags: [resonator, spectroscopy]\nattributes:\n  sample: chip-7\n"
                f"  resonator: R{i}\nskip: ['scratch/**']\nthumbnails: ['figure.png']\n"
            ),
            files={
                "transmission.csv": csv.encode(),
                "figure.png": png_bytes(seed=i),
                "notes.txt": f"Resonator R{i}: fit pending.\n".encode(),
                "scratch/tmp.bin": b"\x00" * 128,
            },
        )
    return {"root_directory": str(root), "set_up": "demo-fridge"}
