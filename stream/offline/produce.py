"""``seismo produce``: publish the rows of a file as contract events.

Each row becomes ``{"device_id", "values", "ts", "id"}`` with ``id`` = the row
index, keyed by device id, so replays can be joined with their ground truth.
``values`` names the channels (``{"temp": 20.5, ...}``) when the file has a
header, unless ``positional``; ``ts`` is the time column's, when there is one.
"""

from __future__ import annotations

import csv
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seismo.models.columns import ColumnSpec, epoch_ms, is_positional, plan_columns
from seismo.models.data import (
    load_table,
    not_a_number_hint,
    refuse_other_delimiter,
    warn_time_like,
)
from seismo.stream.errors import ConfigError, DataError
from seismo.stream.io.kafka import PRODUCER_DEFAULTS, ConfirmingProducer, client_config
from seismo.stream.scoring.codec import encode_event
from seismo.stream.scoring.f32_codec import channels_header, encode_f32, f32_headers

#: Event encodings ``seismo produce`` writes.
ENCODINGS = ("json", "f32")


@dataclass(frozen=True)
class Records:
    """A file's rows as events: values, and where the file has them, names, devices, times.

    Attributes
    ----------
    x : numpy.ndarray
        ``(n, d)``, finite and within float32's range; float64 from a CSV, so a
        JSON event carries the file's value as written (the scorer rounds to
        float32 itself), float32 from the other files.
    channels : list of str or None
        The ``d`` feature column names; ``None`` for a file without a header (.npz).
    devices : list of str or None
        Each row's device id (the device column), if any.
    ts : list of int or None
        Each row's time in epoch milliseconds (the time column), if any.
    """

    x: np.ndarray
    channels: list[str] | None
    devices: list[str] | None = None
    ts: list[int] | None = None


def read_records(path: Path, columns: ColumnSpec) -> Records:
    """The rows of ``path`` with their channel names, device ids and times.

    A CSV's time and device columns are ``timestamp`` and ``device_id`` when
    present (or as ``columns`` says); every other column but the label and the
    dropped ones is a channel. Times are epoch seconds or milliseconds (told
    apart by size) or ISO-8601 (:func:`seismo.models.columns.epoch_ms`).
    """
    suffix = path.suffix.lower()
    if suffix == ".csv" and path.is_file():
        try:
            return _read_csv_records(path, columns)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"cannot read {path}: {exc}") from exc
    if suffix != ".parquet" and (columns.timestamp_column or columns.device_column):
        raise DataError("--timestamp-column and --device-column need a .csv or .parquet file")
    table = load_table(path, columns=columns, refuse_times=False)
    if suffix != ".parquet":
        return Records(table.x, None)
    return _parquet_records(path, table.x, table.feature_names, columns)


def _read_csv_records(path: Path, columns: ColumnSpec) -> Records:
    """A CSV's channels as float64 ``(n, d)`` rows, its device ids and times.

    Held to :func:`seismo.models.data.load_table`'s rules: a header (a UTF-8 BOM is
    ignored), at least one data row, every value a finite number.
    """
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise DataError(f"{path} is empty; expected a header row of column names")
        refuse_other_delimiter(path, header)
        plan = plan_columns(header, columns, str(path))
        wanted = [header.index(name) for name in plan.features]
        dev = None if plan.device is None else header.index(plan.device)
        when = None if plan.timestamp is None else header.index(plan.timestamp)
        devices, stamps, rows, lines = [], [], [], []
        for row in reader:
            if not row:
                continue
            where = f"{path}:{reader.line_num}"
            try:
                rows.append([float(row[i]) for i in wanted])
            except (IndexError, ValueError):
                raise DataError(f"{where}: {_bad_cell(row, wanted, header)}") from None
            if dev is not None:
                device = row[dev] if dev < len(row) else ""
                if not device:
                    raise DataError(f"{where}: no device id in column {plan.device!r}")
                devices.append(device)
            if when is not None:
                stamps.append(_epoch_ms(row[when] if when < len(row) else "", where))
            lines.append(reader.line_num)
    if not rows:
        raise DataError(f"{path} has a header but no data rows")
    x = _finite(path, rows, len(wanted), lines)
    if not plan.named:
        warn_time_like(x, plan.features, use="sent")
    return Records(x, plan.features, devices if dev is not None else None,
                   stamps if when is not None else None)  # fmt: skip


def _epoch_ms(cell: str, where: str) -> int:
    try:
        return epoch_ms(cell)
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None


def _bad_cell(row: list[str], wanted: list[int], header: list[str]) -> str:
    """Why a row's feature cells are not all numbers, naming the first bad one.

    >>> _bad_cell(["1", "x"], [0, 1], ["a", "b"])
    "column 'b': 'x' is not a number (column 'b' holds text: name it with --device-column b \
or --drop-columns b)"
    >>> _bad_cell(["1"], [0, 1], ["a", "b"])
    'the row has 1 columns, the header 2'
    """
    for i in wanted:
        if i >= len(row):
            return f"the row has {len(row)} columns, the header {len(header)}"
        try:
            float(row[i])
        except ValueError:
            name = header[i]
            return f"column {name!r}: {row[i]!r} is not a number{not_a_number_hint(name, row[i])}"
    return "non-numeric or missing value"


