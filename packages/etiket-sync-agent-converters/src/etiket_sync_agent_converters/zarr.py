"""zarr converters (not implemented yet: registered so discovery lists them)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from etiket_sync_agent import FileConverter
from etiket_sync_agent.errors import NotImplementedYetError

__all__ = ["ZarrToNetCDF", "ZarrToZip"]


class ZarrToNetCDF(FileConverter):
    """zarr → nc (not implemented yet)."""

    input_type: ClassVar[str] = "zarr"
    output_type: ClassVar[str] = "nc"
    description: ClassVar[str] = "zarr → nc"
    implemented: ClassVar[bool] = False

    def convert(self, input_path: Path, output_dir: Path) -> Path:
        raise NotImplementedYetError("the zarr → nc converter is not implemented yet")


class ZarrToZip(FileConverter):
    """zarr → zip (not implemented yet)."""

    input_type: ClassVar[str] = "zarr"
    output_type: ClassVar[str] = "zip"
    description: ClassVar[str] = "zarr → zip"
    implemented: ClassVar[bool] = False

    def convert(self, input_path: Path, output_dir: Path) -> Path:
        raise NotImplementedYetError("the zarr → zip converter is not implemented yet")
