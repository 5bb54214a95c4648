"""Decoding and validation: any bytes in, a vector or a dead-letter reason out."""

from __future__ import annotations

import json
import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.stream.scoring.codec import DecodedBatch, decode_batch, encode_event, parse_timestamp

D = 4


def decode(*values: bytes | None, n_features: int = D, max_bytes: int = 4096) -> DecodedBatch:
    return decode_batch(
        list(values),
        kafka_timestamps=[777] * len(values),
        n_features=n_features,
        max_bytes=max_bytes,
    )


def reason(value: bytes | None, **kw) -> str:
    batch = decode(value, **kw)
    assert len(batch) == 0, "expected a rejection"
    return batch.rejected[0].reason


def event(**fields) -> bytes:
    base = {"device_id": "pump-1", "values": [1.0, 2.0, 3.0, 4.0]}
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def test_valid_event_decodes_to_float32_row_with_metadata():
    batch = decode(event(ts=1_700_000_000_000, id="e-9"))
    assert batch.values.dtype == np.float32
    assert batch.values.tolist() == [[1.0, 2.0, 3.0, 4.0]]
    assert batch.device_ids == ["pump-1"]
    assert batch.event_ids == ["e-9"]
    assert batch.timestamps.tolist() == [1_700_000_000_000]
    assert batch.rejected == []


def test_missing_ts_falls_back_to_kafka_timestamp_and_int_id_is_accepted():
    batch = decode(event(id=12))
    assert batch.timestamps.tolist() == [777]
    assert batch.event_ids == ["12"]


def test_iso_timestamp_is_parsed_as_utc_epoch_ms():
    batch = decode(event(ts="2024-01-01T00:00:00Z"))
    assert batch.timestamps.tolist() == [1_704_067_200_000]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "empty message value (tombstone)"),
        (b"", "empty message value (tombstone)"),
        (b"{not json", "invalid JSON"),
        (b"\xff\xfe{}", "invalid UTF-8"),
        (b"[1, 2]", "event is not a JSON object"),
        (event(device_id=...), "missing field 'device_id'"),
        (event(device_id=""), "field 'device_id' must be a non-empty string"),
        (event(device_id=5), "field 'device_id' must be a non-empty string"),
        (event(values=...), "missing field 'values'"),
        (event(values="1,2,3,4"), "field 'values' must be an array of numbers"),
        (event(values=[1, 2, 3]), "expected 4 values, got 3"),
        (event(values=[1, 2, "3", 4]), "field 'values' must be an array of numbers"),
        (event(values=[1, 2, True, 4]), "field 'values' must be an array of numbers"),
        (event(values=[1, 2, [3], 4]), "field 'values' must be an array of numbers"),
        (event(values=[1, 2, None, 4]), "field 'values' must be an array of numbers"),
        (
            event(values=[1, 2, 1e300, 4]),
            "non-finite value in 'values' (NaN, Inf or beyond float32 range)",
        ),
        (event(ts=True), "field 'ts' must be epoch milliseconds (integer) or an ISO-8601 string"),
        (event(ts=-5), "field 'ts' out of range: -5"),
        (event(ts="yesterday"), "field 'ts' is not an ISO-8601 time: 'yesterday'"),
        (event(id=""), "field 'id' must be a non-empty string"),
        (event(id="x" * 300), "field 'id' longer than 256 characters"),
    ],
)
def test_each_invalid_event_gets_its_reason(value, expected):
    assert reason(value).split(":")[0] == expected.split(":")[0]
    assert reason(value).startswith(expected)


def test_nan_and_infinity_literals_are_rejected():
    for raw in (
        b'{"device_id":"d","values":[NaN,1,2,3]}',
        b'{"device_id":"d","values":[Infinity,1,2,3]}',
    ):
        assert reason(raw).split(":")[0] == "invalid JSON"


def test_oversize_message_is_rejected_before_parsing():
    big = event(pad="x" * 5000)
    assert reason(big) == f"message of {len(big)} bytes exceeds the limit of 4096"


def test_deeply_nested_json_is_rejected_not_crashing():
    nested = b"[" * 100_000 + b"]" * 100_000
    assert reason(nested, max_bytes=1_000_000) == "too deeply nested"


def nested(depth: int, kinds: str) -> bytes:
    """``depth`` levels of arrays and objects (``kinds`` cycles through "a" and "o")."""
    opens, closes = [], []
    for level in range(depth):
        if kinds[level % len(kinds)] == "a":
            opens.append(b"[")
            closes.append(b"]")
        else:
            opens.append(b'{"k":')
            closes.append(b"}")
    return b"".join(opens) + b"1" + b"".join(reversed(closes))


