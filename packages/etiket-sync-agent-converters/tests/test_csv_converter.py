"""CSV → HDF5-netCDF: fidelity (values, NaN, types, units), header handling, determinism, errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5netcdf
import numpy as np
import pytest
import xarray as xr
from etiket_sync_agent_converters import ConversionError, CSVToNetCDF, read_csv_table

from etiket_sync_agent.connectors.context import SyncContext
from etiket_sync_agent.connectors.item import SyncItem
from etiket_sync_agent.converters import converters_for, load_converter


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _convert(tmp_path: Path, path: Path) -> Path:
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    return CSVToNetCDF().convert(path, out_dir)


def test_comma_file_with_header_units_round_trips(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "sweep.csv",
        "frequency (Hz),amplitude [V],count,label\n1e9,0.5,3,a\n2e9,,4,b c\n3e9,nan,5,\n",
    )
    before = path.read_bytes()
    output = _convert(tmp_path, path)
    assert path.read_bytes() == before, "the input was modified"
    assert output.suffix == ".nc"
    with h5netcdf.File(output, "r") as nc:
        assert list(nc.variables) == ["frequency", "amplitude", "count", "label"]
        assert nc.dimensions["index"].size == 3
        np.testing.assert_array_equal(nc["frequency"][...], [1e9, 2e9, 3e9])
        np.testing.assert_array_equal(nc["amplitude"][...], [0.5, np.nan, np.nan])
        assert nc["count"].dtype == np.int64
        np.testing.assert_array_equal(nc["count"][...], [3, 4, 5])
        labels = [v.decode() if isinstance(v, bytes) else v for v in nc["label"][...]]
        assert labels == ["a", "b c", ""]
        assert nc["frequency"].attrs["units"] == "Hz"
        assert nc["amplitude"].attrs["units"] == "V"
        assert nc["amplitude"].attrs["long_name"] == "amplitude"
        assert nc["amplitude"].attrs["csv_header"] == "amplitude [V]"
        assert "units" not in nc["count"].attrs
        assert nc.attrs["source_file"] == "sweep.csv"
        assert nc.attrs["csv_delimiter"] == "comma"
    with xr.open_dataset(output, engine="h5netcdf") as ds:
        assert ds["frequency"].dims == ("index",)
        np.testing.assert_array_equal(ds["amplitude"].values, [0.5, np.nan, np.nan])


def test_semicolon_file_with_decimal_commas_and_comments(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "eu.csv",
        "# cooldown 7\n# fridge B\n\nvoltage (mV);current (nA)\n1,5;-2,25\n3;4,0e1\n",
    )
    table = read_csv_table(path)
    assert table.delimiter == ";"
    assert table.header_line == 4
    assert table.comments == ["cooldown 7", "fridge B"]
    output = _convert(tmp_path, path)
    with h5netcdf.File(output, "r") as nc:
        np.testing.assert_array_equal(nc["voltage"][...], [1.5, 3.0])
        np.testing.assert_array_equal(nc["current"][...], [-2.25, 40.0])
        assert nc["current"].attrs["units"] == "nA"
        assert nc.attrs["comments"] == "cooldown 7\nfridge B"


def test_tab_file_with_a_units_row(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.tsv", "time\tsignal\tnote\n[s]\t(V)\t\n0\t1.5\tok\n1\t-inf\tx\n")
    table = read_csv_table(path)
    assert table.delimiter == "\t"
    assert table.units_line == 2
    assert [c.units for c in table.columns] == ["s", "V", None]
    assert table.rows == 2
    output = _convert(tmp_path, path)
    with h5netcdf.File(output, "r") as nc:
        np.testing.assert_array_equal(nc["time"][...], [0, 1])
        np.testing.assert_array_equal(nc["signal"][...], [1.5, -np.inf])
        assert nc["time"].attrs["units"] == "s"


def test_units_row_may_leave_columns_without_unit(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "u.csv", "time,signal,count,tag\r\ns,V,,[-]\r\n0,1.5,3,a\r\n1,2,4,b\r\n"
    )
    table = read_csv_table(path)
    assert table.units_line == 2
    assert [c.units for c in table.columns] == ["s", "V", None, "-"]
    assert [c.kind for c in table.columns] == ["int", "float", "int", "str"]


def test_first_row_with_a_missing_marker_is_data(tmp_path: Path) -> None:
    table = read_csv_table(_write(tmp_path, "m.csv", "name,value\nalice,N/A\nbob,3\n"))
    assert table.units_line is None
    assert table.rows == 2
    assert list(table.columns[1].values) == ["N/A", "3"]


def test_a_text_second_row_above_text_columns_is_data_not_units(tmp_path: Path) -> None:
    path = _write(tmp_path, "names.csv", "name,comment\nalice,first\nbob,second\n")
    table = read_csv_table(path)
    assert table.units_line is None
    assert table.rows == 2
    assert list(table.columns[0].values) == ["alice", "bob"]


def test_file_without_header_gets_generated_names(tmp_path: Path) -> None:
    path = _write(tmp_path, "raw.csv", "1,2.5\n3,4.5\n")
    table = read_csv_table(path)
    assert table.header_line is None
    assert [c.name for c in table.columns] == ["column_0", "column_1"]
    np.testing.assert_array_equal(table.columns[0].values, [1, 3])


def test_quoted_fields_duplicates_index_column_and_trailing_delimiter(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "odd.csv",
        'index,x,x,a/b,"quoted, name",\n0,1,2,3,"hello, world",\n1,4,5,6,plain,\n',
    )
    output = _convert(tmp_path, path)
    with h5netcdf.File(output, "r") as nc:
        assert list(nc.variables) == ["index", "x", "x_2", "a_b", "quoted, name"]
        assert "row" in nc.dimensions, "a column named index must not become the dimension"
        values = [v.decode() if isinstance(v, bytes) else v for v in nc["quoted, name"][...]]
        assert values == ["hello, world", "plain"]
        np.testing.assert_array_equal(nc["x_2"][...], [2, 5])


def test_header_only_gives_empty_variables(tmp_path: Path) -> None:
    path = _write(tmp_path, "h.csv", "a,b\n")
    output = _convert(tmp_path, path)
    with h5netcdf.File(output, "r") as nc:
        assert nc.dimensions["index"].size == 0
        assert nc["a"].shape == (0,)


def test_latin1_file_is_read(tmp_path: Path) -> None:
    path = _write(tmp_path, "l.csv", "temperature (\xb0C),x\n1,2\n".encode("latin-1"))
    table = read_csv_table(path)
    assert table.encoding == "latin-1"
    assert table.columns[0].units == "\xb0C"


def test_utf8_bom_is_not_part_of_the_first_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "bom.csv", "\ufeffa,b\n1,2\n".encode())
    assert read_csv_table(path).columns[0].name == "a"


def test_conversion_is_deterministic(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.csv", "a (V),b\n1,x\n2,y\n")
    first = hashlib.md5(_convert(tmp_path, path).read_bytes()).hexdigest()
    (tmp_path / "out" / "d.nc").unlink()
    second = hashlib.md5(_convert(tmp_path, path).read_bytes()).hexdigest()
    assert first == second


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", 1, "empty"),
        ("   \n\n", 1, "empty"),
        ("# only a comment\n", 1, "only comments"),
        ("a,b\n1,2\n3,4,5\n", 3, "ragged row: 3 fields"),
        ("# c\n\na;b\n1;2\n\n3\n", 6, "ragged row: 1 fields"),
        ('a,b\n1,"2\n3"\n5\n', 4, "ragged row: 1 fields"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = _write(tmp_path, "bad.csv", text)
    with pytest.raises(ConversionError) as info:
        _convert(tmp_path, path)
    message = str(info.value)
    assert str(path) in message
    assert f"line {line}" in message
    assert words in message
    assert info.value.line == line
    assert not list((tmp_path / "out").iterdir()), "a failed conversion left an output file"


def test_a_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "x.csv"
    folder.mkdir()
    with pytest.raises(ConversionError, match="is a folder"):
        read_csv_table(folder)


def test_registered_under_its_entry_point_name(tmp_path: Path) -> None:
    assert load_converter("csv-to-netcdf") is CSVToNetCDF
    assert ("csv-to-netcdf", CSVToNetCDF) in converters_for("csv")
    ctx = SyncContext(SyncItem(key="k"), tmp_path)
    converter = ctx.get_converter("csv-to-netcdf")
    assert isinstance(converter, CSVToNetCDF)
    assert converter.accepts(Path("data.CSV"))
    assert converter.accepts(Path("data.tsv"))
    assert not converter.accepts(Path("data.txt"))
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert not converter.accepts(folder)
