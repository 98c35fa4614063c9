"""The error converters raise for invalid input."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ConversionError"]


class ConversionError(ValueError):
    """The input cannot be converted; the message names the file (and line or key)."""

    def __init__(self, path: Path | str, problem: str, *, line: int | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.line = line
        where = f"{self.path}" if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {problem}")