@pytest.mark.parametrize("kinds", ["a", "o", "ao"])
@pytest.mark.parametrize("where", ["x", "values", "device_id", "ts", "id"])
def test_deep_nesting_in_any_field_is_dead_lettered_as_too_deeply_nested(kinds, where):
    # msgspec raises RecursionError (not a DecodeError) for this even in a field it ignores
    body = b'{"device_id":"d","values":[1,2,3,4],"' + where.encode() + b'":'
    raw = body + nested(1500, kinds) + b"}"
    batch = decode(raw, event(id="after"), max_bytes=100_000)
    assert batch.event_ids == ["after"]
    assert [(r.index, r.reason) for r in batch.rejected] == [(0, "too deeply nested")]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000), st.sampled_from(["a", "o", "ao", "oa", "aao"]),
       st.sampled_from(["x", "values", "extra"]))  # fmt: skip
def test_nesting_of_any_depth_gives_a_row_or_a_reason(depth, kinds, where):
    raw = b'{"device_id":"d","values":[1,2,3,4],"' + where.encode() + b'":'
    raw += nested(depth, kinds) + b"}"
    batch = decode(raw, max_bytes=100_000)
    assert len(batch) + len(batch.rejected) == 1
    if where != "values" and depth <= 500:
        assert len(batch) == 1  # shallow nesting in an unknown field is simply ignored


def test_a_batch_that_raises_is_decided_message_by_message():
    # A header value of a type no client produces makes the batch-level split raise;
    # the safety net decodes every message alone and rejects only the one that raises.
    values = [event(id="a"), event(id="b"), event(id="c")]
    headers = [None, [("content-type", 5)], [("content-type", b"application/json")]]
    batch = decode_batch(values, kafka_timestamps=[1, 2, 3], n_features=D, headers=headers,
                         keys=[None, None, None])  # fmt: skip
    assert batch.event_ids == ["a", "c"]
    assert batch.rows.tolist() == [0, 2]
    assert [(r.index, r.reason) for r in batch.rejected] == [(1, "cannot decode: AttributeError")]


def test_batch_keeps_good_rows_around_bad_ones_in_order():
    batch = decode(event(id="a"), b"junk", event(id="b"), event(values=[1]), event(id="c"))
    assert batch.rows.tolist() == [0, 2, 4]
    assert batch.event_ids == ["a", "b", "c"]
    assert [r.index for r in batch.rejected] == [1, 3]


def test_input_bytes_are_not_mutated_and_empty_batch_is_empty():
    raw = bytearray(event())
    copy = bytes(raw)
    decode(bytes(raw))
    assert bytes(raw) == copy
    empty = decode()
    assert empty.values.shape == (0, D) and empty.rejected == []


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.none(), st.binary(max_size=200)), max_size=20))
def test_any_bytes_give_rows_or_reasons_never_an_exception(values):
    batch = decode(*values)
    seen = sorted(batch.rows.tolist() + [r.index for r in batch.rejected])
    assert seen == list(range(len(values)))
    assert batch.values.shape == (len(batch.rows), D)
    assert np.isfinite(batch.values).all()
    assert all(r.reason for r in batch.rejected)


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=10),
)
json_value = st.recursive(
    json_leaf,
    lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=8), c, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["device_id", "values", "ts", "id", "x"]), json_value, max_size=5
    )
)
def test_any_json_object_gives_a_row_or_a_reason(obj):
    batch = decode(orjson.dumps(obj))
    assert len(batch) + len(batch.rejected) == 1


@settings(max_examples=200, deadline=None)
@given(
    st.text(min_size=1, max_size=30),
    st.lists(st.floats(min_value=-1e30, max_value=1e30, allow_nan=False), min_size=D, max_size=D),
    st.integers(min_value=0, max_value=2**45),
)
def test_encoded_events_round_trip(device, values, ts):
    batch = decode(encode_event(device, values, ts=ts, event_id="i"))
    assert batch.device_ids == [device]
    assert batch.timestamps.tolist() == [ts]
    np.testing.assert_allclose(batch.values[0], np.float32(values), rtol=1e-6)


def test_parse_timestamp_floors_sub_millisecond_iso():
    assert parse_timestamp("1970-01-01T00:00:00.0019+00:00") == 1
    assert math.isclose(parse_timestamp("1970-01-01T00:00:01"), 1000)


def reference(values, stamps):
    """The full decoder on every message: what the fast path must reproduce exactly."""
    from seismo.stream.scoring.codec import _decode_each

    return _decode_each(values, range(len(values)), stamps, D, 1_000)


