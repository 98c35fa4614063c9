"""Generators of realistic Quantify data directories for tests, benchmarks and the demo.

The files are laid out the way quantify-core writes them (no quantify install needed):

- ``<root>/YYYYmmDD/<tuid>-<name>/dataset.hdf5``: netCDF4 through ``h5netcdf`` with
  ``invalid_netcdf=True`` (booleans as HDF5 booleans, complex values as compounds) or, like
  Quantify in 2020-2021, netCDF3 written with scipy under the same name. One dimension ``dim_0``;
  settables ``x0..`` with ``name``/``long_name``/``units``/``batched``; gettables ``y0..`` NaN until
  measured, with a ``coordinates`` attribute naming the settables; global ``tuid``, ``name``,
  ``grid_2d``, ``grid_2d_uniformly_spaced``, ``1d_2_settables_uniformly_spaced`` (+ ``xlen``/``ylen``
  for grids). ``versioned=True`` writes a ``quantify_dataset_version`` dataset whose attribute
  values are JSON strings;
- ``snapshot.json`` (optionally ``.gz``/``.bz2``/``.xz``), optional ``metadata.json``;
- ``analysis_<Name>/`` with ``dataset_processed.hdf5``, ``quantities_of_interest.json``,
  ``fit_results/*.txt`` and ``figs_mpl/*.png``/``*.svg``.

Like Quantify's MeasurementControl, :class:`LiveRun` rewrites the whole ``dataset.hdf5`` in place
(truncate + write, not atomic) each time it adds points.
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import hashlib
import json
import lzma
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "LiveRun",
    "Param",
    "RunSpec",
    "grid_setpoints",
    "make_demo_source",
    "make_tuid",
    "png_bytes",
    "spec_1d",
    "spec_2d",
    "spec_complex",
    "write_dataset_file",
    "write_experiment",
    "write_folder_name_cases",
]

Format = Literal["hdf5", "netcdf3"]
Compression = Literal["", "gz", "bz2", "xz"]


@dataclass(frozen=True)
class Param:
    """A settable or gettable as Quantify records it."""

    name: str
    long_name: str
    units: str
    is_complex: bool = False


@dataclass
class RunSpec:
    """What a run measures: settables with their sweep axes, gettables, and how it is stored."""

    settables: list[Param]
    axes: list[np.ndarray[Any, Any]]
    gettables: list[Param]
    #: ``grid_setpoints`` over the axes (2 axes → ``grid_2d``), else the axes zipped point-wise.
    grid: bool = True
    fmt: Format = "hdf5"
    versioned: bool = False
    extra_attrs: dict[str, Any] = field(default_factory=dict)

    def setpoints(self) -> np.ndarray[Any, Any]:
        if self.grid:
            return grid_setpoints(self.axes)
        return np.column_stack(self.axes)

    @property
    def is_grid_2d(self) -> bool:
        return self.grid and len(self.axes) == 2


def spec_1d(points: int = 101, fmt: Format = "hdf5") -> RunSpec:
    """A resonator spectroscopy: frequency → magnitude and phase."""
    return RunSpec(
        settables=[Param("frequency", "Frequency", "Hz")],
        axes=[np.linspace(7.0e9, 7.2e9, points)],
        gettables=[Param("magn", "Magnitude", "V"), Param("phase", "Phase", "deg")],
        fmt=fmt,
    )


def spec_2d(nx: int = 21, ny: int = 11, fmt: Format = "hdf5") -> RunSpec:
    """A chevron: pulse duration (x0, fastest) x amplitude (x1) → excited-state population."""
    return RunSpec(
        settables=[Param("duration", "Pulse duration", "s"), Param("amp", "Amplitude", "V")],
        axes=[np.linspace(0, 200e-9, nx), np.linspace(-0.5, 0.5, ny) ** 3],
        gettables=[
            Param("pop", "Excited state population", ""),
            Param("iq_i", "I quadrature", "V"),
        ],
        fmt=fmt,
    )


def spec_complex(points: int = 64, versioned: bool = True) -> RunSpec:
    """A newer-Quantify trace: time → complex IQ signal, JSON-encoded attributes."""
    return RunSpec(
        settables=[Param("t", "Time", "s")],
        axes=[np.linspace(0, 1e-6, points)],
        gettables=[Param("iq", "IQ signal", "V", is_complex=True), Param("amp", "Amplitude", "V")],
        versioned=versioned,
    )


def grid_setpoints(axes: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    """All combinations of the axes, the first axis varying fastest (Quantify's grid order)."""
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.column_stack([m.ravel(order="F") for m in mesh])


def make_tuid(when: dt.datetime, salt: object = 0) -> str:
    """A TUID for ``when`` (milliseconds kept) with a deterministic 6-character suffix."""
    suffix = hashlib.sha1(f"{when.isoformat()}-{salt}".encode()).hexdigest()[:6]
    return f"{when:%Y%m%d-%H%M%S}-{when.microsecond // 1000:03d}-{suffix}"


def _values(
    spec: RunSpec, setpoints: np.ndarray[Any, Any], seed: int
) -> list[np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    n = setpoints.shape[0]
    x = setpoints[:, 0]
    span = float(np.ptp(x)) or 1.0
    u = (x - float(x.min())) / span
    out: list[np.ndarray[Any, Any]] = []
    for k, param in enumerate(spec.gettables):
        base = 1 - 0.8 / (1 + ((u - 0.5) / (0.05 + 0.02 * k)) ** 2)
        if setpoints.shape[1] > 1:
            base = base * np.cos(6 * np.pi * u * (1 + setpoints[:, 1]))
        noise = rng.normal(0, 0.01, n)
        if param.is_complex:
            out.append((base + noise) * np.exp(1j * 2 * np.pi * u * (k + 1)))
        else:
            out.append(base + noise + k)
    return out


def _json_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v) for k, v in attrs.items()}


