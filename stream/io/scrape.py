"""Read a few figures off a seismo process's Prometheus ``/metrics`` endpoint.

The demo shows the scorer's batch latency from its own histogram: the mean
over the interval since the previous read (counts and sums of two scrapes).

Examples
--------
>>> text = '''seismo_batch_latency_seconds_count 10.0
... seismo_batch_latency_seconds_sum 0.05
... '''
>>> histogram_totals(text, "seismo_batch_latency_seconds")
(10.0, 0.05)
>>> scraper = BatchLatency(port=1)
>>> scraper.update(text), scraper.update(text.replace("10.0", "20.0").replace("0.05", "0.25"))
(5.0, 20.0)
"""

from __future__ import annotations

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

HISTOGRAM = "seismo_batch_latency_seconds"


def histogram_totals(text: str, name: str) -> tuple[float, float]:
    """``(count, sum)`` of histogram ``name`` in a Prometheus text page (0, 0 if absent)."""
    count = total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{name}_count":
                count += sample.value
            elif sample.name == f"{name}_sum":
                total += sample.value
    return count, total


class BatchLatency:
    """Mean batch latency (ms) between two reads of ``127.0.0.1:port/metrics``."""

    def __init__(self, port: int, every_s: float = 1.0) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.every_s = every_s
        self._last: tuple[float, float] | None = None
        self._value: float | None = None
        self._read_at = 0.0

    def update(self, text: str) -> float | None:
        """Fold in one page; the mean latency over the batches since the last page."""
        count, total = histogram_totals(text, HISTOGRAM)
        if self._last is None:
            self._value = 1000 * total / count if count else None
        elif count > self._last[0]:
            self._value = 1000 * (total - self._last[1]) / (count - self._last[0])
        self._last = (count, total)
        return self._value

    def read(self) -> float | None:
        """Scrape at most every ``every_s`` seconds; ``None`` until the endpoint answers."""
        now = time.monotonic()
        if now - self._read_at < self.every_s:
            return self._value
        self._read_at = now
        try:
            with urllib.request.urlopen(self.url, timeout=0.5) as response:  # noqa: S310
                return self.update(response.read().decode("utf-8", errors="replace"))
        except OSError:
            return self._value
