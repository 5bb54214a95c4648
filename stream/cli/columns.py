"""The column options of ``seismo train``, ``evaluate`` and ``produce``: which columns
of a file are its time, its device ids, its channels, and which to leave out."""

from __future__ import annotations

from typing import Annotated

import typer

from seismo.models.columns import ColumnSpec, split_names

Opt = typer.Option

TimestampColumn = Annotated[
    str | None,
    Opt(help="Time column, never a channel [default: timestamp, when the file has one].",
        show_default=False),
]  # fmt: skip
DeviceColumn = Annotated[
    str | None,
    Opt(help="Device id column, never a channel [default: device_id, when the file has one].",
        show_default=False),
]  # fmt: skip
FeatureColumns = Annotated[
    str | None,
    Opt(help="Comma list: exactly these columns are the channels [default: every other].",
        show_default=False),
]  # fmt: skip
DropColumns = Annotated[
    str | None,
    Opt(help="Comma list of columns to leave out (ids, notes...).", show_default=False),
]  # fmt: skip


def column_spec(
    timestamp_column: str | None,
    device_column: str | None,
    feature_columns: str | None,
    drop_columns: str | None,
    label_column: str | None = None,
) -> ColumnSpec:
    """The options as a :class:`~seismo.models.columns.ColumnSpec`.

    >>> column_spec(None, "room", "temp,rh", "note").feature_columns
    ('temp', 'rh')
    """
    return ColumnSpec(
        timestamp_column=timestamp_column,
        device_column=device_column,
        feature_columns=split_names(feature_columns),
        drop_columns=split_names(drop_columns) or (),
        label_column=label_column,
    )