def _param_attrs(param: Param, versioned: bool, main: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "name": param.name,
        "long_name": param.long_name,
        "units": param.units,
        "batched": False,
    }
    if versioned:
        attrs[main] = True
    return attrs


def _global_attrs(spec: RunSpec, tuid: str, name: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "tuid": tuid,
        "name": name,
        "grid_2d": spec.is_grid_2d,
        "grid_2d_uniformly_spaced": spec.is_grid_2d
        and all(np.allclose(np.diff(a), np.diff(a)[0]) for a in spec.axes),
        "1d_2_settables_uniformly_spaced": False,
    }
    if spec.is_grid_2d:
        attrs["xlen"] = len(spec.axes[0])
        attrs["ylen"] = len(spec.axes[1])
    if spec.versioned:
        attrs["quantify_dataset_version"] = "2.0.0"
    attrs.update(spec.extra_attrs)
    return attrs


def write_dataset_file(
    path: Path,
    spec: RunSpec,
    tuid: str,
    name: str,
    *,
    measured: int | None = None,
    seed: int = 0,
) -> None:
    """Write ``dataset.hdf5`` in place with the first ``measured`` points filled (None = all)."""
    setpoints = spec.setpoints()
    n = setpoints.shape[0]
    count = n if measured is None else max(0, min(measured, n))
    values = _values(spec, setpoints, seed)
    gettable_data = []
    for data in values:
        partial = np.full(n, np.nan, dtype=data.dtype)
        if data.dtype.kind == "c":
            partial = partial + 1j * np.nan
        partial[:count] = data[:count]
        gettable_data.append(partial)
    if spec.fmt == "netcdf3":
        _write_netcdf3(path, spec, tuid, name, setpoints, gettable_data)
    else:
        _write_hdf5(path, spec, tuid, name, setpoints, gettable_data)


def _write_hdf5(
    path: Path,
    spec: RunSpec,
    tuid: str,
    name: str,
    setpoints: np.ndarray[Any, Any],
    gettables: list[np.ndarray[Any, Any]],
) -> None:
    import h5netcdf

    coords = " ".join(f"x{i}" for i in range(len(spec.settables)))
    encode = _json_attrs if spec.versioned else (lambda a: a)
    with h5netcdf.File(str(path), "w", invalid_netcdf=True) as f:
        for key, value in encode(_global_attrs(spec, tuid, name)).items():
            f.attrs[key] = value
        f.dimensions = {"dim_0": setpoints.shape[0]}
        for i, param in enumerate(spec.settables):
            var = f.create_variable(
                f"x{i}", ("dim_0",), "f8", data=setpoints[:, i], fillvalue=np.nan
            )
            for key, value in encode(_param_attrs(param, spec.versioned, "is_main_coord")).items():
                var.attrs[key] = value
        for j, (param, data) in enumerate(zip(spec.gettables, gettables, strict=True)):
            if data.dtype.kind == "c":
                var = f.create_variable(f"y{j}", ("dim_0",), data.dtype, data=data)
            else:
                var = f.create_variable(f"y{j}", ("dim_0",), "f8", data=data, fillvalue=np.nan)
            for key, value in encode(_param_attrs(param, spec.versioned, "is_main_var")).items():
                var.attrs[key] = value
            var.attrs["coordinates"] = coords


def _nc3_attr(value: Any) -> Any:
    if isinstance(value, bool):
        return np.int8(1 if value else 0)
    return value