def assert_same(fast, slow):
    assert fast.rows.tolist() == slow.rows.tolist()
    np.testing.assert_array_equal(fast.values, slow.values)
    assert fast.device_ids == slow.device_ids and fast.event_ids == slow.event_ids
    assert fast.timestamps.tolist() == slow.timestamps.tolist()
    assert [(r.index, r.reason) for r in fast.rejected] == [
        (r.index, r.reason) for r in slow.rejected
    ]


tricky_text = st.one_of(
    st.text(max_size=12), st.just(""), st.just("x" * 257), st.just("\ud800"), st.just("\u0000")
)
event_like = st.fixed_dictionaries(
    {"device_id": st.one_of(tricky_text, st.integers(), st.none(), st.booleans())},
    optional={
        "values": st.one_of(
            st.lists(st.one_of(st.floats(allow_nan=False, width=64), st.integers(-(2**70), 2**70),
                               st.booleans(), st.just(3.5e38), st.just(1e39)),
                     min_size=D - 1, max_size=D + 1),  # fmt: skip
            json_value,
        ),
        "ts": st.one_of(st.integers(-(2**64), 2**64), st.just("2024-11-23T08:20:00Z"),
                        st.text(max_size=5), st.booleans(), st.floats(), st.none()),  # fmt: skip
        "id": st.one_of(tricky_text, st.integers(-(2**300), 2**300), st.booleans(), st.none()),
        "extra": json_value,
    },
)


def _encode(obj) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:  # a lone surrogate: orjson refuses it; write it escaped by hand
        return str(obj).encode("utf-8", "surrogatepass")


@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(event_like.map(_encode), st.binary(max_size=60), st.none()),
                max_size=12),  # fmt: skip
       st.integers(0, 2**40))
def test_the_fast_path_decides_exactly_as_the_full_decoder(values, ts):
    stamps = [ts + i for i in range(len(values))]
    assert_same(decode_batch(values, kafka_timestamps=stamps, n_features=D, max_bytes=1_000),
                reference(values, stamps))  # fmt: skip


def test_the_fast_path_keeps_batch_order_when_both_paths_accept() -> None:
    values = [
        b'{"device_id":"a","values":[1,2,3,4],"ts":"2024-11-23T08:20:00Z"}',  # full decoder
        encode_event("b", [1, 2, 3, 4], ts=5),  # fast path
        b'{"device_id":"c","values":[1,2,3,4],"ts":"2024-11-23T08:20:00Z"}',
        encode_event("d", [5, 6, 7, 8]),
    ]
    batch = decode_batch(values, kafka_timestamps=[9, 9, 9, 9], n_features=D)
    assert batch.device_ids == ["a", "b", "c", "d"] and batch.rows.tolist() == [0, 1, 2, 3]
    assert batch.timestamps.tolist() == [1732350000000, 5, 1732350000000, 9]
    assert_same(batch, reference(values, [9, 9, 9, 9]))
    from seismo.stream.scoring.fast_decode import fast_pass

    assert fast_pass(values, n_features=D, max_bytes=1_000).rows == [1, 3]  # the rest went slow


@pytest.mark.parametrize(
    "extra",
    [{"id": ""}, {"id": "x" * 257}, {"ts": -1}, {"ts": 100_000_000_000_000},
     {"values": [1e39] * D}, {"values": [2**60 + 2**36 + 1] * D}],
)
def test_what_the_fast_path_cannot_vouch_for_goes_to_the_full_decoder(extra) -> None:
    from seismo.stream.scoring.fast_decode import MAX_TS_MS, fast_pass

    assert MAX_TS_MS == 100_000_000_000_000
    value = orjson.dumps({"device_id": "a", "values": [1.0] * D, **extra})
    fast = fast_pass([value], n_features=D, max_bytes=1_000)
    assert fast.rows == [] and fast.slow == [0]
    assert_same(decode_batch([value], kafka_timestamps=[7], n_features=D),
                reference([value], [7]))  # fmt: skip


@pytest.mark.parametrize("ident", [b"9" * 257, b"9" * 400, b"-9223372036854775809"])
def test_an_integer_id_beyond_64_bits_is_decided_by_the_full_decoder(ident) -> None:
    from seismo.stream.scoring.fast_decode import fast_pass

    value = b'{"device_id":"d","values":[1,2,3,4],"id":' + ident + b"}"
    assert fast_pass([value], n_features=D, max_bytes=1_000).slow == [0]
    batch = decode_batch([value], kafka_timestamps=[0], n_features=D)
    assert batch.device_ids == [] and len(batch.rejected) == 1  # orjson reads it as a float
    assert_same(batch, reference([value], [0]))


