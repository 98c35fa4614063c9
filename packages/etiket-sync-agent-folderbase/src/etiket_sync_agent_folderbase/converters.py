"""Which registered converter an info file's ``converters`` entry means.

An info file names converters by entry-point name (``csv-to-netcdf``) or, as the existing agent's
``generate_dataset_info`` writes them, by module and class
(``csv_to_hdf5_converter: {module: etiket_sync_agent_qh_converters.csv_to_hdf5, class:
CSVToHDF5Converter}``). A data folder must never make the agent import code, so a module/class
pair is only accepted when it is

- one of the existing agent's converters (package ``etiket_sync_agent_qh_converters``): mapped to
  our equivalent entry point, keeping the existing agent's output suffix so the converted file gets
  the same logical name as the one it uploaded (``data/x.csv`` → ``data/x.hdf5``); or
- the target of an installed entry point in the group ``etiket_sync_agent.converters``: that entry
  point is used.

Anything else is an item error that says how to register the converter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from etiket_sync_agent.errors import SyncError

__all__ = [
    "LEGACY_PACKAGE",
    "ConverterRef",
    "LegacyConverter",
    "legacy_converter",
    "registered_targets",
    "resolve_converter",
]

#: The existing agent's converter package.
LEGACY_PACKAGE = "etiket_sync_agent_qh_converters"


@dataclass(frozen=True)
class LegacyConverter:
    """One of the existing agent's converters and our equivalent."""

    legacy_class: str
    legacy_entry_point: str
    ours: str
    #: The existing agent's output suffix, used to name the converted file as it did.
    output_type: str


_LEGACY = (
    LegacyConverter("CSVToHDF5Converter", "csv_to_hdf5", "csv-to-netcdf", "hdf5"),
    LegacyConverter("ZarrToNETCDF4Converter", "zarr_to_NETCDF4", "zarr-to-netcdf", "hdf5"),
    LegacyConverter("ZarrToZipConverter", "zarr_to_zip", "zarr-to-zip", "zip"),
)


@dataclass(frozen=True)
class ConverterRef:
    """A resolved info-file entry."""

    #: The entry as the info file wrote it (for messages).
    spec: str
    #: The registered converter name to load.
    name: str
    #: Suffix of the converted file's logical name; ``None`` = the converter's ``output_type``.
    output_type: str | None = None


def _key(text: str) -> str:
    return text.strip().lower().replace("-", "_")


def legacy_converter(spec: str) -> LegacyConverter | None:
    """The existing agent's converter named by ``spec`` (``module:Class`` or entry-point name)."""
    module, sep, cls = spec.replace(" ", "").partition(":")
    if not sep:  # an entry-point name, or a dotted module.Class
        if "." in spec:
            module, _, cls = spec.strip().rpartition(".")
        else:
            wanted = _key(spec)
            return next((c for c in _LEGACY if _key(c.legacy_entry_point) == wanted), None)
    if module != LEGACY_PACKAGE and not module.startswith(LEGACY_PACKAGE + "."):
        return None
    for candidate in _LEGACY:
        if cls == candidate.legacy_class:
            return candidate
    # Unknown class name: fall back on the module's last part (``...csv_to_hdf5``).
    last = _key(module.rpartition(".")[2])
    return next((c for c in _LEGACY if _key(c.legacy_entry_point) == last), None)


def registered_targets() -> dict[str, str]:
    """``module:Class`` → entry-point name of every installed, usable converter."""
    from etiket_sync_agent.converters.registry import list_converters

    targets: dict[str, str] = {}
    for info in list_converters():
        if info.usable:
            targets[info.value.replace(" ", "")] = info.name
    return targets


def resolve_converter(
    spec: str, targets: Callable[[], Mapping[str, str]] = registered_targets
) -> ConverterRef:
    """The registered converter an info-file entry names; SyncError when there is none.

    Plain names are entry-point names (checked when loaded); anything with a module path is only
    accepted for the existing agent's converters or an installed entry point's target.
    """
    legacy = legacy_converter(spec)
    if legacy is not None:
        return ConverterRef(spec, legacy.ours, legacy.output_type)
    if ":" not in spec and "." not in spec:
        return ConverterRef(spec, spec)
    wanted = spec.replace(" ", "")
    if ":" not in wanted:
        module, _, cls = wanted.rpartition(".")
        wanted = f"{module}:{cls}"
    installed = dict(targets())
    if wanted in installed:
        return ConverterRef(spec, installed[wanted])
    if wanted.partition(":")[0].startswith(LEGACY_PACKAGE):
        known = ", ".join(f"{LEGACY_PACKAGE}...:{c.legacy_class}" for c in _LEGACY)
        raise SyncError(
            f"converter {spec!r} is not one of the existing agent's converters this agent knows "
            f"({known})"
        )
    raise SyncError(
        f"converter {spec!r} is not an installed converter: a data folder may not name code to "
        "import; register the class as an entry point in the group "
        "'etiket_sync_agent.converters' and name it by that entry point "
        f"(installed: {', '.join(sorted(set(installed.values()))) or 'none'})"
    )
