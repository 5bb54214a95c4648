"""Loading training and evaluation tables from ``.npz``, ``.csv`` and ``.parquet`` files.

Every problem with a file (unknown extension, missing file, non-numeric
values, NaN/Inf, bad labels) is raised as a one-line `DataError` naming the
file and, where it can, the row and column.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = Path(tmp) / "sensors.csv"
...     _ = path.write_text("temp,vib,label\\n20.5,0.1,0\\n21.0,0.2,0\\n90.0,3.0,1\\n")
...     table = load_table(path, label_column="label")
...     normal = load_table(path, label_column="label", exclude_labelled=True)
>>> table.feature_names, table.x.shape, table.y.tolist()
(['temp', 'vib'], (3, 2), [0, 0, 1])
>>> normal.x.shape, normal.n_excluded
((2, 2), 1)
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from seismo.models.columns import (
    DEFAULT_TIMESTAMP,
    STEP_MARK,
    ColumnPlan,
    ColumnSpec,
    id_like,
    id_like_warning,
    is_number,
    looks_like_time,
    model_order,
    plan_columns,
    time_like,
    time_like_warning,
)
from seismo.models.errors import DataError

log = logging.getLogger(__name__)

Loaded = tuple[np.ndarray, np.ndarray | None, ColumnPlan]
"""What a format reader returns: raw features (n, d), raw labels (n,) or None, the plan
(whose ``features`` name the ``d`` columns)."""


@dataclass(frozen=True, eq=False)
class Table:
    """A numeric table of rows to train on or score.

    Attributes
    ----------
    x : numpy.ndarray
        Shape ``(n, d)``, float32, finite.
    y : numpy.ndarray or None
        Shape ``(n,)``, int64 labels: 0 = normal, 1 = anomaly.
    feature_names : list of str
        ``d`` unique column names.
    n_excluded : int
        Rows of the file left out because they were labelled 1
        (``exclude_labelled``); the file held ``n + n_excluded`` rows.
    """

    x: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    n_excluded: int = 0


def _is_numeric(array: np.ndarray) -> bool:
    """Bool, integer or real floating dtype."""
    return array.dtype.kind in "biuf"


def _read_npz(path: Path, spec: ColumnSpec) -> Loaded:
    """``X`` holds the features; labels come from ``label_column`` (default ``y``) if present."""
    label_column = spec.label_column
    label_key = label_column or "y"
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "X" not in archive.files:
                raise DataError(f"{path} has no array 'X' (found: {', '.join(archive.files)})")
            if label_column is not None and label_key not in archive.files:
                raise DataError(f"{path} has no label array {label_key!r}")
            x = archive["X"]
            y = archive[label_key] if label_key in archive.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path} as .npz: {exc}") from exc
    names = [f"f{i}" for i in range(x.shape[1] if x.ndim == 2 else 0)]
    plan = plan_columns(names, replace(spec, label_column=None), str(path)) if names else None
    if plan is None or plan.features == names:
        return x, y, plan or ColumnPlan(None, None, None, names)
    return x[:, [names.index(n) for n in plan.features]], y, plan


def _locate_csv_problem(
    path: Path, n_columns: int, usecols: Sequence[int] | None = None,
    header: Sequence[str] = (), label: str | None = None,
) -> str | None:
    """Find the first line whose cells (those at ``usecols``, default all) are not
    ``n_columns`` numbers; slow, errors only."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if line_no == 1 or not row:
                continue
            if len(row) != n_columns:
                return f"line {line_no} has {len(row)} columns, the header has {n_columns}"
            checked = [(c, cell) for c, cell in enumerate(row, start=1)
                       if usecols is None or c - 1 in usecols]  # fmt: skip
            bad = [(c, cell) for c, cell in checked if not is_number(cell)]
            if not bad:
                continue
            if line_no == 2 and len(bad) == len(checked) > 1 and all(c.strip() for _, c in bad):
                return (f"line 2 holds no number in any value column ({bad[0][1]!r}, "
                        f"{bad[1][1]!r}, ...): a second header row, such as units? Remove it")
            column, cell = bad[0]
            return f"line {line_no}, column {column}: {cell!r} is not a number" + (
                not_a_number_hint(header[column - 1], cell, label, numbers_above=line_no > 2)
                if column <= len(header) else ""
            )
    return None


