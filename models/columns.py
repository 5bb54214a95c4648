"""Which columns of a table are what: time, device, label, features.

A CSV (or Parquet) file of readings carries more than channels: a time column,
a device column, perhaps a label or an id. The ``--timestamp-column``,
``--device-column``, ``--feature-columns`` and ``--drop-columns`` options of
``seismo train``, ``evaluate`` and ``produce`` become a :class:`ColumnSpec`;
:func:`plan_columns` resolves it against a header. The time and device columns
(``timestamp`` and ``device_id`` when present, unless named otherwise) are never
features unless ``--feature-columns`` names them.

:func:`model_order` matches a file's features to a model's channels by name;
:func:`time_like` says why a column about to become a feature looks like a
time or a counter; :func:`epoch_ms` reads a time cell. All pure.

Examples
--------
>>> plan = plan_columns(["timestamp", "device_id", "temp", "rpm", "label"],
...                     ColumnSpec(label_column="label"), "rooms.csv")
>>> plan.timestamp, plan.device, plan.label, plan.features
('timestamp', 'device_id', 'label', ['temp', 'rpm'])
>>> model_order(["rpm", "temp"], ["temp", "rpm"], "rooms.csv").tolist()
[1, 0]
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from seismo.models.errors import ChannelMismatch, DataError

#: The time column when ``--timestamp-column`` is not given and the header has it.
DEFAULT_TIMESTAMP = "timestamp"
#: The device column when ``--device-column`` is not given and the header has it.
DEFAULT_DEVICE = "device_id"
#: Fewest readings before a column's values can look like a time or a counter.
MIN_TIME_LIKE_ROWS = 8
#: Epoch values below this are seconds, at or above it milliseconds (1e11 s is year 5138,
#: 1e11 ms is 1973).
SECONDS_BELOW = 1e11
#: Epoch milliseconds must lie in [0, MAX_TS_MS), as the event contract says.
MAX_TS_MS = 100_000_000_000_000

#: Between a channel's name and its time step in a window model's feature names.
STEP_MARK = "@t-"


#: Most digits of a ``@t-k`` offset: a billion readings back is no window (and Python
#: refuses to convert strings of over 4 300 digits, which a crafted name could hold).
MAX_OFFSET_DIGITS = 9


def _offsets(feature_names: Sequence[str]) -> list[int] | None:
    """Each name's ``@t-k`` offset ``k``, or ``None`` unless every name has one (ASCII
    digits, at most :data:`MAX_OFFSET_DIGITS`).

    >>> _offsets(["a@t-6", "a@t-0"]), _offsets(["a@t-" + "9" * 5000])
    ([6, 0], None)
    """
    out = []
    for name in feature_names:
        head, mark, k = name.rpartition(STEP_MARK)
        if not mark or not head or len(k) > MAX_OFFSET_DIGITS or not (k.isascii() and k.isdigit()):
            return None
        out.append(int(k))
    return out or None


def window_of(feature_names: Sequence[str]) -> int | None:
    """The readings per window of a window model's features, ``None`` for a row model:
    every name must end in ``@t-k`` with a whole number ``k``.

    >>> window_of(["a@t-1", "b@t-1", "a@t-0", "b@t-0"]), window_of(["a", "b"])
    (2, None)
    >>> window_of(["load@t-peak", "load@t-off"]), window_of(["x@t-0", "y"]), window_of(["x@t-²"])
    (None, None, None)
    """
    offsets = _offsets(feature_names)
    return None if offsets is None else len(set(offsets))


def window_step_of(feature_names: Sequence[str]) -> int | None:
    """Readings between two readings of a window model's window (``--window-step``), from
    its features' ``@t-k`` offsets; 1 when they are consecutive, ``None`` for a row model
    or offsets that are not evenly spaced from 0.

    >>> window_step_of(["a@t-12", "a@t-6", "a@t-0"]), window_step_of(["a@t-1", "a@t-0"])
    (6, 1)
    >>> window_step_of(["a", "b"]), window_step_of(["a@t-3", "a@t-1", "a@t-0"])
    (None, None)
    >>> window_step_of(["a@t-0"]), window_step_of(["a@t-5"])
    (1, None)
    """
    found = _offsets(feature_names)
    if found is None:
        return None
    offsets = sorted(set(found))
    if len(offsets) == 1:
        return 1 if offsets == [0] else None
    step = offsets[1] - offsets[0]
    return step if step > 0 and offsets == [k * step for k in range(len(offsets))] else None


@dataclass(frozen=True)
class ColumnSpec:
    """The column options of a command; ``None`` means the default.

    Attributes
    ----------
    timestamp_column : str or None
        The time column; default ``timestamp`` when the header has it.
    device_column : str or None
        The device id column; default ``device_id`` when the header has it.
    feature_columns : tuple of str or None
        Exactly these columns, in this order, are the features.
    drop_columns : tuple of str
        Columns that are not features (nor anything else).
    label_column : str or None
        The 0/1 anomaly labels.
    """

    timestamp_column: str | None = None
    device_column: str | None = None
    feature_columns: tuple[str, ...] | None = None
    drop_columns: tuple[str, ...] = ()
    label_column: str | None = None


@dataclass(frozen=True)
class ColumnPlan:
    """A header resolved: the role of each column that has one.

    ``named`` is true when ``--feature-columns`` chose the features (so no
    time-like warning is due: the user named them).
    """

    timestamp: str | None
    device: str | None
    label: str | None
    features: list[str]
    named: bool = False


def split_names(text: str | None) -> tuple[str, ...] | None:
    """A comma list of column names, as ``--feature-columns`` takes it.

    >>> split_names("temp, rpm,,"), split_names(None)
    (('temp', 'rpm'), None)
    """
    if text is None:
        return None
    return tuple(name.strip() for name in text.split(",") if name.strip())


#: Column names that usually hold labels, not readings (lower case).
LABEL_NAMES = frozenset({"label", "labels", "is_anomaly", "anomaly", "target", "y"})


def label_like_columns(x: np.ndarray, names: Sequence[str]) -> list[str]:
    """Columns of ``x`` ``(n, d)`` named like labels (:data:`LABEL_NAMES`) that hold only 0 and 1.

    >>> label_like_columns(np.array([[1.5, 0.0, 0.2], [2.5, 1.0, 0.7]]), ["temp", "label", "y"])
    ['label']
    """
    if x.ndim != 2:
        return []
    return [name for j, name in enumerate(names)
            if name.lower() in LABEL_NAMES and np.isin(x[:, j], (0.0, 1.0)).all()]  # fmt: skip


def _suggest(name: str, header: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(header), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _need(name: str, header: Sequence[str], option: str, source: str) -> str:
    if name not in header:
        raise DataError(
            f"{source}: no column {name!r} for {option}{_suggest(name, header)} "
            f"(columns: {', '.join(header)})"
        )
    return name


def plan_columns(header: Sequence[str], spec: ColumnSpec, source: str) -> ColumnPlan:
    """Resolve ``spec`` against ``header``; a name not in the header is a `DataError`.

    >>> plan_columns(["ts", "a", "b", "site"], ColumnSpec(timestamp_column="ts",
    ...              drop_columns=("site",)), "f.csv").features
    ['a', 'b']
    >>> plan_columns(["timestamp", "a"], ColumnSpec(feature_columns=("timestamp", "a")),
    ...              "f.csv").features
    ['timestamp', 'a']
    >>> plan_columns(["a", "b"], ColumnSpec(drop_columns=("c",)), "f.csv")
    Traceback (most recent call last):
    ...
    seismo.models.errors.DataError: f.csv: no column 'c' for --drop-columns (columns: a, b)
    """
    names = list(header)
    if len(set(names)) != len(names) or not all(names):
        raise DataError(f"{source}: column names must be unique and non-empty, got {names}")
    timestamp = _role(spec.timestamp_column, DEFAULT_TIMESTAMP, names, "--timestamp-column",
                      source)  # fmt: skip
    device = _role(spec.device_column, DEFAULT_DEVICE, names, "--device-column", source)
    label = spec.label_column
    if label is not None and label not in names:
        raise DataError(f"{source} has no label column {label!r}{_suggest(label, names)} "
                        f"(columns: {', '.join(names)})")
    for name in spec.drop_columns:
        _need(name, names, "--drop-columns", source)
    if spec.feature_columns is not None:
        for name in spec.feature_columns:
            _need(name, names, "--feature-columns", source)
            if name == label or name in spec.drop_columns:
                option = "--label-column" if name == label else "--drop-columns"
                raise DataError(f"{source}: column {name!r} is in --feature-columns and {option}")
        features, named = list(dict.fromkeys(spec.feature_columns)), True
    else:
        roles = {timestamp, device, label, *spec.drop_columns}
        features, named = [n for n in names if n not in roles], False
    if not features:
        raise DataError(f"{source}: no feature columns left (columns: {', '.join(names)})")
    return ColumnPlan(timestamp, device, label, features, named)


def _role(
    given: str | None, default: str, names: list[str], option: str, source: str
) -> str | None:
    if given is not None:
        return _need(given, names, option, source)
    return default if default in names else None


def is_positional(names: Sequence[str]) -> bool:
    """Whether ``names`` are the stand-in names ``f0, f1, ...`` of a file without a header.

    >>> is_positional(["f0", "f1"]), is_positional(["temp", "f1"])
    (True, False)
    """
    return list(names) == [f"f{i}" for i in range(len(names))]


def model_order(names: Sequence[str], channels: Sequence[str], source: str) -> np.ndarray | None:
    """Column positions that put a file's features in the model's channel order.

    Parameters
    ----------
    names : sequence of str
        The file's feature columns, in file order.
    channels : sequence of str
        The model's feature names (``artifact.feature_names``).
    source : str
        The file, for the message.

    Returns
    -------
    numpy.ndarray or None
        ``(d,)`` int64 positions into ``names``; ``None`` when either side has
        only stand-in names (``f0, f1, ...``: an ``.npz`` file or a model
        trained on one), which are matched by position.

    Raises
    ------
    ChannelMismatch
        A channel of the model with no column, or a column that is no channel.

    >>> model_order(["temp", "rmp"], ["temp", "rpm"], "f.csv")
    Traceback (most recent call last):
    ...
    seismo.models.errors.ChannelMismatch: f.csv: no column for the model's channel 'rpm'; \
column 'rmp' is not a channel of the model (did you mean 'rpm'?)
    """
    if is_positional(names) or is_positional(channels):
        return None
    have, want = set(names), set(channels)
    missing = [c for c in channels if c not in have]
    extra = [n for n in names if n not in want]
    problems = []
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        problems.append(f"no column for the model's channel {missing[0]!r}{more}")
    if extra:
        hint = _suggest(extra[0], missing) or f"; leave it out with --drop-columns {extra[0]}"
        problems.append(f"column {extra[0]!r} is not a channel of the model{hint}")
    if problems:
        raise ChannelMismatch(f"{source}: " + "; ".join(problems))
    position = {n: i for i, n in enumerate(names)}
    return np.array([position[c] for c in channels], dtype=np.int64)


def time_like(values: np.ndarray) -> str | None:
    """Why a column's ``(n,)`` float64 values look like a time or a counter, or ``None``.

    Epoch-like: every value an epoch time in seconds or milliseconds of
    2001-2099, never decreasing. Counter-like: integers, strictly increasing
    or strictly decreasing. Needs `MIN_TIME_LIKE_ROWS` values.

    >>> time_like(np.arange(1.7e9, 1.7e9 + 10 * 60, 60))
    'epoch-like times'
    >>> time_like(np.arange(10.0)), time_like(np.array([3.0, 1, 2, 5, 4, 6, 7, 8]))
    ('strictly monotone integers (a counter or an index)', None)
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) < MIN_TIME_LIKE_ROWS or not np.isfinite(v).all():
        return None
    steps = np.diff(v)
    in_seconds = bool(((v >= 1e9) & (v < 4.1e9)).all())
    in_millis = bool(((v >= 1e12) & (v < 4.1e12)).all())
    if (in_seconds or in_millis) and bool((steps >= 0).all()) and bool((steps > 0).any()):
        return "epoch-like times"
    if bool((v == np.round(v)).all()) and (bool((steps > 0).all()) or bool((steps < 0).all())):
        return "strictly monotone integers (a counter or an index)"
    return None