def _finite(path: Path, rows: list[list[float]], d: int, lines: list[int]) -> np.ndarray:
    """The rows as float64, refused where a value is not finite or beyond float32."""
    x = np.asarray(rows, dtype=np.float64).reshape(len(rows), d)
    with np.errstate(over="ignore"):  # overflow becomes Inf, reported just below
        bad = np.flatnonzero(~np.isfinite(x.astype(np.float32)).all(axis=1))
    if bad.size:
        raise DataError(f"{path}:{lines[bad[0]]}: NaN or Inf (or a value too large for float32)")
    return x


def _parquet_records(
    path: Path, x: np.ndarray, names: list[str], columns: ColumnSpec
) -> Records:
    """A Parquet file's device ids and times, next to the channels already read."""
    import pyarrow.parquet as pq

    plan = plan_columns(pq.read_schema(path).names, columns, str(path))
    wanted = [name for name in (plan.device, plan.timestamp) if name is not None]
    cells = pq.read_table(path, columns=wanted).to_pydict() if wanted else {}
    devices = None
    if plan.device is not None:
        devices = [str(v) if v is not None else "" for v in cells[plan.device]]
        if not all(devices):
            raise DataError(f"{path}: a row has no device id in column {plan.device!r}")
    ts = None
    if plan.timestamp is not None:
        where = f"{path}: column {plan.timestamp!r}"
        ts = [_epoch_ms(v, where) if v is not None else _epoch_ms("", where)
              for v in cells[plan.timestamp]]  # fmt: skip
    return Records(x, names, devices, ts)


def device_ids(n: int, given: Sequence[str] | None, devices: int) -> Iterator[str]:
    """Each row's device id: the given column, or rows spread round-robin.

    >>> list(device_ids(4, None, 2))
    ['device-0', 'device-1', 'device-0', 'device-1']
    """
    if given is not None:
        yield from given
        return
    for i in range(n):
        yield f"device-{i % max(devices, 1)}"


def run_produce(
    *,
    topic: str,
    data: Path,
    bootstrap_servers: str,
    rate: float,
    device_column: str | None,
    devices: int,
    label_column: str | None,
    limit: int | None,
    kafka_config: dict[str, str],
    encoding: str = "json",
    columns: ColumnSpec | None = None,
    positional: bool = False,
) -> int:
    """Publish the file's rows; return how many were confirmed by the broker.

    ``encoding`` is ``json`` (the event contract) or ``f32``
    (``application/x-seismo-f32``, :mod:`seismo.stream.scoring.f32_codec`;
    positional, the time in the Kafka timestamp). ``columns`` (default: from
    ``device_column`` and ``label_column``) says which columns are time,
    device and channels; JSON events name their channels unless ``positional``
    or the file has no header.
    """
    if encoding not in ENCODINGS:
        raise ConfigError(f"--encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    spec = columns or ColumnSpec(device_column=device_column, label_column=label_column)
    records = read_records(data, spec)
    n = len(records.x) if limit is None else min(limit, len(records.x))
    names = None if positional or encoding == "f32" else records.channels
    # positional values say which channels they follow, so a scorer whose model has
    # another order dead-letters them instead of scoring them as other channels
    order = (None if names is not None or not records.channels
             or is_positional(records.channels) else records.channels)  # fmt: skip
    producer = ConfirmingProducer(
        client_config(bootstrap_servers, PRODUCER_DEFAULTS, kafka_config)
    )
    producer.check_broker({topic: "--topic"})
    start = time.monotonic()
    sent = 0
    previous = signal.getsignal(signal.SIGINT)
    stop = _interrupt_between_rows()
    try:
        for i, device in zip(range(n), device_ids(n, records.devices, devices), strict=False):
            if stop.is_set():
                raise KeyboardInterrupt
            if rate > 0:
                delay = start + i / rate - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    raise KeyboardInterrupt
            ts = None if records.ts is None else records.ts[i]
            if encoding == "f32":
                producer.send(topic, encode_f32(records.x[i]), device.encode(),
                              f32_headers(str(i), order), timestamp=ts)  # fmt: skip
            else:
                value = encode_event(device, event_values(records.x[i], names), ts=ts,
                                     event_id=str(i))  # fmt: skip
                producer.send(topic, value, device.encode(),
                              None if order is None else [channels_header(order)])
            sent += 1
    except KeyboardInterrupt:  # say how far it got: rows 0 .. sent-1, confirmed below
        producer.flush(timeout_s=10.0)
        print(f"interrupted: published {sent} of {n} events to {topic} (the file's first "
              f"{sent} rows)", file=sys.stderr)  # fmt: skip
        raise
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)
    producer.flush(timeout_s=60.0)
    print(f"published {n} events to {topic}")
    return n


def _interrupt_between_rows() -> threading.Event:
    """Ctrl-C sets the event instead of raising where it lands: a row half sent (queued,
    not yet counted) would make the count it reports one short. A second Ctrl-C raises
    at once."""
    stop = threading.Event()

    def handler(_signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    if threading.current_thread() is threading.main_thread():  # signals reach it alone
        signal.signal(signal.SIGINT, handler)
    return stop


def event_values(row: np.ndarray, names: Sequence[str] | None) -> list[float] | dict[str, float]:
    """One row's values: named by channel, or positional without names.

    >>> event_values(np.array([1.5, 2.0]), ["temp", "rpm"]), event_values(np.array([1.0]), None)
    ({'temp': 1.5, 'rpm': 2.0}, [1.0])
    """
    values = row.tolist()
    return values if names is None else dict(zip(names, values, strict=True))
