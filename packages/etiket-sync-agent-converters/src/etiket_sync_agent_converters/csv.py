"""CSV → HDF5-netCDF (netCDF4 written with ``h5netcdf``).

What is understood:

- **Encoding**: UTF-8 (with or without BOM); files that are not valid UTF-8 are read as Latin-1.
- **Comments**: lines starting with ``#`` before the header are kept in the global ``comments``
  attribute.
- **Delimiter**: comma, semicolon or tab, detected from the first 50 records (the one that splits
  every record into the same number of fields > 1; ties prefer tab, then semicolon, then comma).
  Quoted fields (``"a,b"``) follow the usual CSV rules.
- **Header**: the first record is a header unless all its fields are numbers (then the columns are
  named ``column_0``, ``column_1``, ...).
- **Units**: ``name (unit)`` or ``name [unit]`` in a header field, or a second *units row* right
  below the header: no field of it is a number, at least one numeric column has a unit in it, and
  above text columns it is empty or bracketed (``[s]``, ``(V)``). Units go into each variable's ``units`` attribute; the name without the unit is the
  variable name and ``long_name``.
- **Types**: a column of integers becomes int64, of numbers float64 (empty cells, ``nan``, ``inf``
  allowed; empty cells become NaN), anything else a variable-length UTF-8 string. With a semicolon
  or tab delimiter, decimal commas (``1,5``) are read as numbers too.
- **Layout**: one shared dimension ``index`` (renamed ``row`` if a column is called ``index``), one
  variable per column, in column order. The output is deterministic: the same CSV gives the same
  bytes.

Errors (raised as :class:`~etiket_sync_agent_converters.errors.ConversionError`, naming the file and
line): an empty file, a file with only comments, and ragged rows (a record with more or fewer
fields than the header).
"""

from __future__ import annotations

import csv as _csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import h5netcdf
import h5py
import numpy as np

from etiket_sync_agent import FileConverter
from etiket_sync_agent_converters.errors import ConversionError

__all__ = ["CSVToNetCDF", "CsvColumn", "CsvTable", "read_csv_table", "write_csv_netcdf"]

_CANDIDATES = ("\t", ";", ",")
_SAMPLE_RECORDS = 50
_UNIT_RE = re.compile(r"^(?P<name>.*?)\s*(?:\((?P<paren>[^()]*)\)|\[(?P<bracket>[^\[\]]*)\])\s*$")
_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(
    r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)$", re.IGNORECASE
)
_DECIMAL_COMMA_RE = re.compile(r"^[+-]?\d*,\d+(?:[eE][+-]?\d+)?$")
_INT64_MAX = 2**63 - 1


@dataclass
class CsvColumn:
    """One column: variable name, header text, unit and values (int64, float64 or str)."""

    name: str
    header: str
    long_name: str
    units: str | None
    values: np.ndarray[Any, Any]
    kind: str  # "int", "float" or "str"


@dataclass
class CsvTable:
    """A parsed CSV file."""

    columns: list[CsvColumn]
    delimiter: str
    rows: int
    header_line: int | None
    units_line: int | None
    encoding: str
    comments: list[str] = field(default_factory=list)


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _number(text: str, decimal_comma: bool) -> float | int | None:
    """The number a cell holds, or None when it is not one (empty cells are not numbers)."""
    value = text.strip()
    if not value:
        return None
    if _INT_RE.match(value):
        number = int(value)
        return number if abs(number) <= _INT64_MAX else float(number)
    if _FLOAT_RE.match(value):
        return float(value)
    if decimal_comma and _DECIMAL_COMMA_RE.match(value):
        return float(value.replace(",", "."))
    return None


def _records(text: str, delimiter: str, first_line: int) -> list[tuple[int, list[str]]]:
    """(line number where the record starts, fields) of every non-blank record."""
    reader = _csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    out: list[tuple[int, list[str]]] = []
    start = 1
    for fields in reader:
        if fields and any(f.strip() for f in fields):
            out.append((first_line + start - 1, fields))
        start = reader.line_num + 1
    return out


