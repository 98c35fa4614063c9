"""The referenced arrays and xarray datasets of ``data.json``, merged into one netCDF file.

:func:`collect_results` loads what the references point at (npz keys, ``.npy`` files, netCDF/HDF5
files written by xarray) into one :class:`xarray.Dataset`; :func:`write_results_netcdf` is the only
place that writes it to disk (xarray with the h5netcdf engine), so it can be switched to the core's
shared netCDF writer later without touching the rest.

Naming: the variables, coordinates and dimensions of the first xarray file keep their names; a
later file whose names clash (different values, sizes or attributes) gets its names prefixed with
its place in the results tree (``ds_fit.amplitude``). An array from an npz key becomes the variable
named after its place in the tree (``raw.q1.amplitudes``) with dimensions
``<name>_dim_<axis>``. Every variable carries the reference it came from in ``qualibrate_ref``.
"""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from etiket_sync_agent_qualibrate.node import Reference

__all__ = ["MergedResults", "collect_results", "write_results_netcdf"]

_XARRAY_SUFFIXES = {".h5", ".hdf5", ".nc", ".netcdf", ".nc4"}


@dataclass
class MergedResults:
    """The merged dataset and what could not be merged (human-readable reasons)."""

    dataset: xr.Dataset
    problems: list[str] = field(default_factory=list)
    sources: int = 0


def _load_npz(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    with np.load(path, allow_pickle=False) as archive:
        for key in archive.files:
            try:
                arrays[key] = np.asarray(archive[key])
            except ValueError:
                continue  # object array: needs pickle, which is never loaded
    return arrays


def _array_dataset(name: str, values: np.ndarray[Any, Any], ref: Reference) -> xr.Dataset:
    dims = tuple(f"{name}_dim_{axis}" for axis in range(values.ndim))
    variable = xr.Variable(dims, values, attrs={"qualibrate_ref": ref.text})
    return xr.Dataset({name: variable})


def _prefixed(ds: xr.Dataset, prefix: str) -> xr.Dataset:
    names = {str(n): f"{prefix}.{n}" for n in (*ds.variables, *ds.dims)}
    renamed: xr.Dataset = ds.rename(names)
    return renamed


def _merge(into: xr.Dataset, part: xr.Dataset, prefix: str) -> xr.Dataset:
    try:
        return xr.merge(
            [into, part], compat="identical", join="exact", combine_attrs="drop_conflicts"
        )
    except (ValueError, xr.MergeError):
        return xr.merge(
            [into, _prefixed(part, prefix)],
            compat="identical",
            join="exact",
            combine_attrs="drop_conflicts",
        )


def collect_results(folder: Path, references: list[Reference]) -> MergedResults:
    """Load every array/xarray reference of a node folder into one dataset.

    Missing files, missing npz keys, unreadable files and object arrays are reported in
    ``problems`` (the rest is still merged).
    """
    merged = xr.Dataset()
    problems: list[str] = []
    sources = 0
    npz_cache: dict[str, dict[str, np.ndarray[Any, Any]] | None] = {}
    for ref in references:
        path = folder / ref.file
        suffix = Path(ref.file).suffix.lower()
        if suffix == ".npz":
            if ref.file not in npz_cache:
                try:
                    npz_cache[ref.file] = _load_npz(path) if path.is_file() else None
                except (OSError, ValueError, zipfile.BadZipFile) as exc:
                    problems.append(f"{ref.file} cannot be read: {exc}")
                    npz_cache[ref.file] = None
                    continue
            arrays = npz_cache[ref.file]
            if arrays is None:
                continue
            wanted = [ref.key] if ref.key is not None else sorted(arrays)
            for key in wanted:
                if key not in arrays:
                    problems.append(f"{ref.text} ({ref.tree_path}): no such array in {ref.file}")
                    continue
                name = ref.tree_path if ref.key is not None else f"{ref.tree_path}.{key}"
                merged = _merge(merged, _array_dataset(name, arrays[key], ref), name)
                sources += 1
        elif suffix == ".npy":
            if not path.is_file():
                continue
            try:
                values = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                problems.append(f"{ref.file} cannot be read: {exc}")
                continue
            merged = _merge(merged, _array_dataset(ref.tree_path, values, ref), ref.tree_path)
            sources += 1
        elif suffix in _XARRAY_SUFFIXES:
            if not path.is_file():
                continue
            try:
                with xr.open_dataset(path, engine="h5netcdf") as opened:
                    part = opened.load()
            except Exception as exc:
                problems.append(f"{ref.file} is not a readable netCDF4 file: {exc}")
                continue
            for name in part.variables:
                part[name].attrs.setdefault("qualibrate_ref", ref.text)
            merged = _merge(merged, part, ref.tree_path)
            sources += 1
    return MergedResults(merged, problems, sources)


def write_results_netcdf(dataset: xr.Dataset, target: Path) -> Path:
    """Write the merged results as netCDF4/HDF5 (xarray, h5netcdf engine).

    Complex values are stored as HDF5 compound types (h5netcdf's ``invalid_netcdf``), as xarray
    reads them back.
    """
    complex_values = any(np.iscomplexobj(v.values) for v in dataset.variables.values())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are writing invalid netcdf features")
        dataset.to_netcdf(target, engine="h5netcdf", invalid_netcdf=complex_values)
    return target
