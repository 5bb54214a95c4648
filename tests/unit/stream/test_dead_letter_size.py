"""A dead letter is cut to what the producer sends, headers' framing counted."""

from __future__ import annotations

from seismo.stream.scoring.alerts import Source
from seismo.stream.scoring.dead_letters import H_HEADERS_DROPPED, dead_letter

LIMIT = 1_000_000


def record_bytes(value: bytes | None, key: bytes | None, headers) -> int:
    """A Kafka v2 record's size, closely enough: value, key, and each header's name,
    value and two varint lengths (up to 5 bytes each for these sizes: 2 here)."""
    def varint(n: int) -> int:
        return max(1, (n.bit_length() + 6) // 7)

    size = len(value or b"") + len(key or b"") + 64
    for name, raw in headers:
        data = raw.encode() if isinstance(raw, str) else raw or b""
        size += len(name.encode()) + len(data) + varint(len(name)) + varint(len(data))
    return size


def test_many_tiny_headers_are_counted_with_their_framing():
    """120 000 one-byte headers and a 550 KB value: a message the broker takes (1 MB
    limit). Its dead letter kept the headers, counted as 240 KB, with the value whole:
    1.03 MB, beyond the producer's 1 000 000, refused twice before a stub, a pause of
    seconds each time (a red-team suspicion)."""
    headers = [("h", b"x")] * 120_000
    value = b"v" * 550_000
    out = dead_letter("dlq", value, b"k", headers, "bad", Source("t", 0, 1), row=0, limit=LIMIT)
    assert record_bytes(out.value, out.key, out.headers) <= LIMIT
    assert dict(out.headers)[H_HEADERS_DROPPED] == b"120000"
    assert out.value == value