#: Cells that spreadsheets and exports write for a missing reading (lower case).
MISSING_MARKERS = frozenset({"na", "n/a", "#n/a", "null", "none", "missing", "-", "?"})


def not_a_number_hint(
    name: str, cell: str, label: str | None = None, numbers_above: bool = False
) -> str:
    """What to do about a cell that is not a number, by what it looks like;
    ``numbers_above``: the column's cells in the rows above are numbers (one bad cell,
    not a column of text).

    >>> not_a_number_hint("time", "2024-11-23 08:20:00")
    " (column 'time' holds times: name it with --timestamp-column time or --drop-columns time)"
    >>> not_a_number_hint("site", "pump-7")
    " (column 'site' holds text: name it with --device-column site or --drop-columns site)"
    >>> not_a_number_hint("rh", " ")
    " (an empty cell in column 'rh': every feature needs a reading in every row)"
    >>> not_a_number_hint("rh", "3,61")
    " (a decimal comma in column 'rh': write 3.61)"
    >>> not_a_number_hint("flow", "1,250")
    " (a decimal comma or a thousands separator in column 'flow': write 1.250 or 1250)"
    >>> not_a_number_hint("door", "TRUE")
    " (column 'door' holds true/false: write 1/0)"
    >>> not_a_number_hint("temp", "NA")[:60]
    " (a missing reading, 'NA', in column 'temp': every feature n"
    >>> not_a_number_hint("label", "normal", label="label")
    " (the label column 'label' must hold 0 (normal) or 1 (anomaly))"
    >>> not_a_number_hint("rpm", "ERR", numbers_above=True)
    " (column 'rpm' holds numbers in the rows above: fix or remove this row)"
    """
    text = cell.strip()
    if name == label:
        return f" (the label column {name!r} must hold 0 (normal) or 1 (anomaly))"
    if not text:
        return f" (an empty cell in column {name!r}: every feature needs a reading in every row)"
    if re.fullmatch(r"[-+]?\d{1,3},\d{3}", text):  # 1,250: 1.25 or 1250?
        return (f" (a decimal comma or a thousands separator in column {name!r}: write "
                f"{text.replace(',', '.')} or {text.replace(',', '')})")  # fmt: skip
    if re.fullmatch(r"[-+]?\d+,\d+", text):
        return f" (a decimal comma in column {name!r}: write {text.replace(',', '.')})"
    if text.lower() in MISSING_MARKERS:
        return (f" (a missing reading, {text!r}, in column {name!r}: every feature needs a "
                f"reading in every row; if it is no reading, --drop-columns {name})")  # fmt: skip
    if text.lower() in ("true", "false"):
        return f" (column {name!r} holds true/false: write 1/0)"
    what = "times" if looks_like_time(cell) else "text"
    if numbers_above:
        return f" (column {name!r} holds numbers in the rows above: fix or remove this row)"
    option = "--timestamp-column" if what == "times" else "--device-column"
    return f" (column {name!r} holds {what}: name it with {option} {name} or --drop-columns {name})"


def _plan_split(matrix: np.ndarray, plan: ColumnPlan) -> Loaded:
    """``matrix`` holds the plan's features, then its label column (if any)."""
    if plan.label is None:
        return matrix, None, plan
    return matrix[:, :-1], matrix[:, -1], plan


def _read_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if not header:
        raise DataError(f"{path} is empty; expected a header row of column names")
    refuse_other_delimiter(path, header)
    return [name.strip() for name in header]


def refuse_other_delimiter(path: Path, header: Sequence[str]) -> None:
    """A one-line :class:`DataError` when ``header`` looks separated by something else than commas.

    >>> try:
    ...     refuse_other_delimiter(Path("rooms.csv"), ["ts;temp"])
    ... except DataError as exc:
    ...     print(str(exc)[:58])
    rooms.csv looks ';'-separated (its header is one column, '
    >>> refuse_other_delimiter(Path("rooms.csv"), ["ts", "temp"])
    """
    other = other_delimiter(header)
    if other is not None:
        raise DataError(
            f"{path} looks {other!r}-separated (its header is one column, {header[0]!r}): "
            "seismo reads comma-separated files; rewrite it with commas, e.g. in Python "
            f"csv.writer(out).writerows(csv.reader(f, delimiter={other!r}))"
        )
    if looks_like_data(header):
        shown = ",".join(name.strip() for name in header[:4]) + ("..." if len(header) > 4 else "")
        raise DataError(
            f"the first line of {path} is numbers ({shown}), not column names: seismo reads "
            "a CSV whose first line names its columns, e.g. temp,rpm,... (its first data row "
            "would otherwise be lost and its numbers become the channel names; if these "
            "numbers are the names, give them a letter, e.g. w400.5)"
        )


