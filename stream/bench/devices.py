"""Memory under many device ids (``seismo bench-devices``): what one id per message costs.

A hostile or buggy producer can give every message a new device id. Each id
costs the scorer a window buffer (``--window`` > 1) and, in device scope, a
device state in memory and in Redis. This benchmark fills a topic with
``ids`` distinct ids, ``window`` readings each (so each id completes one window
and gets a device state), then runs the scorer in this process over it, once
with ``--max-devices`` and once with no bound worth the name (every id fits),
and reports the resident set size (RSS) before and at its peak, and Redis's
memory and key count. Each run has its own consumer group and Redis prefix.

Examples
--------
>>> run = DevicesRun("bounded", 100, 400, 2.0, 300.0, 320.0, 1_000_000, 5_000_000, 100, 50, 50)
>>> run.rss_growth_mib, run.redis_mib, run.events_per_s
(20.0, 3.8, 200.0)
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import redis
from confluent_kafka import Producer

from seismo.models.artifact import build_artifact, save_artifact
from seismo.models.config import DenseConfig, TrainConfig
from seismo.models.training import train_autoencoder
from seismo.stream.bench.soak import rss_mib
from seismo.stream.bench.throughput import machine_facts
from seismo.stream.config.loader import load_settings
from seismo.stream.io.kafka import RDKAFKA_LOG
from seismo.stream.io.metrics import ScorerMetrics
from seismo.stream.local.embedded import EmbeddedKafka, EmbeddedRedis, create_topics
from seismo.stream.scoring.devices.states import DEFAULT_MAX_DEVICES
from seismo.stream.sim.factors import factor_rows

Echo = Callable[[str], None]
#: The heading of the section ``--out`` rewrites.
SECTION = "## Many device ids"


@dataclass(frozen=True)
class DevicesOptions:
    """What ``seismo bench-devices`` runs."""

    ids: int = 1_000_000
    window: int = 4
    channels: int = 4
    max_devices: int = DEFAULT_MAX_DEVICES
    threshold_scope: str = "device"
    partitions: int = 4
    unbounded: bool = True
    bootstrap_servers: str | None = None
    redis_url: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class DevicesRun:
    """One scorer run over the topic: its bound, throughput, RSS and Redis figures."""

    label: str
    max_devices: int
    events: int
    seconds: float
    rss_start_mib: float
    rss_peak_mib: float
    redis_before: int
    redis_after: int
    redis_keys: int
    states_held: int
    evictions: int

    @property
    def rss_growth_mib(self) -> float:
        return round(self.rss_peak_mib - self.rss_start_mib, 1)

    @property
    def redis_mib(self) -> float:
        """Redis memory the run added, in MiB."""
        return round((self.redis_after - self.redis_before) / 2**20, 1)

    @property
    def events_per_s(self) -> float:
        return round(self.events / self.seconds, 1) if self.seconds > 0 else 0.0


def _publish(bootstrap: str, topic: str, ids: int, window: int, channels: int, seed: int) -> None:
    """``window`` readings of each of ``ids`` devices, a device's in a row (own process)."""
    producer = Producer({"logger": RDKAFKA_LOG, "bootstrap.servers": bootstrap,
                         "linger.ms": 50, "batch.size": 1_000_000,
                         "queue.buffering.max.messages": 1_000_000})  # fmt: skip
    rows = factor_rows(4096, channels, seed).astype(float).round(4).tolist()
    n = 0
    for i in range(ids):
        device = f"id-{i}"
        key = device.encode()
        for _ in range(window):
            value = orjson.dumps({"device_id": device, "values": rows[n % len(rows)]})
            n += 1
            while True:
                try:
                    producer.produce(topic, value, key)
                    break
                except BufferError:
                    producer.poll(0.05)
    if producer.flush(300):
        raise RuntimeError("the benchmark events were not all delivered")


