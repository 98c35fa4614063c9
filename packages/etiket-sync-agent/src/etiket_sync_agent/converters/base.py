"""The file-converter contract.

A converter turns one input file (or folder, e.g. ``x.zarr``) into one output file, e.g. CSV into
HDF5-netCDF. Sources that support converters (folderbase) pick them by ``input_type`` and upload both
the original and the converted file. Register a converter in the entry-point group
``etiket_sync_agent.converters``; the entry-point name is the converter's name.
"""

from __future__ import annotations

import abc
import inspect
import re
from pathlib import Path
from typing import Any, ClassVar

from etiket_sync_agent.errors import PluginContractError

__all__ = ["FileConverter", "check_converter_class"]

_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")


def check_converter_class(cls: type) -> None:
    """Check a converter class's ClassVars; raise PluginContractError naming the problem."""
    if not isinstance(cls, type) or not issubclass(cls, FileConverter):
        raise PluginContractError(f"{cls!r} is not a subclass of FileConverter")
    for attribute in ("input_type", "output_type"):
        value = getattr(cls, attribute, None)
        if not isinstance(value, str) or not _TYPE_RE.match(value):
            raise PluginContractError(
                f"{cls.__module__}.{cls.__qualname__}.{attribute}: must be a lower-case file "
                f"type without dot such as 'csv' or 'nc', got {value!r}"
            )
    supported = getattr(cls, "plugin_api", None)
    if not isinstance(supported, tuple) or not all(isinstance(v, int) for v in supported):
        raise PluginContractError(
            f"{cls.__module__}.{cls.__qualname__}.plugin_api: must be a tuple of ints, e.g. (1,)"
        )


class _ConverterMeta(abc.ABCMeta):
    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> None:
        super().__init__(name, bases, namespace)
        if not inspect.isabstract(cls):
            check_converter_class(cls)


class FileConverter(metaclass=_ConverterMeta):
    """Base class of file converters.

    ClassVars: ``input_type`` (the input's suffix without the dot, lower case: ``csv``, ``zarr``),
    ``output_type`` (the output's: ``nc``, ``hdf5``, ``zip``), ``plugin_api``.
    """

    input_type: ClassVar[str]
    output_type: ClassVar[str]
    plugin_api: ClassVar[tuple[int, ...]] = (1,)
    #: Short human description shown by ``etiket-sync backends``.
    description: ClassVar[str] = ""
    #: False while ``convert`` is still the scaffold's skeleton ("not implemented yet").
    implemented: ClassVar[bool] = True

    @abc.abstractmethod
    def convert(self, input_path: Path, output_dir: Path) -> Path:
        """Convert ``input_path`` and write the result inside ``output_dir``; return its path.

        Never modify the input. Raise an exception with a clear message when the input is invalid.
        """

    def accepts(self, input_path: Path) -> bool:
        """Whether this converter handles ``input_path`` (default: by suffix)."""
        return input_path.suffix.lower().lstrip(".") == self.input_type
