"""Named values (``"values": {"temp": 1.5, ...}``): mapped to the model's order, or a reason."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.stream.scoring.codec import _decode_each, decode_batch, encode_event
from seismo.stream.scoring.fast_decode import fast_pass

CHANNELS = ["temp", "rh", "door", "rpm"]
D = len(CHANNELS)


def decode(*values: bytes | None, channels: list[str] | None = CHANNELS):
    return decode_batch(list(values), kafka_timestamps=[5] * len(values), n_features=D,
                        max_bytes=4096, channels=channels)  # fmt: skip


def named(values: object, **extra: object) -> bytes:
    return json.dumps({"device_id": "room-1", "values": values, **extra}).encode()


def test_named_values_in_any_order_come_out_in_the_model_order_on_the_fast_path():
    value = named({"rpm": 4, "door": 3, "temp": 1, "rh": 2}, ts=1732350000000)
    batch = decode(value)
    assert batch.values.tolist() == [[1.0, 2.0, 3.0, 4.0]] and batch.rejected == []
    assert batch.timestamps.tolist() == [1732350000000]
    assert fast_pass([value], n_features=D, max_bytes=4096, channels=CHANNELS).rows == [0]


def test_positional_and_named_events_mix_in_one_batch_in_order():
    batch = decode(encode_event("a", [1, 2, 3, 4]), named(dict(zip(CHANNELS[::-1], [4, 3, 2, 1],
                                                                  strict=True))))  # fmt: skip
    assert batch.values.tolist() == [[1, 2, 3, 4], [1, 2, 3, 4]]
    assert batch.device_ids == ["a", "room-1"]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"temp": 1, "rh": 2, "door": 3}, "missing channel 'rpm'"),
        ({"temp": 1, "rh": 2}, "missing channel 'door' (and 1 more)"),
        ({"temp": 1, "rh": 2, "door": 3, "rpm": 4, "fan": 5}, "unknown channel 'fan'"),
        ({"temp": 1, "rh": 2, "door": 3, "rmp": 4}, "unknown channel 'rmp'; missing channel 'rpm'"),
        ({"temp": 1, "rh": 2, "door": 3, "rpm": "4"},
         "field 'values' must map channel names to numbers"),
        ({"temp": 1, "rh": 2, "door": 3, "rpm": True},
         "field 'values' must map channel names to numbers"),
        ({"temp": 1, "rh": 2, "door": 3, "rpm": 1e300},
         "non-finite value in 'values' (NaN, Inf or beyond float32 range)"),
        ({}, "missing channel 'temp' (and 3 more)"),
    ],
)
def test_a_missing_or_unknown_channel_is_rejected_with_its_name(values, reason):
    batch = decode(named(values))
    assert len(batch) == 0 and [r.reason for r in batch.rejected] == [reason]


def test_a_long_channel_name_is_cut_in_the_reason():
    batch = decode(named({"x" * 500: 1, "temp": 1, "rh": 2, "door": 3, "rpm": 4}))
    assert batch.rejected[0].reason.startswith("unknown channel 'xxx")
    assert len(batch.rejected[0].reason) < 100


def test_without_channel_names_named_values_are_rejected_not_guessed():
    batch = decode(named(dict(zip(CHANNELS, [1, 2, 3, 4], strict=True))), channels=None)
    assert [r.reason for r in batch.rejected] == ["field 'values' must be an array of numbers"]


def test_encode_event_writes_named_values():
    assert orjson.loads(encode_event("d", {"temp": 1.5}, ts=3))["values"] == {"temp": 1.5}


names = st.sampled_from([*CHANNELS, "fan", "", "x" * 70, "temp "])
number = st.one_of(st.floats(allow_nan=False, width=64), st.integers(-(2**70), 2**70),
                   st.booleans(), st.just(3.5e38), st.text(max_size=3), st.none())  # fmt: skip


def _duplicated(pairs: list[tuple[str, object]]) -> bytes:
    """An object written by hand, so duplicate keys survive (the last one wins)."""
    body = ",".join(json.dumps(k) + ":" + json.dumps(v) for k, v in pairs)
    return b'{"device_id":"d","values":{' + body.encode() + b"}}"


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(
    st.dictionaries(names, number, max_size=6).map(named),
    st.lists(st.tuples(names, number), max_size=6).map(_duplicated),
    st.just(named(dict(zip(CHANNELS, [1, 2, 3, 4], strict=True)))),
), max_size=10))  # fmt: skip
def test_the_fast_path_decides_named_values_exactly_as_the_full_decoder(values):
    stamps = [7] * len(values)
    fast = decode_batch(values, kafka_timestamps=stamps, n_features=D, max_bytes=4096,
                        channels=CHANNELS)  # fmt: skip
    slow = _decode_each(values, range(len(values)), stamps, D, 4096, CHANNELS)
    assert fast.rows.tolist() == slow.rows.tolist()
    np.testing.assert_array_equal(fast.values, slow.values)
    assert [(r.index, r.reason) for r in fast.rejected] == [
        (r.index, r.reason) for r in slow.rejected
    ]