#: A number as a CSV cell writes one (no ``1_000``, which float() would take).
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)",
                     re.IGNORECASE)


def looks_like_data(header: Sequence[str]) -> bool:
    """Whether a CSV's first line holds numbers rather than names: every cell a number
    (a missing ``nan`` among them), at least one finite, unless they count the columns
    (pandas writes a frame of a bare array with the header ``0,1,2``; ``1,2,3`` is such a
    count too).

    >>> looks_like_data(["0.126", "-0.132", "1e3"]), looks_like_data(["12", "7", "3"])
    (True, True)
    >>> looks_like_data(["0.12", "nan", "0.3"]), looks_like_data(["nan"])
    (True, False)
    >>> looks_like_data(["0", "1", "2"]), looks_like_data(["1", "2", "3"])
    (False, False)
    >>> looks_like_data(["temp", "0.5"]), looks_like_data(["", "0", "1"]), looks_like_data(["1_1"])
    (False, False, False)
    """
    cells = [cell.strip() for cell in header]
    if not all(_NUMBER.fullmatch(cell) for cell in cells):
        return False
    if not any(math.isfinite(float(cell)) for cell in cells):
        return False
    counting = [str(i) for i in range(len(cells))], [str(i + 1) for i in range(len(cells))]
    return cells not in counting


def other_delimiter(header: Sequence[str]) -> str | None:
    """The delimiter a one-column header seems to use instead of commas, if any.

    >>> other_delimiter(["temp;vib;label"]), other_delimiter(["a|b"]), other_delimiter(["a", "b"])
    (';', '|', None)
    """
    if len(header) != 1:
        return None
    for candidate in (";", "\t", "|"):
        if candidate in header[0]:
            return candidate
    return None


def _read_csv(path: Path, spec: ColumnSpec) -> Loaded:
    """Comma-separated, one header row of names; the feature and label cells numeric
    (the time, device and dropped columns may hold anything)."""
    header = _read_header(path)
    plan = plan_columns(header, spec, str(path))
    wanted = plan.features + ([plan.label] if plan.label is not None else [])
    usecols = [header.index(name) for name in wanted]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            matrix = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64,
                                quotechar='"',
                                usecols=None if len(usecols) == len(header) else usecols)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    except ValueError as exc:
        problem = _locate_csv_problem(path, len(header), usecols, header, plan.label)
        problem = problem or str(exc)
        raise DataError(f"{path}: {problem}") from exc
    if matrix.size == 0:
        raise DataError(f"{path} has a header but no data rows")
    if matrix.shape[1] != len(usecols):
        raise DataError(f"{path}: rows have {matrix.shape[1]} columns, header has {len(header)}")
    if len(usecols) == len(header):  # loadtxt read every column: in the plan's order
        matrix = matrix[:, usecols]
    else:  # loadtxt saw only some columns: check the row lengths
        short = _locate_csv_problem(path, len(header), usecols=())
        if short is not None:
            raise DataError(f"{path}: {short}")
    return _plan_split(matrix, plan)