def _write_netcdf3(
    path: Path,
    spec: RunSpec,
    tuid: str,
    name: str,
    setpoints: np.ndarray[Any, Any],
    gettables: list[np.ndarray[Any, Any]],
) -> None:
    from scipy.io import netcdf_file

    if any(g.dtype.kind == "c" for g in gettables):
        raise ValueError("netCDF3 cannot hold complex values (Quantify never wrote such files)")
    coords = " ".join(f"x{i}" for i in range(len(spec.settables)))
    with netcdf_file(str(path), "w", version=2) as f:
        for key, value in _global_attrs(spec, tuid, name).items():
            setattr(f, key, _nc3_attr(value))
        f.createDimension("dim_0", setpoints.shape[0])
        for i, param in enumerate(spec.settables):
            var = f.createVariable(f"x{i}", "d", ("dim_0",))
            var[:] = setpoints[:, i]
            var._attributes["_FillValue"] = np.nan
            for key, value in _param_attrs(param, False, "").items():
                var._attributes[key] = _nc3_attr(value)
        for j, (param, data) in enumerate(zip(spec.gettables, gettables, strict=True)):
            var = f.createVariable(f"y{j}", "d", ("dim_0",))
            var[:] = data
            var._attributes["_FillValue"] = np.nan
            for key, value in _param_attrs(param, False, "").items():
                var._attributes[key] = _nc3_attr(value)
            var._attributes["coordinates"] = coords


