"""The binary encoding ``application/x-seismo-f32``, alone and mixed with JSON events."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.stream.scoring.codec import (
    DecodedBatch,
    Encodings,
    Headers,
    _content_type,
    decode_batch,
    expected_channels,
    misordered,
    split_encodings,
)
from seismo.stream.scoring.f32_codec import CONTENT_TYPE, encode_f32, f32_headers

D = 3
F32 = f32_headers()


def decode(
    values: list[bytes | None], headers: list[Headers], keys: list[bytes | None]
) -> DecodedBatch:
    return decode_batch(
        values,
        kafka_timestamps=[1000 + i for i in range(len(values))],
        n_features=D,
        max_bytes=4096,
        headers=headers,
        keys=keys,
    )


def test_binary_events_decode_with_key_timestamp_and_id_header():
    batch = decode(
        [encode_f32([1.5, -2.0, 3.25]), encode_f32([0, 0, 1e30])],
        [f32_headers("e-1"), F32],
        [b"pump-1", b"pump-2"],
    )
    np.testing.assert_array_equal(batch.values, np.float32([[1.5, -2.0, 3.25], [0, 0, 1e30]]))
    assert batch.values.dtype == np.float32
    assert batch.device_ids == ["pump-1", "pump-2"]
    assert batch.event_ids == ["e-1", None]
    assert batch.timestamps.tolist() == [1000, 1001]
    assert batch.rows.tolist() == [0, 1]
    assert batch.rejected == []


def test_each_bad_binary_event_gets_its_reason_and_good_ones_survive():
    good = encode_f32([1, 2, 3])
    nan = encode_f32([1, float("nan"), 3])
    inf = encode_f32([float("inf"), 2, 3])
    batch = decode(
        [good, good[:-1], nan, good, inf, None, good, good],
        [F32] * 8,
        [b"a", b"b", b"c", None, b"e", b"f", b"\xff\xfe", b"h"],
    )
    assert batch.rows.tolist() == [0, 7]
    assert batch.device_ids == ["a", "h"]
    reasons = {r.index: r.reason for r in batch.rejected}
    assert reasons == {
        1: f"{CONTENT_TYPE} value of 11 bytes; expected 12 (3 float32)",
        2: "non-finite value in 'values' (NaN, Inf)",
        3: f"{CONTENT_TYPE} event without a message key (the device id)",
        4: "non-finite value in 'values' (NaN, Inf)",
        5: f"{CONTENT_TYPE} value of 0 bytes; expected 12 (3 float32)",
        6: f"{CONTENT_TYPE} message key is not UTF-8",
    }
    assert [r.index for r in batch.rejected] == sorted(reasons)


def test_an_overlong_key_is_refused():
    batch = decode([encode_f32([1, 2, 3])], [F32], [b"k" * 257])
    assert len(batch) == 0
    assert batch.rejected[0].reason == "message key longer than 256 characters"


def test_unknown_content_type_is_dead_lettered_and_json_header_means_json():
    json_event = orjson.dumps({"device_id": "j", "values": [1, 2, 3]})
    batch = decode(
        [json_event, json_event, b"1,2,3"],
        [[("Content-Type", b"application/json; charset=utf-8")], None,
         [("content-type", b"text/csv")]],
        [None, None, b"c"],
    )  # fmt: skip
    assert batch.rows.tolist() == [0, 1]
    assert [(r.index, r.reason) for r in batch.rejected] == [
        (2, "unsupported content-type 'text/csv'")
    ]


def test_headers_as_a_mapping_and_string_values_are_understood():
    batch = decode([encode_f32([1, 2, 3])], [{"content-type": CONTENT_TYPE}], [b"m"])
    assert batch.device_ids == ["m"]


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
rows = st.lists(st.lists(finite32, min_size=D, max_size=D), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(rows, st.lists(st.booleans(), min_size=30, max_size=30))
def test_a_mixed_batch_decodes_like_the_same_events_in_json(values, binary):
    """Each event sent as f32 or JSON at random: the same matrix, in the same order."""
    payloads: list[bytes | None] = []
    headers: list[Headers] = []
    keys: list[bytes | None] = []
    for i, row in enumerate(values):
        device = f"d{i}"
        if binary[i]:
            payloads.append(encode_f32(row))
            headers.append(f32_headers(f"id-{i}"))
        else:
            payloads.append(orjson.dumps({"device_id": device, "values": row, "id": f"id-{i}"}))
            headers.append(None)
        keys.append(device.encode())
    batch = decode(payloads, headers, keys)
    np.testing.assert_array_equal(batch.values, np.asarray(values, dtype=np.float32))
    assert batch.rows.tolist() == list(range(len(values)))
    assert batch.device_ids == [f"d{i}" for i in range(len(values))]
    assert batch.event_ids == [f"id-{i}" for i in range(len(values))]
    assert batch.rejected == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.binary(max_size=20)),
                          st.one_of(st.none(), st.binary(max_size=8))), max_size=20))  # fmt: skip
def test_any_bytes_tagged_f32_give_rows_or_reasons_never_an_exception(messages):
    values = [v for v, _ in messages]
    keys = [k for _, k in messages]
    batch = decode(values, [F32] * len(values), keys)
    decided = set(batch.rows.tolist()) | {r.index for r in batch.rejected}
    assert decided == set(range(len(values)))
    assert len(batch) + len(batch.rejected) == len(values)
    assert batch.values.shape == (len(batch), D)
    assert np.isfinite(batch.values).all()


def _reference_split(headers: list[Headers], channels: list[str] | None = None) -> Encodings:
    """split_encodings without its fast path: every header list parsed in full."""
    expected = expected_channels(channels)
    out = Encodings([], [], [], [])
    for i, h in enumerate(headers):
        kind, event_id, given = _content_type(h) if h else (None, None, None)
        if given is not None and expected is not None and given != expected:
            out.unreadable.append((i, misordered(given, expected)))
        elif kind is None or kind == "application/json":
            out.json.append(i)
        elif kind == CONTENT_TYPE:
            out.f32.append(i)
            out.f32_ids.append(event_id)
        else:
            out.other.append((i, kind[:60]))
    return out


header_names = st.sampled_from(["content-type", "Content-Type", "seismo-event-id", "trace",
                                "seismo-channels", "Seismo-Channels"])  # fmt: skip
header_values = st.one_of(
    st.none(), st.sampled_from([CONTENT_TYPE.encode(), b"application/json", b"", b"e-1",
                                b"temp,rpm", b"rpm,temp"]),
    st.binary(max_size=6),
)  # fmt: skip
header_lists = st.one_of(st.none(), st.lists(st.tuples(header_names, header_values), max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(header_lists, st.just(F32), st.just(f32_headers("x")),
                          st.just(f32_headers("y", ["rpm", "temp"])),
                          st.just(f32_headers(channels=["temp", "rpm"])),
                          st.just([("seismo-channels", b"temp,rpm")]),
                          st.just([("seismo-channels", b"rpm,temp")]),
                          st.just(f32_headers("", ["temp", "rpm"]))), max_size=12),
       st.sampled_from([None, ["temp", "rpm"], ["f0", "f1"]]))  # fmt: skip
def test_the_fast_header_path_sorts_like_full_parsing(headers, channels):
    assert split_encodings(headers, channels) == _reference_split(headers, channels)


def test_positional_values_in_another_order_than_the_models_are_dead_lettered():
    """A stranger produced a CSV whose columns were in another order than the model's
    as f32 (positional): every one of 2 400 events alerted, on the wrong channels,
    without a word. ``seismo produce`` now names the order (header seismo-channels);
    another order than the model's is dead-lettered, the model's is scored."""
    rows = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    batch = decode_batch(
        [encode_f32(rows[0]), encode_f32(rows[1]), b'{"device_id": "c", "values": [7, 8, 9]}'],
        kafka_timestamps=[1, 2, 3], n_features=D,
        headers=[f32_headers("a", ["rpm", "temp", "door"]),
                 f32_headers("b", ["temp", "rpm", "door"]),
                 [("seismo-channels", b"door,rpm,temp")]],
        keys=[b"a", b"b", b"c"], channels=["temp", "rpm", "door"],
    )  # fmt: skip
    assert batch.device_ids == ["b"] and batch.values.tolist() == [rows[1]]
    assert [r.index for r in batch.rejected] == [0, 2]
    assert batch.rejected[0].reason.startswith(
        "values follow channels 'rpm,temp,door' (header seismo-channels), not the model's "
        "'temp,rpm,door'")