def _model(o: DevicesOptions, out: Path) -> Path:
    d = o.window * o.channels
    rows = factor_rows(4000, o.channels, o.seed + 1)
    windows = rows[: len(rows) // o.window * o.window].reshape(-1, d)
    config = DenseConfig(n_features=d, hidden=(8, 4))
    train = TrainConfig(epochs=3, seed=o.seed, neighbours=0)  # a window model (see train.py)
    result = train_autoencoder(windows, config=config, train=train, device="cpu")
    return save_artifact(build_artifact(result, name="bench-devices"), out)


def _run(
    o: DevicesOptions, label: str, max_devices: int, bootstrap: str, client: redis.Redis,
    redis_url: str, topic: str, model: Path, echo: Echo,
) -> DevicesRun:  # fmt: skip
    from seismo.stream.scoring.service import open_scorer, tune_gc

    tag = uuid.uuid4().hex[:8]
    total = o.ids * o.window
    settings = load_settings({
        "model": str(model), "bootstrap_servers": bootstrap, "redis_url": redis_url,
        "redis_prefix": f"bench-devices-{tag}", "input_topic": topic,
        "alerts_topic": f"{topic}-alerts", "dlq_topic": f"{topic}-dlq",
        "group_id": f"bench-devices-{tag}", "max_batch": 4096, "metrics_port": 0,
        "device": "cpu", "drift_m": 0, "window": o.window, "window_tail": 0,
        "threshold_scope": o.threshold_scope, "max_devices": max_devices,
    }, env={})  # fmt: skip
    metrics = ScorerMetrics()
    sample = metrics.registry.get_sample_value
    keys_before, memory_before = client.dbsize(), int(client.info("memory")["used_memory"])
    stop = threading.Event()
    with open_scorer(settings, metrics) as scorer:
        tune_gc()
        start_rss = peak = rss_mib()
        thread = threading.Thread(target=scorer.run, args=(stop,), name="bench-devices")
        started = time.perf_counter()
        thread.start()
        try:
            while (sample("seismo_events_consumed_total") or 0) < total:
                if not thread.is_alive():
                    raise RuntimeError("the scorer stopped before consuming every event")
                time.sleep(1.0)
                peak = max(peak, rss_mib())
            seconds = time.perf_counter() - started
        finally:
            stop.set()
            thread.join()
        peak = max(peak, rss_mib())
        held = len(scorer.devices or ()) + len(scorer.windows or ())
    run = DevicesRun(
        label, max_devices, total, round(seconds, 2), round(start_rss, 1), round(peak, 1),
        memory_before, int(client.info("memory")["used_memory"]), client.dbsize() - keys_before,
        held, int(sample("seismo_device_evictions_total") or 0),
    )  # fmt: skip
    echo(f"{label}: {total:,} events of {o.ids:,} ids in {run.seconds:.1f} s, RSS "
         f"{run.rss_start_mib:.0f} -> {run.rss_peak_mib:.0f} MiB (+{run.rss_growth_mib:.0f}), "
         f"Redis +{run.redis_mib:.0f} MiB in {run.redis_keys:,} keys, "
         f"{run.evictions:,} evictions")  # fmt: skip
    for batch in _batched(client.scan_iter(match=f"{settings.redis_prefix}:*", count=10_000)):
        client.unlink(*batch)
    return run


def _batched(keys: Any, size: int = 10_000) -> Any:
    batch = []
    for key in keys:
        batch.append(key)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_devices(o: DevicesOptions, workdir: Path, echo: Echo) -> dict[str, Any]:
    """Fill the topic, train the model, run the scorer bounded (and unbounded); the report."""
    tag = uuid.uuid4().hex[:8]
    topic = f"bench-devices-{tag}"
    with ExitStack() as stack:
        bootstrap = o.bootstrap_servers or stack.enter_context(EmbeddedKafka()).bootstrap_servers
        redis_url = o.redis_url or stack.enter_context(EmbeddedRedis()).url
        client = redis.Redis.from_url(redis_url)
        stack.callback(client.close)
        create_topics(bootstrap, {topic: o.partitions, f"{topic}-alerts": 1, f"{topic}-dlq": 1})
        started = time.perf_counter()
        producer = multiprocessing.get_context("spawn").Process(
            target=_publish, args=(bootstrap, topic, o.ids, o.window, o.channels, o.seed),
            name="bench-devices-producer")  # fmt: skip
        producer.start()
        model = _model(o, workdir / "model")
        producer.join()
        if producer.exitcode:
            raise RuntimeError("the benchmark producer failed")
        echo(f"published {o.ids * o.window:,} events of {o.ids:,} device ids in "
             f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        runs = [_run(o, "bounded", o.max_devices, bootstrap, client, redis_url, topic, model,
                     echo)]  # fmt: skip
        if o.unbounded:
            runs.append(_run(o, "unbounded", 2 * o.ids, bootstrap, client, redis_url, topic,
                             model, echo))  # fmt: skip
    return {"options": asdict(o) | {"bootstrap_servers": None, "redis_url": None},
            "machine": machine_facts(),
            "runs": [asdict(r) | {"rss_growth_mib": r.rss_growth_mib, "redis_mib": r.redis_mib,
                                  "events_per_s": r.events_per_s} for r in runs]}  # fmt: skip


def render_section(report: dict[str, Any], command: str) -> str:
    """The markdown section ``--out`` writes (heading :data:`SECTION`)."""
    o, m = report["options"], report["machine"]
    lines = [
        SECTION, "",
        f"Written by `{command}` on {m.get('date', '')} ({m.get('cpus', '?')} CPUs, "
        f"{m.get('platform', '')}). {o['ids']:,} distinct device ids, {o['window']} readings "
        f"each ({o['ids'] * o['window']:,} JSON events of {o['channels']} channels, each id "
        f"completing one window), `--threshold-scope {o['threshold_scope']} --window "
        f"{o['window']}`, one scorer process; RSS of that process before the first batch and "
        "at its peak; Redis memory added (`used_memory`) and keys written.", "",
        "| Run | `--max-devices` | Events/s | RSS before | RSS peak | Growth | Held at the end "
        "| Evictions | Redis keys | Redis memory |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for r in report["runs"]:
        lines.append(
            f"| {r['label']} | {r['max_devices']:,} | {r['events_per_s']:,.0f} | "
            f"{r['rss_start_mib']:.0f} MiB | {r['rss_peak_mib']:.0f} MiB | "
            f"+{r['rss_growth_mib']:.0f} MiB | {r['states_held']:,} | {r['evictions']:,} | "
            f"{r['redis_keys']:,} | {r['redis_mib']:.0f} MiB |"
        )
    lines += ["", "Held at the end counts device states plus window buffers in memory. "
              "Redis keeps every state (1 key a device) until `device_state_ttl_s` (30 days "
              "by default) expires it: Redis memory grows with the ids, the scorer's does not.",
              ""]  # fmt: skip
    return "\n".join(lines)


__all__ = ["DevicesOptions", "DevicesRun", "render_section", "run_devices"]