def id_like(name: str, values: np.ndarray) -> bool:
    """Whether a column is named as an identifier (``id``, ``sensor_id``, ``deviceId``,
    ``unit-ID``) and holds only integers: a device id about to become a channel.

    >>> id_like("sensor_id", np.array([100.0, 101, 102])), id_like("id", np.array([1.5]))
    (True, False)
    >>> id_like("humid", np.array([1.0, 2.0])), id_like("deviceId", np.array([7.0]))
    (False, True)
    >>> id_like("unit-ID", np.array([3.0]))
    True
    """
    v = np.asarray(values, dtype=np.float64)
    text = name.strip()
    named = bool(re.search(r"(^|[_\-\s.])id$", text.lower()) or re.search(r"[a-z]Id$", text))
    return bool(named and v.size and np.isfinite(v).all() and (v == np.round(v)).all())


def id_like_warning(name: str, use: str = "trained on") -> str:
    """The warning for a column named as an id that is about to be a feature.

    >>> id_like_warning("sensor_id")  # doctest: +ELLIPSIS
    "column 'sensor_id' is named as an id and holds integers, and is trained on ... sensor_id"
    """
    return (f"column {name!r} is named as an id and holds integers, and is {use} as a "
            f"channel; if it names devices, name it with --device-column {name}, or leave it "
            f"out with --drop-columns {name}")  # fmt: skip


