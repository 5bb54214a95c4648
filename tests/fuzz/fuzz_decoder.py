"""Coverage-guided fuzzing of the event decoder with atheris (libFuzzer).

Each input becomes a micro-batch of 1 to 8 messages: JSON, binary
(``application/x-seismo-f32``) or of an unknown content type, with arbitrary
bytes as values and keys. The decoder must never raise, and every message
must come out either as one finite row or as one rejection.

Run by ``tests/unit/stream/test_fuzz_atheris.py``; by hand::

    python tests/fuzz/fuzz_decoder.py -runs=100000 tests/fuzz/corpus
"""

from __future__ import annotations

import json
import struct
import sys

import atheris

with atheris.instrument_imports(include=["seismo"]):
    from seismo.stream.scoring.codec import decode_batch
    from seismo.stream.scoring.f32_codec import CONTENT_TYPE

KINDS = (None, CONTENT_TYPE.encode(), b"application/x-unknown")


def value_of(fdp: atheris.FuzzedDataProvider, d: int) -> bytes:
    """Raw bytes, or a JSON event or d float32s built from fuzzed parts (so that
    the fuzzer reaches the paths of well-formed events, NaN and Inf included)."""
    shape = fdp.ConsumeIntInRange(0, 3)
    if shape == 0:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 1024))
    if shape == 3:
        return nested_event(fdp, d)
    n = d + fdp.ConsumeIntInRange(-1, 1)
    floats = [fdp.ConsumeFloat() for _ in range(max(n, 0))]
    if shape == 1:
        return struct.pack(f"<{len(floats)}f", *(max(min(f, 3e38), -3e38) for f in floats))
    event: dict[str, object] = {"device_id": fdp.ConsumeUnicodeNoSurrogates(8), "values": floats}
    if fdp.ConsumeBool():
        event["ts"] = fdp.ConsumeInt(8) if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(30)
    if fdp.ConsumeBool():
        event["event_id"] = fdp.ConsumeUnicodeNoSurrogates(12)
    return json.dumps(event).encode()


def nested_event(fdp: atheris.FuzzedDataProvider, d: int) -> bytes:
    """A JSON event with arrays and objects nested up to 1 500 deep in some field
    (msgspec raises RecursionError on deep nesting, even in a field it ignores)."""
    depth = fdp.ConsumeIntInRange(0, 1500)
    kinds = fdp.ConsumeBytes(4) or b"a"
    opens = b"".join(b"[" if kinds[i % len(kinds)] % 2 else b'{"k":' for i in range(depth))
    closes = b"".join(b"]" if kinds[i % len(kinds)] % 2 else b"}" for i in reversed(range(depth)))
    field = (b"x", b"values", b"ts", b"id", b"device_id")[fdp.ConsumeIntInRange(0, 4)]
    values = b"[" + b",".join(b"1" for _ in range(d)) + b"]"
    return (b'{"device_id":"d","values":' + values + b',"' + field + b'":' + opens + b"1"
            + closes + b"}")


def check_batch(data: bytes) -> None:
    """Decode the batch ``data`` describes; raise AssertionError on a broken invariant."""
    fdp = atheris.FuzzedDataProvider(data)
    d = fdp.ConsumeIntInRange(1, 16)
    count = fdp.ConsumeIntInRange(1, 8)
    values, keys, headers = [], [], []
    for _ in range(count):
        kind = KINDS[fdp.ConsumeIntInRange(0, len(KINDS) - 1)]
        headers.append([] if kind is None else [("content-type", kind)])
        keys.append(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 24)) or None)
        values.append(value_of(fdp, d))
    batch = decode_batch(values, kafka_timestamps=[1_700_000_000_000] * count, n_features=d,
                         max_bytes=16384, headers=headers, keys=keys)  # fmt: skip
    rows = batch.rows.tolist()
    rejected = [r.index for r in batch.rejected]
    assert sorted(rows + rejected) == list(range(count)), (rows, rejected)
    assert batch.values.shape == (len(rows), d)
    assert bool((abs(batch.values) < float("inf")).all())
    assert all(r.reason for r in batch.rejected)


def main() -> None:
    atheris.Setup(sys.argv, check_batch)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
