"""load_table for .npz, .csv and .parquet files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seismo.models.data import load_table
from seismo.models.errors import DataError


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_npz_with_labels(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    path = tmp_path / "d.npz"
    np.savez(path, X=x, y=np.array([0, 1, 0, 0]))
    table = load_table(path)
    assert table.x.dtype == np.float32 and table.x.flags.c_contiguous
    np.testing.assert_array_equal(table.x, x)
    assert table.y is not None and table.y.tolist() == [0, 1, 0, 0]
    assert table.feature_names == ["f0", "f1", "f2"]
    normal = load_table(path, exclude_labelled=True)
    assert normal.x.shape == (3, 3) and normal.y is not None and not normal.y.any()


def test_npz_without_labels_and_custom_label_key(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((2, 2)), target=np.array([1.0, 0.0]))
    assert load_table(path).y is None
    table = load_table(path, label_column="target")
    assert table.y is not None and table.y.dtype == np.int64 and table.y.tolist() == [1, 0]
    with pytest.raises(DataError, match="exclude_labelled needs labels"):
        load_table(path, exclude_labelled=True)
    with pytest.raises(DataError, match="no label array 'label'"):
        load_table(path, label_column="label")


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"features": np.ones((2, 2))}, "no array 'X'"),
        ({"X": np.ones(3)}, "shape"),
        ({"X": np.array([["a", "b"]])}, "numeric"),
        ({"X": np.array([[1.0, np.nan]])}, "at row 1, column 'f1'"),
        ({"X": np.array([[1e300]])}, "too large for float32"),
        ({"X": np.ones((2, 1)), "y": np.array([0, 2])}, "0 .normal. or 1"),
        ({"X": np.ones((2, 1)), "y": np.array([0])}, "shape"),
    ],
)
def test_npz_problems(tmp_path: Path, arrays: dict[str, np.ndarray], match: str) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=match):
        load_table(path)


def test_npz_all_rows_labelled(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((2, 1)), y=np.array([1, 1]))
    assert load_table(path).x.shape == (2, 1)
    with pytest.raises(DataError, match="every row is labelled 1"):
        load_table(path, exclude_labelled=True)


def test_npz_with_object_array_is_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, X=np.array([[1, "a"]], dtype=object))
    with pytest.raises(DataError, match="cannot read"):
        load_table(path)


def test_csv_with_label_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", "temp,label,vib\n1.5,0,2\n2.5,1,3\n3.5,0,-4e2\n")
    table = load_table(path, label_column="label")
    assert table.feature_names == ["temp", "vib"]
    np.testing.assert_allclose(table.x, [[1.5, 2], [2.5, 3], [3.5, -400]])
    assert table.y is not None and table.y.tolist() == [0, 1, 0]
    assert load_table(path, label_column="label", exclude_labelled=True).x.shape == (2, 2)
    unlabelled = load_table(path)
    assert unlabelled.y is None and unlabelled.feature_names == ["temp", "label", "vib"]


def test_csv_quotes_bom_and_single_row(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('\ufeff"a","b"\n"1","2"\n', encoding="utf-8")
    table = load_table(path)
    assert table.feature_names == ["a", "b"] and table.x.shape == (1, 2)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a,b\n1,2\n3,abc\n", "line 3, column 2: 'abc' is not a number"),
        ("a,b\n1,2\n3,\n", "line 3, column 2: '' is not a number"),
        ("a,b\n1,2\n3,4,5\n", "line 3 has 3 columns, the header has 2"),
        ("a,b,c\n1,2\n", "header has 3"),
        ("a,b\n1,nan\n", "NaN or Inf"),
        ("a,a\n1,2\n", "unique"),
        ("a,b\n", "no data rows"),
        ("", "empty"),
    ],
)
def test_csv_problems(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        load_table(write_csv(tmp_path / "d.csv", text))
    assert "\n" not in str(info.value)


def test_csv_missing_label_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", "a,b\n1,2\n")
    with pytest.raises(DataError, match="no label column 'y'"):
        load_table(path, label_column="y")


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    data = {"a": [1.0, 2.0, 3.0], "b": [1, 2, 3], "flag": [True, False, True], "y": [0, 0, 1]}
    pq.write_table(pa.table(data), path)
    table = load_table(path, label_column="y", exclude_labelled=True)
    assert table.feature_names == ["a", "b", "flag"]
    np.testing.assert_array_equal(table.x, [[1, 1, 1], [2, 2, 0]])
    assert table.y is not None and table.y.tolist() == [0, 0]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"a": [1.0], "name": ["pump"]}, "column 'name' has non-numeric type string"),
        ({"a": [1.0, None]}, "column 'a' has 1 missing value"),
        ({"a": pa.array([], type=pa.float64())}, "no data"),
    ],
)
def test_parquet_problems(tmp_path: Path, data: dict[str, object], match: str) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table(data), path)
    with pytest.raises(DataError, match=match):
        load_table(path)


def test_parquet_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": [1.0]}), path)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError, match="needs pyarrow"):
        load_table(path)


def test_corrupt_files(tmp_path: Path) -> None:
    for name in ("d.npz", "d.parquet"):
        (tmp_path / name).write_bytes(b"not really")
        with pytest.raises(DataError, match="cannot read"):
            load_table(tmp_path / name)


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unsupported data file .*expected one of \.npz, \.csv"):
        load_table(tmp_path / "d.xlsx")
    with pytest.raises(DataError, match="not found"):
        load_table(tmp_path / "missing.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match="is not a file"):
        load_table(tmp_path / "dir.csv")


def test_upper_case_extension(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "D.CSV", "a\n1\n2\n")
    assert load_table(path).x.shape == (2, 1)