def time_like_warning(name: str, why: str, use: str = "trained on") -> str:
    """The warning for a column that looks like a time or counter and is about to be a feature.

    >>> time_like_warning("t", "epoch-like times")  # doctest: +ELLIPSIS
    "column 't' holds epoch-like times and is trained on as a channel; ... --drop-columns t"
    >>> time_like_warning("seq", "a counter", "sent")  # doctest: +ELLIPSIS
    "column 'seq' holds a counter and is sent as a channel; ..."
    """
    return (f"column {name!r} holds {why} and is {use} as a channel; if it is not "
            f"a sensor, name it with --timestamp-column {name} or leave it out with "
            f"--drop-columns {name}")  # fmt: skip


def looks_like_time(cell: str) -> bool:
    """Whether a CSV cell that is not a number reads as an ISO-8601 time.

    >>> looks_like_time("2024-11-23 08:20:00"), looks_like_time("pump-7")
    (True, False)
    """
    try:
        datetime.fromisoformat(cell.strip())
    except ValueError:
        return False
    return True


def is_number(text: str) -> bool:
    """Whether ``float`` reads ``text``."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def epoch_ms(cell: str | float | datetime) -> int:
    """A time cell as epoch milliseconds: a number (seconds below `SECONDS_BELOW`, else
    milliseconds) or an ISO-8601 time (naive means UTC).

    >>> epoch_ms("1732350000"), epoch_ms(1732350000000), epoch_ms("2024-11-23T08:20:00Z")
    (1732350000000, 1732350000000, 1732350000000)
    >>> epoch_ms("yesterday")
    Traceback (most recent call last):
    ...
    ValueError: 'yesterday' is neither epoch seconds or milliseconds nor an ISO-8601 time
    """
    if isinstance(cell, datetime):
        moment = cell if cell.tzinfo is not None else cell.replace(tzinfo=UTC)
        ms = math.floor(moment.timestamp() * 1000)
    elif isinstance(cell, str) and not is_number(cell):
        try:
            return epoch_ms(datetime.fromisoformat(cell.strip()))
        except ValueError:
            raise ValueError(f"{cell[:40]!r} is neither epoch seconds or milliseconds "
                             "nor an ISO-8601 time") from None  # fmt: skip
    else:
        number = float(cell)
        if not math.isfinite(number):
            raise ValueError(f"{cell!r} is not a time")
        ms = math.floor(number * 1000 if abs(number) < SECONDS_BELOW else number)
    if not 0 <= ms < MAX_TS_MS:
        raise ValueError(f"time {str(cell)[:40]!r} is out of range (before 1970 or too late)")
    return ms