def test_integer_values_are_rounded_to_float32_as_the_full_decoder_rounds_them() -> None:
    big = 2**60 + 2**36 + 1  # float64 then float32 would round it down, directly up
    value = orjson.dumps({"device_id": "d", "values": [big] * D})
    batch = decode_batch([value], kafka_timestamps=[0], n_features=D)
    assert batch.values[0, 0] == np.float32(np.int64(big))
    assert_same(batch, reference([value], [0]))


def test_a_message_whose_headers_cannot_be_read_is_rejected_alone() -> None:
    from seismo.stream.scoring.codec import Unreadable

    value = b'{"device_id":"a","values":[1,2,3,4]}'
    batch = decode_batch([value, value, value], kafka_timestamps=[0, 0, 0], n_features=4,
                         headers=[None, Unreadable("headers not readable (UnicodeDecodeError)"),
                                  [("content-type", b"application/json")]])  # fmt: skip
    assert batch.rows.tolist() == [0, 2]
    assert [(r.index, r.reason) for r in batch.rejected] == [
        (1, "headers not readable (UnicodeDecodeError)")]


# Events of the fast path's shape (device_id, values and optionally ts and id), written by
# hand so keys repeat, come escaped or unknown, and values nest: a faster tier tried here
# (simdjson: it reads the first of repeated keys, and flattens nested arrays) has to
# decide these exactly as the full decoder does too.
_KEYS = [b'"device_id"', b'"values"', b'"ts"', b'"id"', b'"\\u0074s"', b'"extra"',
         b'"device\\u005fid"']  # fmt: skip
_number = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                    st.integers(-(2**70), 2**70), st.just(3.5e38), st.just(-0.0))  # fmt: skip
_field = {
    b'"device_id"': st.one_of(st.text(max_size=5), st.just("x" * 257), st.just("[a]"),
                              st.integers(), st.none()),  # fmt: skip
    b'"values"': st.one_of(
        st.lists(_number, min_size=D - 1, max_size=D + 1),
        st.lists(st.one_of(_number, st.lists(_number, max_size=2), st.booleans(), st.none()),
                 min_size=D, max_size=D),  # fmt: skip
    ),
    b'"ts"': st.one_of(st.integers(-5, 2**64), st.none(), st.floats(),
                       st.just("2024-11-23T08:20:00Z")),  # fmt: skip
    b'"id"': st.one_of(st.text(max_size=4), st.integers(-(2**64), 2**64), st.none(), st.just("")),
}


def _pair(key: bytes):
    return st.tuples(st.just(key), _field.get(key, st.integers()))


def _object(pairs) -> bytes:
    return b"{" + b",".join(k + b":" + json.dumps(v).encode() for k, v in pairs) + b"}"


_more = st.lists(st.sampled_from(_KEYS).flatmap(_pair), max_size=3)
_plain = st.tuples(_pair(b'"device_id"'), _pair(b'"values"'), _more).flatmap(
    lambda t: st.permutations([t[0], t[1], *t[2]])
).map(_object)


@settings(max_examples=600, deadline=None)
@given(st.lists(_plain, min_size=1, max_size=8), st.randoms())
def test_plain_events_decide_as_the_full_decoder_in_either_key_order(values, rnd) -> None:
    rnd.shuffle(values)
    stamps = list(range(len(values)))
    assert_same(decode_batch(values, kafka_timestamps=stamps, n_features=D, max_bytes=1_000),
                reference(values, stamps))  # fmt: skip


def test_nan_or_infinity_as_a_value_is_named_in_the_reason():
    """What Python's json.dumps writes for a NaN reading was dead-lettered as "invalid
    JSON: unexpected character" (a stranger's run): the reason now says what it is."""
    from seismo.stream.scoring.codec import NON_FINITE_JSON

    values = [b'{"device_id": "a", "values": [1.0, NaN, 2.0]}',
              b'{"device_id": "a", "values": {"temp": -Infinity, "rpm": 1, "x": 2}}',
              b'{"device_id": "NaN,", "values": [1, x, 2]}']  # fmt: skip
    batch = decode_batch(values, kafka_timestamps=[1, 2, 3], n_features=3,
                         channels=["temp", "rpm", "x"])  # fmt: skip
    reasons = [r.reason for r in batch.rejected]
    assert reasons[:2] == [NON_FINITE_JSON] * 2
    assert reasons[2].startswith("invalid JSON: unexpected character")