def _read_parquet(path: Path, spec: ColumnSpec) -> Loaded:
    """The feature and label columns numeric (integer, float or boolean) without nulls."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise DataError(f"reading {path} needs pyarrow: pip install 'seismo[parquet]'") from exc
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} as parquet: {exc}") from exc
    plan = plan_columns(list(table.column_names), spec, str(path))
    wanted = plan.features + ([plan.label] if plan.label is not None else [])
    columns = []
    for name in wanted:
        column = table.column(name)
        kind = column.type
        if not (
            pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
        ):
            raise DataError(f"{path}: column {name!r} has non-numeric type {kind}")
        if column.null_count:
            raise DataError(f"{path}: column {name!r} has {column.null_count} missing value(s)")
        columns.append(column.to_numpy().astype(np.float64))
    if not columns or table.num_rows == 0:
        raise DataError(f"{path} has no data (shape {table.num_rows} x {table.num_columns})")
    return _plan_split(np.column_stack(columns), plan)


_READERS: dict[str, Callable[[Path, ColumnSpec], Loaded]] = {
    ".npz": _read_npz,
    ".csv": _read_csv,
    ".parquet": _read_parquet,
}


def _check_features(path: Path, x: np.ndarray, names: list[str]) -> np.ndarray:
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{path}: features must have shape (n, d) with n, d >= 1, got {x.shape}")
    if not _is_numeric(x):
        raise DataError(f"{path}: features must be numeric, got dtype {x.dtype}")
    if len(set(names)) != len(names) or not all(names):
        raise DataError(f"{path}: column names must be unique and non-empty, got {names}")
    with np.errstate(over="ignore"):  # overflow becomes Inf, reported just below
        x32 = np.ascontiguousarray(x, dtype=np.float32)
    bad = ~np.isfinite(x32)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise DataError(
            f"{path}: NaN or Inf (or a value too large for float32) at {_position(path, row)}, "
            f"column {names[col]!r}"
        )
    return x32


def _position(path: Path, row: int) -> str:
    """Where data row ``row`` (0-based) is: ``line N`` of a CSV (the header is line 1;
    blank and ``#`` lines count, as in an editor), else ``row N`` (1-based)."""
    if path.suffix.lower() != ".csv":
        return f"row {row + 1}"
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        seen = -1
        for record in reader:
            if record and not record[0].lstrip().startswith("#"):
                seen += 1
                if seen == row:
                    return f"line {reader.line_num}"
    return f"row {row + 1}"


def _check_labels(path: Path, y: np.ndarray, n_rows: int) -> np.ndarray:
    if y.ndim != 1 or y.shape[0] != n_rows or not _is_numeric(y):
        raise DataError(f"{path}: labels must be numeric with shape ({n_rows},), got {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise DataError(f"{path}: labels must be 0 (normal) or 1 (anomaly)")
    return y.astype(np.int64)


def load_table(
    path: str | os.PathLike[str],
    *,
    label_column: str | None = None,
    exclude_labelled: bool = False,
    columns: ColumnSpec | None = None,
    refuse_times: bool = True,
) -> Table:
    """Read a numeric table, optionally with 0/1 anomaly labels.

    Parameters
    ----------
    path : str or path-like
        ``.npz`` (array ``X``, optional labels ``y``; features named ``f0``,
        ``f1``, ...), ``.csv`` (header row of names) or ``.parquet`` (needs
        pyarrow).
    label_column : str, optional
        CSV/parquet column holding the labels; it is not a feature. For
        ``.npz`` it names the label array (default ``y``, read if present).
    exclude_labelled : bool
        Drop rows labelled 1 (anomalies), e.g. to train on normal rows only.
    columns : ColumnSpec, optional
        Which columns are time, device, features and dropped
        (:func:`seismo.models.columns.plan_columns`); by default every column
        but ``timestamp``, ``device_id`` and the label is a feature. A feature
        column that looks like a time or a counter is logged as a warning,
        unless ``columns.feature_columns`` named it.
    refuse_times : bool
        A column of epoch times about to become a feature (not named by
        ``columns.feature_columns``) is a :class:`DataError`
        (:func:`refuse_epoch_times`), for training; ``False`` warns instead, for
        reading rows a model already has channels for (``seismo evaluate``
        matches them to its channels, ``seismo produce`` sends them).

    Returns
    -------
    Table

    Raises
    ------
    DataError
        Unknown extension, missing file, non-numeric data, NaN/Inf, bad labels.
    """
    source = Path(path)
    reader = _READERS.get(source.suffix.lower())
    if reader is None:
        known = ", ".join(_READERS)
        raise DataError(f"unsupported data file {source}: expected one of {known}")
    if not source.exists():
        raise DataError(f"data file not found: {source}")
    if not source.is_file():
        raise DataError(f"data path {source} is not a file")
    spec = columns or ColumnSpec()
    if label_column is not None:
        spec = replace(spec, label_column=label_column)
    raw_x, raw_y, plan = reader(source, spec)
    names = plan.features
    x = _check_features(source, raw_x, names)
    if not plan.named:
        if refuse_times:
            refuse_epoch_times(raw_x, names, source)
        warn_time_like(raw_x, names)
    y = None if raw_y is None else _check_labels(source, raw_y, x.shape[0])
    n_read = x.shape[0]
    if exclude_labelled:
        if y is None:
            raise DataError(
                f"{source}: exclude_labelled needs labels (label_column, or 'y' in .npz)"
            )
        keep = y != 1
        if not keep.any():
            raise DataError(f"{source}: every row is labelled 1; nothing left to train on")
        x, y = x[keep], y[keep]
    return Table(x=x, y=y, feature_names=names, n_excluded=n_read - x.shape[0])


def in_model_order(table: Table, channels: Sequence[str], source: str | os.PathLike[str]) -> Table:
    """``table`` with its columns matched by name to a model's ``channels`` and put in
    their order; a missing or extra channel raises
    :class:`~seismo.models.errors.ChannelMismatch` naming it. Stand-in names
    (``f0, f1, ...``) on either side match by position: only the width is checked.

    >>> t = Table(np.array([[1.0, 2.0]], dtype=np.float32), None, ["rpm", "temp"])
    >>> in_model_order(t, ["temp", "rpm"], "f.csv").x.tolist()
    [[2.0, 1.0]]
    """
    order = model_order(table.feature_names, channels, str(source))
    if order is None:
        if table.x.shape[1] != len(channels):
            raise DataError(f"{source} has {table.x.shape[1]} feature columns but the model "
                            f"expects {len(channels)}")  # fmt: skip
        return table
    if order.tolist() == list(range(len(order))):
        return table
    return replace(table, x=np.ascontiguousarray(table.x[:, order]),
                   feature_names=[table.feature_names[i] for i in order])  # fmt: skip


def refuse_epoch_times(x: np.ndarray, names: Sequence[str], source: object) -> None:
    """Raise :class:`DataError` for a column of ``x`` (n, d) that holds epoch times and
    was not named a channel: trained on as one, every later time lies beyond the training
    range, and the scorer flagged about half of a stream whose events carry it (a
    stranger's run: 1 213 alerts in 2 400 events, 1 159 of them on the time), where a
    WARNING at training had been the only sign. Naming the channels (``--feature-columns``)
    keeps such a column as one.

    >>> times = np.arange(1.7e9, 1.7e9 + 600, 60)
    >>> refuse_epoch_times(np.column_stack([times, times % 7]), ["time", "temp"],
    ...                    "m.csv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    seismo.models.errors.DataError: m.csv: column 'time' holds epoch-like times: name it ...
    """
    if x.ndim != 2 or x.shape[1] != len(names):
        return
    for j, name in enumerate(names):
        if time_like(x[:, j]) == "epoch-like times":
            raise DataError(
                f"{source}: column {name!r} holds epoch-like times: name it with "
                f"--timestamp-column {name} or leave it out with --drop-columns {name} (to "
                "keep it as a channel, name the channels with --feature-columns)"
            )


def warn_time_like(x: np.ndarray, names: Sequence[str], use: str = "trained on") -> None:
    """Log a warning for each column of ``x`` (n, d) that looks like a time, a counter
    or a device id; ``use`` says what happens to it (``"sent"`` for ``seismo produce``)."""
    if x.ndim != 2 or x.shape[1] != len(names):
        return
    for j, name in enumerate(names):
        why = time_like(x[:, j])
        if why is not None:
            log.warning(time_like_warning(name, why, use))
        elif id_like(name, x[:, j]):
            log.warning(id_like_warning(name, use))


def shared_data_dir(subdir: str, env: Mapping[str, str] | None = None) -> Path:
    """Where the public benchmark data lives: ``$SEISMO_DATA/<subdir>``, else
    ``<repository root>/../shared/data/<subdir>``.

    >>> shared_data_dir("odds", {"SEISMO_DATA": "/data"}).as_posix()
    '/data/odds'
    """
    environ = os.environ if env is None else env
    root = environ.get("SEISMO_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return base / subdir


@dataclass(frozen=True)
class Series:
    """A time-series CSV: its value columns and the readings, in file order.

    ``devices`` holds each reading's device id when the file has a device
    column (readings of several devices interleaved), else ``None``.
    """

    channels: list[str]
    values: np.ndarray  # (n, c)
    devices: list[str] | None = None

    def by_device(self) -> list[np.ndarray]:
        """Each device's readings in file order (devices in order of first appearance);
        the whole file as one device when it names none.

        >>> s = Series(["v"], np.arange(5.0).reshape(5, 1), ["a", "b", "a", "b", "a"])
        >>> [part[:, 0].tolist() for part in s.by_device()]
        [[0.0, 2.0, 4.0], [1.0, 3.0]]
        """
        if self.devices is None:
            return [self.values]
        rows: dict[str, list[int]] = {}
        for i, device in enumerate(self.devices):
            rows.setdefault(device, []).append(i)
        return [self.values[index] for index in rows.values()]


def is_series_csv(path: Path, timestamp_column: str | None) -> bool:
    """Whether ``path`` is a CSV whose header has ``timestamp_column`` (default ``timestamp``)."""
    timestamp_column = timestamp_column or DEFAULT_TIMESTAMP
    if path.suffix.lower() != ".csv":
        return False
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return timestamp_column in [name.strip() for name in header]


def read_series(path: Path, timestamp_column: str | ColumnSpec) -> Series:
    """The feature columns as floats (the timestamps only order the file); every column
    but the time column when ``timestamp_column`` is a name, else as the spec says."""
    spec = (timestamp_column if isinstance(timestamp_column, ColumnSpec)
            else ColumnSpec(timestamp_column=timestamp_column))  # fmt: skip
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    header = [name.strip() for name in rows[0]] if rows else []
    plan = plan_columns(header, spec, str(path))
    timestamp_column = plan.timestamp or DEFAULT_TIMESTAMP
    keep = [header.index(name) for name in plan.features]
    try:
        values = np.array([[float(row[i]) for i in keep] for row in rows[1:]], dtype=np.float64)
    except (ValueError, IndexError) as exc:
        message = f"{path}: every feature column must be numeric: {exc}"
        raise DataError(message) from None
    if values.size == 0 or not keep:
        raise DataError(f"{path}: no readings, or no value column next to {timestamp_column!r}")
    if not np.isfinite(values).all():
        raise DataError(f"{path}: NaN or infinite readings")
    if not plan.named:
        refuse_epoch_times(values, plan.features, path)
        warn_time_like(values, plan.features)
    devices = None
    if plan.device is not None:
        at = header.index(plan.device)
        devices = [row[at].strip() for row in rows[1:]]
    return Series([header[i] for i in keep], values, devices)


def series_windows(
    values: np.ndarray, window: int, stride: int = 1, step: int = 1
) -> np.ndarray:
    """Sliding windows of ``window`` readings ``step`` apart, one ending at every
    ``stride``-th reading that has a whole window, ``(n - span + 1, window * c)`` for
    ``stride`` 1 (``span = (window - 1) * step + 1``), time-major: ``row[t * c + j]`` is
    channel ``j`` at step ``t``, the layout the scorer builds (``--window-step``).

    >>> series_windows(np.arange(8.0).reshape(4, 2), window=2).tolist()
    [[0.0, 1.0, 2.0, 3.0], [2.0, 3.0, 4.0, 5.0], [4.0, 5.0, 6.0, 7.0]]
    >>> series_windows(np.arange(5.0).reshape(5, 1), window=2, step=3).tolist()
    [[0.0, 3.0], [1.0, 4.0]]
    """
    span = (window - 1) * step + 1
    if window < 1 or step < 1 or len(values) < span:
        spaced = f" readings {step} apart" if step > 1 else ""
        raise DataError(f"a window of {window}{spaced} needs at least {span} readings")
    view = np.lib.stride_tricks.sliding_window_view(values, (span, values.shape[1]))[:, 0]
    return view[:, ::step].reshape(len(view), -1)[::stride]



def window_feature_names(channels: list[str], window: int, step: int = 1) -> list[str]:
    """``{channel}@t-{k}``, oldest first, ``k`` the readings back from the newest (``t-0``):
    with readings ``step`` apart, ``k`` counts in steps of ``step``, so the names say the
    window's spacing (:func:`seismo.models.columns.window_step_of`).

    >>> window_feature_names(["rpm", "temp"], 2)
    ['rpm@t-1', 'temp@t-1', 'rpm@t-0', 'temp@t-0']
    >>> window_feature_names(["rpm"], 3, step=6)
    ['rpm@t-12', 'rpm@t-6', 'rpm@t-0']
    """
    return [f"{c}{STEP_MARK}{(window - 1 - t) * step}" for t in range(window) for c in channels]