def _detect_delimiter(text: str) -> str:
    best: tuple[int, int, str] | None = None
    for rank, candidate in enumerate(_CANDIDATES):
        try:
            sample = _records(text, candidate, 1)[:_SAMPLE_RECORDS]
        except _csv.Error:
            continue
        if not sample:
            continue
        counts = {len(fields) for _, fields in sample}
        if len(counts) == 1 and (n := counts.pop()) > 1:
            score = (n, -rank, candidate)
            if best is None or score[:2] > best[:2]:
                best = score
    if best is not None:
        return best[2]
    # Nothing splits consistently: take the delimiter that splits the first line most (a ragged
    # file is then reported at its first bad line), else a single column.
    first = text.splitlines()[0] if text else ""
    splits = {c: first.count(c) for c in _CANDIDATES}
    chosen = max(_CANDIDATES, key=lambda c: (splits[c], -_CANDIDATES.index(c)))
    return chosen if splits[chosen] > 0 else ","


def _split_unit(header: str) -> tuple[str, str | None]:
    match = _UNIT_RE.match(header)
    if match is None or not match.group("name").strip():
        return header.strip(), None
    unit = match.group("paren")
    if unit is None:
        unit = match.group("bracket")
    return match.group("name").strip(), (unit or "").strip() or None


def _is_blank_or_bracketed(text: str) -> bool:
    value = text.strip()
    return not value or (len(value) >= 2 and value[0] + value[-1] in ("()", "[]"))


def _strip_unit_brackets(text: str) -> str | None:
    value = text.strip()
    if len(value) >= 2 and value[0] + value[-1] in ("()", "[]"):
        value = value[1:-1].strip()
    return value or None