def png_bytes(width: int = 24, height: int = 16, seed: int = 0) -> bytes:
    """A small valid PNG (a colour gradient) standing in for a matplotlib figure."""
    rows = b"".join(
        b"\x00" + bytes((x * 11 + y * 7 + seed) % 256 for x in range(width) for _ in range(3))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _snapshot(seed: int) -> dict[str, Any]:
    return {
        "instruments": {
            "meas_ctrl": {
                "name": "meas_ctrl",
                "parameters": {"soft_avg": {"value": 1, "unit": "", "label": "Soft averages"}},
            },
            "q0": {
                "name": "q0",
                "parameters": {
                    "freq_01": {"value": 5.1e9 + seed, "unit": "Hz", "label": "Qubit frequency"},
                    "mw_amp180": {"value": 0.25, "unit": "V", "label": "pi-pulse amplitude"},
                },
            },
        },
        "parameters": {},
    }


def _write_snapshot(folder: Path, seed: int, compression: Compression) -> None:
    data = json.dumps(_snapshot(seed), indent=4).encode()
    if compression == "gz":
        (folder / "snapshot.json.gz").write_bytes(gzip.compress(data, mtime=0))
    elif compression == "bz2":
        (folder / "snapshot.json.bz2").write_bytes(bz2.compress(data))
    elif compression == "xz":
        (folder / "snapshot.json.xz").write_bytes(lzma.compress(data))
    else:
        (folder / "snapshot.json").write_bytes(data)


def _write_analysis(folder: Path, spec: RunSpec, tuid: str, seed: int) -> None:
    import h5netcdf

    name = "Basic2DAnalysis" if spec.is_grid_2d else "Basic1DAnalysis"
    analysis = folder / f"analysis_{name}"
    (analysis / "figs_mpl").mkdir(parents=True, exist_ok=True)
    for j in range(len(spec.gettables)):
        figure = f"Heatmap x0x1-y{j}" if spec.is_grid_2d else f"Line plot x0-y{j}"
        (analysis / "figs_mpl" / f"{figure}.png").write_bytes(png_bytes(seed=seed + j))
        (analysis / "figs_mpl" / f"{figure}.svg").write_text(
            f'<svg xmlns="http://www.w3.org/2000/svg"><text>{figure}</text></svg>\n'
        )
    qoi = {"fit_success": True, "f0": {"value": 7.1e9, "stderr": 1.2e4, "unit": "Hz"}}
    (analysis / "quantities_of_interest.json").write_text(json.dumps(qoi, indent=4))
    (analysis / "fit_results").mkdir(exist_ok=True)
    (analysis / "fit_results" / "hanger_func_complex_SI.txt").write_text(
        "[[Model]]\n    Model(hanger_func_complex_SI)\n[[Fit Statistics]]\n    # fitting method"
        "   = leastsq\n    chi-square         = 0.0123\n"
    )
    with h5netcdf.File(str(analysis / "dataset_processed.hdf5"), "w", invalid_netcdf=True) as f:
        f.attrs["tuid"] = tuid
        f.dimensions = {"dim_0": 3}
        var = f.create_variable("Magnitude", ("dim_0",), "f8", data=np.arange(3.0) + seed)
        var.attrs["units"] = "V"


def write_experiment(
    root: Path,
    when: dt.datetime,
    name: str,
    spec: RunSpec | None = None,
    *,
    salt: object = 0,
    measured: int | None = None,
    seed: int = 0,
    snapshot: Compression | None = "",
    metadata: bool = False,
    analysis: bool = False,
    dataset: bool = True,
) -> tuple[str, Path]:
    """Write one experiment folder; returns ``(tuid, folder)``.

    ``measured`` leaves the run in progress (points after it NaN); ``snapshot=None`` writes none,
    otherwise the compression suffix; ``dataset=False`` leaves ``dataset.hdf5`` out.
    """
    spec = spec or spec_1d()
    tuid = make_tuid(when, salt)
    folder = root / tuid[:8] / (f"{tuid}-{name}" if name else tuid)
    folder.mkdir(parents=True, exist_ok=True)
    if dataset:
        write_dataset_file(folder / "dataset.hdf5", spec, tuid, name, measured=measured, seed=seed)
    if snapshot is not None:
        _write_snapshot(folder, seed, snapshot)
    if metadata:
        (folder / "metadata.json").write_text(json.dumps({"sample": "chip-7", "seed": seed}))
    if analysis:
        _write_analysis(folder, spec, tuid, seed)
    return tuid, folder


class LiveRun:
    """A run being acquired: every :meth:`advance` rewrites ``dataset.hdf5`` in place."""

    def __init__(
        self, root: Path, when: dt.datetime, name: str, spec: RunSpec | None = None, seed: int = 0
    ) -> None:
        self.spec = spec or spec_1d()
        self.seed = seed
        self.name = name
        self.measured = 0
        self.total = int(self.spec.setpoints().shape[0])
        self.tuid, self.folder = write_experiment(
            root, when, name, self.spec, measured=0, seed=seed
        )

    @property
    def path(self) -> Path:
        return self.folder / "dataset.hdf5"

    @property
    def done(self) -> bool:
        return self.measured >= self.total

    def advance(self, points: int) -> None:
        """Measure ``points`` more points and rewrite the file (like MeasurementControl)."""
        self.measured = min(self.total, self.measured + points)
        write_dataset_file(
            self.path, self.spec, self.tuid, self.name, measured=self.measured, seed=self.seed
        )

    def finish(self) -> None:
        """Measure the remaining points and write the final file."""
        self.advance(self.total)


def make_demo_source(root: Path) -> dict[str, Any]:
    """A small realistic directory: 1-D, 2-D grid, complex, netCDF3, compressed snapshots."""
    root.mkdir(parents=True, exist_ok=True)
    start = dt.datetime(2024, 3, 4, 9, 15, 0, 123000)
    runs: list[tuple[str, RunSpec, dict[str, Any]]] = [
        ("Resonator spectroscopy q0", spec_1d(), {"analysis": True, "metadata": True}),
        ("Chevron (amp=0.5) q0", spec_2d(), {"analysis": True}),
        ("Ramsey q0 = 20us. IQ", spec_complex(), {"snapshot": "gz"}),
        ("Old T1 netCDF3", spec_1d(51, fmt="netcdf3"), {"snapshot": "bz2"}),
        ("Old 2D netCDF3", spec_2d(9, 5, fmt="netcdf3"), {"snapshot": "xz"}),
    ]
    for i, (name, spec, options) in enumerate(runs):
        write_experiment(
            root, start + dt.timedelta(minutes=7 * i), name, spec, salt=i, seed=i, **options
        )
    return {"quantify_directory": str(root), "set_up": "demo-fridge"}


#: Folder-name styles seen in real data directories: style → folder name from the TUID.
FOLDER_NAME_CASES: dict[str, str] = {
    "dash": "{tuid}-T1 q0",
    "space": "{tuid} T1 q0",
    "underscore": "{tuid}_T1",
    "suffix": "{tuid}x",
    "inside": "copy of {tuid}-T1",
    "plain": "{tuid}",
}


def write_folder_name_cases(root: Path, when: dt.datetime) -> dict[str, str]:
    """One complete experiment per :data:`FOLDER_NAME_CASES` style; returns style → TUID.

    ``tools/check_folder_names.py`` opens the same folders with quantify-core's own
    ``load_dataset``; the tests check that discovery accepts exactly what it opens.
    """
    tuids: dict[str, str] = {}
    for index, (style, pattern) in enumerate(FOLDER_NAME_CASES.items()):
        tuid, folder = write_experiment(root, when + dt.timedelta(seconds=index), "x", salt=style)
        folder.rename(folder.parent / pattern.format(tuid=tuid))
        tuids[style] = tuid
    return tuids
