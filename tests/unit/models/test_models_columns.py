"""Column roles: time, device, label, channels; matching a file to a model by name."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from seismo.models.columns import (
    ColumnSpec,
    epoch_ms,
    model_order,
    plan_columns,
    time_like,
)
from seismo.models.data import in_model_order, load_table, read_series
from seismo.models.errors import ChannelMismatch, DataError

HEADER = ["timestamp", "device_id", "temp", "rh", "door"]


def test_time_and_device_columns_are_never_channels_by_default():
    plan = plan_columns(HEADER, ColumnSpec(), "f.csv")
    assert (plan.timestamp, plan.device, plan.features) == ("timestamp", "device_id",
                                                            ["temp", "rh", "door"])  # fmt: skip
    assert not plan.named


def test_named_time_and_device_columns_and_drops():
    header = ["when", "room", "site", "temp", "rh"]
    plan = plan_columns(header, ColumnSpec(timestamp_column="when", device_column="room",
                                           drop_columns=("site",)), "f.csv")  # fmt: skip
    assert (plan.timestamp, plan.device, plan.features) == ("when", "room", ["temp", "rh"])


def test_feature_columns_pick_the_channels_in_their_order_even_the_time():
    plan = plan_columns(HEADER, ColumnSpec(feature_columns=("door", "timestamp")), "f.csv")
    assert plan.features == ["door", "timestamp"] and plan.named


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ColumnSpec(timestamp_column="time"), "no column 'time' for --timestamp-column"),
        (ColumnSpec(device_column="devise_id"), "(did you mean 'device_id'?)"),
        (ColumnSpec(feature_columns=("temp", "pressure")), "no column 'pressure'"),
        (ColumnSpec(drop_columns=("x",)), "no column 'x' for --drop-columns"),
        (ColumnSpec(label_column="y"), "has no label column 'y'"),
        (ColumnSpec(label_column="dor"), "has no label column 'dor' (did you mean 'door'?)"),
        (ColumnSpec(feature_columns=("temp",), drop_columns=("temp",)), "and --drop-columns"),
        (ColumnSpec(drop_columns=("temp", "rh", "door")), "no feature columns left"),
    ],
)
def test_a_column_option_the_header_cannot_satisfy_is_one_line_naming_it(spec, message):
    with pytest.raises(DataError, match=None) as caught:
        plan_columns(HEADER, spec, "f.csv")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_model_order_reorders_by_name():
    assert model_order(["door", "temp", "rh"], ["temp", "rh", "door"], "f").tolist() == [1, 2, 0]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["temp", "rh"], "no column for the model's channel 'door'"),
        (["temp", "rh", "door", "site"], "column 'site' is not a channel of the model; "
                                         "leave it out with --drop-columns site"),
        (["temp", "rh", "dor"], "(did you mean 'door'?)"),
    ],
)
def test_a_missing_or_extra_channel_is_a_channel_mismatch_naming_it(names, message):
    with pytest.raises(ChannelMismatch) as caught:
        model_order(names, ["temp", "rh", "door"], "f.csv")
    assert message in str(caught.value)


def test_stand_in_names_match_by_position():
    assert model_order(["f0", "f1"], ["temp", "rh"], "f") is None
    assert model_order(["temp", "rh"], ["f0", "f1"], "f") is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.arange(1.7e9, 1.7e9 + 600, 60), "epoch-like times"),
        (np.arange(1.7e12, 1.7e12 + 6e5, 6e4), "epoch-like times"),
        (np.arange(100.0, 0, -10), "strictly monotone integers (a counter or an index)"),
        (np.arange(20.0), "strictly monotone integers (a counter or an index)"),
        (np.arange(20.0) + 0.5, None),  # a ramp, not integers
        (np.array([1.0, 2, 2, 3, 4, 5, 6, 7, 8]), None),  # not strict
        (np.arange(5.0), None),  # too few rows to tell
        (np.random.default_rng(0).normal(size=50), None),
    ],
)
def test_time_like(values, expected):
    assert time_like(values) == expected


@pytest.mark.parametrize(
    ("cell", "ms"),
    [
        ("1732350000", 1732350000000),
        ("1732350000.5", 1732350000500),
        ("1732350000000", 1732350000000),
        ("2024-11-23T08:20:00Z", 1732350000000),
        ("2024-11-23 09:20:00+01:00", 1732350000000),
        ("2024-11-23 08:20:00", 1732350000000),
        (0, 0),
    ],
)
def test_epoch_ms_reads_seconds_milliseconds_and_iso(cell, ms):
    assert epoch_ms(cell) == ms


@pytest.mark.parametrize("cell", ["", "yesterday", "nan", "inf", "-5", "1e20"])
def test_epoch_ms_refuses_what_is_not_a_time(cell):
    with pytest.raises(ValueError):
        epoch_ms(cell)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def rooms_csv(path: Path, order: list[str], n: int = 12) -> Path:
    rng = np.random.default_rng(0)
    rows = {"timestamp": [f"2024-11-23T08:{i:02d}:00Z" for i in range(n)],
            "device_id": [f"room-{i % 3}" for i in range(n)],
            "temp": rng.normal(size=n).round(4), "rh": rng.normal(size=n).round(4),
            "door": rng.normal(size=n).round(4), "label": [i % 2 for i in range(n)]}  # fmt: skip
    lines = [",".join(order)] + [",".join(str(rows[c][i]) for c in order) for i in range(n)]
    return write(path, "\n".join(lines) + "\n")


def test_load_table_leaves_iso_times_and_device_text_out_of_the_channels(tmp_path):
    order = ["timestamp", "device_id", "temp", "rh", "door", "label"]
    table = load_table(rooms_csv(tmp_path / "a.csv", order), label_column="label")
    assert table.feature_names == ["temp", "rh", "door"] and table.x.shape == (12, 3)
    assert table.y is not None and table.y.tolist()[:2] == [0, 1]


def test_shuffled_columns_in_model_order_give_the_same_matrix(tmp_path):
    a = load_table(rooms_csv(tmp_path / "a.csv", ["timestamp", "device_id", "temp", "rh",
                                                  "door", "label"]), label_column="label")
    b = load_table(rooms_csv(tmp_path / "b.csv", ["door", "label", "rh", "device_id", "temp",
                                                  "timestamp"]), label_column="label")
    assert b.feature_names == ["door", "rh", "temp"]
    matched = in_model_order(b, a.feature_names, "b.csv")
    assert matched.feature_names == a.feature_names
    np.testing.assert_array_equal(matched.x, a.x)


def test_in_model_order_refuses_a_missing_channel(tmp_path):
    table = load_table(rooms_csv(tmp_path / "a.csv", ["timestamp", "temp", "rh"]))
    with pytest.raises(ChannelMismatch, match="no column for the model's channel 'door'"):
        in_model_order(table, ["temp", "rh", "door"], "a.csv")


def test_a_counter_about_to_be_a_channel_is_a_warning_naming_it(tmp_path, caplog):
    text = "seq,temp\n" + "".join(f"{i},{(-1) ** i * 0.5}\n" for i in range(10))
    with caplog.at_level(logging.WARNING, logger="seismo.models.data"):
        load_table(write(tmp_path / "c.csv", text))
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "column 'seq' holds strictly monotone integers" in record.getMessage()
    assert "--drop-columns seq" in record.getMessage()


def test_an_epoch_time_column_by_another_name_is_refused_unless_the_channels_are_named(tmp_path):
    """It was a WARNING, above the progress bar, and the model trained on the time: the
    scorer then flagged about half of a stream (a stranger's run)."""
    text = "time,temp\n" + "".join(f"{1732350000 + 60 * i},{i % 3}\n" for i in range(10))
    path = write(tmp_path / "c.csv", text)
    with pytest.raises(DataError, match="column 'time' holds epoch-like times: name it with "
                                        "--timestamp-column time or leave it out"):
        load_table(path)
    assert load_table(path, columns=ColumnSpec(timestamp_column="time")).feature_names == [
        "temp"
    ]
    named = ColumnSpec(feature_columns=("time", "temp"))
    assert load_table(path, columns=named).feature_names == ["time", "temp"]
    # rows for a model that has its channels (evaluate, produce): a warning, as before
    assert load_table(path, refuse_times=False).feature_names == ["time", "temp"]


def test_no_warning_for_a_counter_named_as_a_feature_or_for_plain_channels(tmp_path, caplog):
    text = "seq,temp\n" + "".join(f"{i},{(-1) ** i * 0.5}\n" for i in range(10))
    path = write(tmp_path / "c.csv", text)
    with caplog.at_level(logging.WARNING, logger="seismo.models.data"):
        load_table(path, columns=ColumnSpec(feature_columns=("seq", "temp")))
        load_table(path, columns=ColumnSpec(drop_columns=("seq",)))
    assert caplog.records == []


def test_an_iso_time_column_about_to_be_a_channel_is_an_error_saying_how_to_exclude_it(tmp_path):
    path = write(tmp_path / "t.csv", "time,temp\n2024-11-23 08:20:00,1.5\n")
    with pytest.raises(DataError, match="column 'time' holds times: name it with "
                                        "--timestamp-column time or --drop-columns time"):
        load_table(path)
    assert load_table(path, columns=ColumnSpec(timestamp_column="time")).feature_names == [
        "temp"
    ]


def test_a_text_column_is_an_error_pointing_at_device_or_drop(tmp_path):
    path = write(tmp_path / "t.csv", "room,temp\nr1,1.5\n")
    with pytest.raises(DataError, match="--device-column room or --drop-columns room"):
        load_table(path)


def test_a_short_row_is_still_found_when_only_some_columns_are_read(tmp_path):
    path = write(tmp_path / "t.csv", "timestamp,temp,rh\n1,2,3\n4,5\n")
    with pytest.raises(DataError, match="line 3 has 2 columns"):
        load_table(path)


def test_read_series_leaves_out_the_device_and_dropped_columns(tmp_path):
    path = rooms_csv(tmp_path / "s.csv", ["timestamp", "device_id", "temp", "rh", "label"])
    series = read_series(path, ColumnSpec(drop_columns=("label",)))
    assert series.channels == ["temp", "rh"] and series.values.shape == (12, 2)


def test_window_training_data_never_mixes_the_readings_of_two_devices(tmp_path, caplog):
    """Three devices interleaved row by row, each at its own level: every training window
    holds one device's consecutive readings, as the scorer's windows (per device key) do.
    Before, windows slid across the interleaved rows and a model trained on them alerted
    on every normal window of every device (found by a stranger helper)."""
    from seismo.stream.offline.train import series_table

    levels = {"cold": 0.0, "warm": 100.0, "frz": 1000.0}
    lines = ["timestamp,device_id,temp,compressor"]
    for i in range(30):  # cold gets 10 readings, warm 10, frz 10; rows interleaved
        device = list(levels)[i % 3]
        step = i // 3
        lines.append(f"{1000 + i},{device},{levels[device] + step},{levels[device] + 0.5}")
    path = write(tmp_path / "multi.csv", "\n".join(lines) + "\n")
    table = series_table(path, ColumnSpec(), window=4, train_share=1.0)
    assert table.x.shape == (3 * (10 - 4 + 1), 8)
    temps = table.x[:, 0::2]  # the window's four temperatures, oldest first
    base = np.floor(temps[:, :1] / 100) * 100  # each window's device level
    assert (np.floor(temps / 100) * 100 == base).all(), "a window mixes devices"
    np.testing.assert_array_equal(np.diff(temps, axis=1), 1.0)  # consecutive readings
    # --train-share takes the first share of each device's own readings
    half = series_table(path, ColumnSpec(), window=4, train_share=0.5)
    assert half.x.shape == (3 * (5 - 4 + 1), 8)
    # no device with a window's readings: one line, not an empty model
    with pytest.raises(DataError, match="no device has 12 readings"):
        series_table(path, ColumnSpec(), window=12, train_share=1.0)
    # a device too short for a window is named in a warning, the others train
    short = write(tmp_path / "short.csv", "\n".join(lines + ["2000,lone,1.0,1.0"]) + "\n")
    with caplog.at_level(logging.WARNING, logger="seismo.stream.offline.train"):
        assert series_table(short, ColumnSpec(), window=4, train_share=1.0).x.shape == (21, 8)
    assert "1 of 4 devices have fewer than 4 readings" in caplog.text
    # without a device column, a file shorter than the window keeps the window's own error
    single = write(tmp_path / "single.csv", "timestamp,temp\n1,1.0\n2,2.0\n")
    with pytest.raises(DataError, match="a window of 4 needs at least 4 readings"):
        series_table(single, ColumnSpec(), window=4, train_share=1.0)


@pytest.mark.parametrize(
    ("cells", "label", "expected"),
    [
        ("1.5,", None, "an empty cell in column 'rh': every feature needs a reading"),
        ('1.5,"3,61"', None, "a decimal comma in column 'rh': write 3.61"),
        ("1.5,true", None, "column 'rh' holds true/false: write 1/0"),
        ("1.5,dry", None, "column 'rh' holds numbers in the rows above: fix or remove"),
        ("1.5,normal", "rh", "the label column 'rh' must hold 0 (normal) or 1 (anomaly)"),
    ],
    ids=["empty", "decimal-comma", "boolean", "one-bad-cell", "label"],
)
def test_a_cell_that_is_not_a_number_gets_the_hint_that_fits_it(tmp_path, cells, label, expected):
    """Before, every such cell got the hint for a column of names (--device-column), even
    an empty cell, a decimal comma or a label column already named (a stranger helper)."""
    path = write(tmp_path / "t.csv", f"temp,rh\n1.0,2.0\n{cells}\n")
    with pytest.raises(DataError, match=r"line 3, column 2: .* is not a number \(") as refused:
        load_table(path, label_column=label)
    assert expected in str(refused.value)


def test_a_numeric_id_column_about_to_be_a_channel_is_named_in_a_warning(tmp_path, caplog):
    """sensor_id = 100/101/102 became a channel without a word (a stranger helper)."""
    rows = "\n".join(f"{100 + i % 3},{20 + i * 0.1:.1f}" for i in range(12))
    path = write(tmp_path / "t.csv", f"sensor_id,temp\n{rows}\n")
    with caplog.at_level(logging.WARNING, logger="seismo.models.data"):
        assert load_table(path).feature_names == ["sensor_id", "temp"]
    assert [r.getMessage() for r in caplog.records] == [
        "column 'sensor_id' is named as an id and holds integers, and is trained on as a "
        "channel; if it names devices, name it with --device-column sensor_id, or leave it "
        "out with --drop-columns sensor_id"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="seismo.models.data"):
        table = load_table(path, columns=ColumnSpec(device_column="sensor_id"))
    assert table.feature_names == ["temp"] and caplog.records == []


def test_a_column_of_text_or_a_units_row_gets_the_hint_that_fits_it(tmp_path):
    """A stranger's single 'ERR' cell deep in a column of numbers, and a units row under
    the header, both got the hint for a column of device names (--device-column)."""
    text = write(tmp_path / "t.csv", "temp,site\n1.0,pump-7\n2.0,pump-8\n")
    with pytest.raises(DataError, match="column 'site' holds text: name it with "
                                        "--device-column site"):
        load_table(text)
    units = write(tmp_path / "u.csv", "temp,rpm\ndegC,rpm\n1.0,2.0\n")
    with pytest.raises(DataError, match="line 2 holds no number in any value column "
                                        "\\('degC', 'rpm', ...\\): a second header row"):
        load_table(units)
