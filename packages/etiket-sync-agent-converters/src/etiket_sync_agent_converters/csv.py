"""csv converters (not implemented yet: registered so discovery lists them)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from etiket_sync_agent import FileConverter
from etiket_sync_agent.errors import NotImplementedYetError

__all__ = ["CSVToNetCDF"]


class CSVToNetCDF(FileConverter):
    """csv → nc (not implemented yet)."""

    input_type: ClassVar[str] = "csv"
    output_type: ClassVar[str] = "nc"
    description: ClassVar[str] = "csv → nc"
    implemented: ClassVar[bool] = False

    def convert(self, input_path: Path, output_dir: Path) -> Path:
        raise NotImplementedYetError("the csv → nc converter is not implemented yet")
