"""``seismo produce``: publish the rows of a file as contract events.

Each row becomes ``{"device_id", "values", "id"}`` with ``id`` = the row index,
keyed by device id, so replays can be joined with their ground truth.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from seismo.models.data import load_table
from seismo.stream.errors import ConfigError, DataError
from seismo.stream.io.kafka import PRODUCER_DEFAULTS, ConfirmingProducer, client_config
from seismo.stream.scoring.codec import encode_event
from seismo.stream.scoring.f32_codec import encode_f32, f32_headers

#: Event encodings ``seismo produce`` writes.
ENCODINGS = ("json", "f32")


def read_rows(
    path: Path, device_column: str | None, label_column: str | None
) -> tuple[np.ndarray, list[str] | None]:
    """Feature rows ``(n, d)`` and, with ``device_column``, each row's device id."""
    if device_column is None:
        return load_table(path, label_column=label_column).x, None
    if path.suffix.lower() != ".csv":
        raise DataError("--device-column is supported for .csv files")
    try:
        return _read_device_csv(path, device_column, label_column)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def _read_device_csv(
    path: Path, device_column: str, label_column: str | None
) -> tuple[np.ndarray, list[str]]:
    """A CSV's numeric columns as float32 ``(n, d)`` rows, and its ``device_column``.

    Held to :func:`seismo.models.data.load_table`'s rules: a header (a UTF-8 BOM is
    ignored), at least one data row, every value a finite number.
    """
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = [f for f in reader.fieldnames or [] if f is not None]
        if device_column not in fields:
            raise DataError(f"{path}: no column {device_column!r} (columns: {', '.join(fields)})")
        names = [f for f in fields if f not in (device_column, label_column)]
        devices, rows, lines = [], [], []
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if not row[device_column]:
                raise DataError(f"{where}: no device id in column {device_column!r}")
            try:
                rows.append([float(row[f]) for f in names])
            except (TypeError, ValueError):
                raise DataError(f"{where}: non-numeric or missing value") from None
            devices.append(row[device_column])
            lines.append(reader.line_num)
    if not rows:
        raise DataError(f"{path} has a header but no data rows")
    with np.errstate(over="ignore"):  # overflow becomes Inf, reported just below
        x = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(names))
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        line = lines[bad[0]]
        raise DataError(f"{path}:{line}: NaN or Inf (or a value too large for float32)")
    return x, devices


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
) -> int:
    """Publish the file's rows; return how many were confirmed by the broker.

    ``encoding`` is ``json`` (the event contract) or ``f32``
    (``application/x-seismo-f32``, :mod:`seismo.stream.scoring.f32_codec`).
    """
    if encoding not in ENCODINGS:
        raise ConfigError(f"--encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    x, given = read_rows(data, device_column, label_column)
    n = len(x) if limit is None else min(limit, len(x))
    producer = ConfirmingProducer(
        client_config(bootstrap_servers, PRODUCER_DEFAULTS, kafka_config)
    )
    producer.check_broker([topic])
    start = time.monotonic()
    for i, device in zip(range(n), device_ids(n, given, devices), strict=False):
        if rate > 0:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if encoding == "f32":
            producer.send(topic, encode_f32(x[i]), device.encode(), f32_headers(str(i)))
        else:
            value = encode_event(device, x[i].tolist(), event_id=str(i))
            producer.send(topic, value, device.encode())
    producer.flush(timeout_s=60.0)
    print(f"published {n} events to {topic}")
    return n
