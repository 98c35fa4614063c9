"""Digests of source trees, to prove the agent changed nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["tree_digest"]


def tree_digest(root: Path) -> dict[str, str]:
    """MD5 of every file below ``root`` (relative POSIX path → hex), to prove nothing changed."""
    digests: dict[str, str] = {}
    root = Path(root)
    if root.is_file():
        return {root.name: hashlib.md5(root.read_bytes(), usedforsecurity=False).hexdigest()}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            rel = path.relative_to(root).as_posix()
            digests[rel] = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    return digests