def _unique_names(names: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for index, raw in enumerate(names):
        base = raw.replace("/", "_").strip() or f"column_{index}"
        name, n = base, 1
        while name in seen:
            n += 1
            name = f"{base}_{n}"
        seen.add(name)
        out.append(name)
    return out


def read_csv_table(path: Path) -> CsvTable:
    """Parse a CSV file (see the module docs for what is understood)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ConversionError(path, "is a folder, not a CSV file") from None
    text, encoding = _decode(path, data)
    if not text.strip():
        raise ConversionError(path, "the file is empty", line=1)
    lines = text.splitlines(keepends=True)
    comments: list[str] = []
    skipped = 0
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            comments.append(stripped[1:].strip())
        elif stripped:
            break
        skipped += 1
    body = "".join(lines[skipped:])
    if not body.strip():
        raise ConversionError(path, "the file holds only comments, no header or data", line=1)
    delimiter = _detect_delimiter("".join(lines[skipped : skipped + 4 * _SAMPLE_RECORDS]))
    decimal_comma = delimiter != ","
    try:
        records = _records(body, delimiter, skipped + 1)
    except _csv.Error as exc:
        raise ConversionError(path, f"not readable as CSV: {exc}") from None

    first_line, first = records[0]
    has_header = not all(_number(f, decimal_comma) is not None for f in first)
    width = len(first)
    header_line: int | None = first_line if has_header else None
    data_records = records[1:] if has_header else records
    for line_no, fields in data_records:
        if len(fields) != width:
            where = f"the header on line {first_line}" if has_header else f"line {first_line}"
            raise ConversionError(
                path,
                f"ragged row: {len(fields)} fields where {where} has {width} "
                f"(delimiter {delimiter!r})",
                line=line_no,
            )

    units_line: int | None = None
    row_units: list[str | None] | None = None
    if has_header and len(data_records) >= 2:
        candidate_line, candidate = data_records[0]
        below = data_records[1:]
        numeric_columns = [
            c
            for c in range(width)
            if any(f[c].strip() for _, f in below)
            and all(_number(f[c], decimal_comma) is not None or not f[c].strip() for _, f in below)
        ]
        text_columns = [c for c in range(width) if c not in numeric_columns]
        if (
            all(_number(f, decimal_comma) is None for f in candidate)
            and any(candidate[c].strip() for c in numeric_columns)
            and all(_is_blank_or_bracketed(candidate[c]) for c in text_columns)
        ):
            units_line = candidate_line
            row_units = [_strip_unit_brackets(f) for f in candidate]
            data_records = below

    headers = list(first) if has_header else [f"column_{i}" for i in range(width)]
    long_names: list[str] = []
    units: list[str | None] = []
    for index, header in enumerate(headers):
        name, unit = _split_unit(header) if has_header else (header, None)
        if row_units is not None:
            unit = row_units[index] or unit
        long_names.append(name)
        units.append(unit)
    names = _unique_names(long_names)

    columns: list[CsvColumn] = []
    for index in range(width):
        cells = [fields[index] for _, fields in data_records]
        values, kind = _column_values(cells, decimal_comma)
        columns.append(
            CsvColumn(
                name=names[index],
                header=headers[index],
                long_name=long_names[index] or names[index],
                units=units[index],
                values=values,
                kind=kind,
            )
        )
    # A trailing delimiter on every line makes an unnamed, empty last column: drop it.
    while (
        len(columns) > 1
        and has_header
        and not columns[-1].header.strip()
        and all(not fields[len(columns) - 1].strip() for _, fields in data_records)
    ):
        columns.pop()
    return CsvTable(
        columns=columns,
        delimiter=delimiter,
        rows=len(data_records),
        header_line=header_line,
        units_line=units_line,
        encoding=encoding,
        comments=comments,
    )


def _column_values(cells: list[str], decimal_comma: bool) -> tuple[np.ndarray[Any, Any], str]:
    numbers = [_number(c, decimal_comma) for c in cells]
    if all(n is not None or not c.strip() for n, c in zip(numbers, cells, strict=True)):
        if numbers and all(isinstance(n, int) for n in numbers):
            return np.array(numbers, dtype=np.int64), "int"
        floats = [math.nan if n is None else float(n) for n in numbers]
        return np.array(floats, dtype=np.float64), "float"
    return np.array(cells, dtype=object), "str"


def write_csv_netcdf(table: CsvTable, target: Path, *, source_name: str = "") -> Path:
    """Write a parsed table as netCDF4 (HDF5) with ``h5netcdf``."""
    names = {c.name for c in table.columns}
    dim = next(d for d in ("index", "row", "csv_row", "csv_row_index") if d not in names)
    with h5netcdf.File(target, "w") as nc:
        nc.dimensions[dim] = table.rows
        nc.attrs["converter"] = "etiket-sync-agent-converters csv-to-netcdf"
        if source_name:
            nc.attrs["source_file"] = source_name
        nc.attrs["csv_delimiter"] = {"\t": "tab", ";": "semicolon", ",": "comma"}[table.delimiter]
        nc.attrs["csv_encoding"] = table.encoding
        if table.comments:
            nc.attrs["comments"] = "\n".join(table.comments)
        for column in table.columns:
            if column.kind == "str":
                variable = nc.create_variable(
                    column.name, (dim,), h5py.string_dtype("utf-8"), data=column.values
                )
            else:
                variable = nc.create_variable(
                    column.name, (dim,), column.values.dtype, data=column.values
                )
            variable.attrs["long_name"] = column.long_name
            if column.header != column.long_name:
                variable.attrs["csv_header"] = column.header
            if column.units:
                variable.attrs["units"] = column.units
    return target


class CSVToNetCDF(FileConverter):
    """CSV → HDF5-netCDF: one variable per column on a shared ``index`` dimension, with units."""

    input_type: ClassVar[str] = "csv"
    output_type: ClassVar[str] = "nc"
    description: ClassVar[str] = "csv → HDF5-netCDF (columns as variables, header units)"

    def accepts(self, input_path: Path) -> bool:
        """``*.csv`` and ``*.tsv`` files (not folders)."""
        path = Path(input_path)
        return path.suffix.lower() in (".csv", ".tsv") and not path.is_dir()

    def convert(self, input_path: Path, output_dir: Path) -> Path:
        """Convert ``input_path`` into ``output_dir/<stem>.nc``; raise ConversionError if invalid."""
        input_path = Path(input_path)
        table = read_csv_table(input_path)
        target = Path(output_dir) / f"{input_path.stem or 'data'}.nc"
        try:
            return write_csv_netcdf(table, target, source_name=input_path.name)
        except Exception:
            target.unlink(missing_ok=True)
            raise
