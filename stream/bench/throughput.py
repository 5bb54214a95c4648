"""``seismo bench``: seismo against the ceiling and its peers, on one topic, in one run.

Steps: start an embedded Kafka and Redis (or use the given ones); create a
topic of ``partitions`` partitions and fill it with ``events`` JSON events of
``d`` features (normal rows of a random linear factor model, so the model sees
realistic reconstruction errors); train a dense autoencoder on rows of the same
distribution; then run, one after the other on that same topic, the
contenders of :mod:`seismo.stream.bench.runs`, and report events/s and the ratios.
"""

from __future__ import annotations

import platform
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
from confluent_kafka import Producer, libversion

from seismo.models.artifact import build_artifact, save_artifact
from seismo.models.config import DenseConfig, TrainConfig, default_hidden
from seismo.models.training import train_autoencoder
from seismo.stream.bench.runs import RunResult, run_per_message, run_raw, run_river, run_seismo
from seismo.stream.config.loader import load_settings
from seismo.stream.io.kafka import RDKAFKA_LOG, fetch_queue_defaults, fetch_wait_ms
from seismo.stream.local.embedded import EmbeddedKafka, EmbeddedRedis, create_topics
from seismo.stream.scoring.f32_codec import encode_f32, f32_headers
from seismo.stream.sim.factors import factor_rows

Echo = Callable[[str], None]


@dataclass(frozen=True)
class BenchOptions:
    """The ``seismo bench`` flags."""

    events: int = 200_000
    features: int = 16
    partitions: int = 4
    max_batch: int = 4096
    linger_ms: int = 50
    per_message_events: int = 20_000
    river_events: int = 10_000
    latency_seconds: float = 10.0
    latency_linger_ms: int = 20
    scaling: tuple[int, ...] = (1, 2, 4)
    soak_seconds: float = 0.0
    bootstrap_servers: str | None = None
    redis_url: str | None = None
    device: str = "cpu"
    seed: int = 0
    hidden: tuple[int, ...] | None = None
    binary: bool = True
    #: on the binary topic, also the raw consumer with seismo's fetch queue backoff
    raw_backoff: bool = True
    repeats: int = 3
    threshold_scope: str = "model"
    window: int = 1
    neighbours: int = 0
    prefetch: bool = False
    kafka_config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Runs:
    """Repeated runs of one contender: the median rate and the spread."""

    runs: tuple[RunResult, ...]

    @classmethod
    def of(cls, runs: Sequence[RunResult]) -> Runs:
        return cls(tuple(runs))

    @property
    def rates(self) -> list[float]:
        return [r.per_second for r in self.runs]

    @property
    def per_second(self) -> float:
        """The median rate (of an even count: the mean of the middle two).

        >>> runs = [RunResult("a", 300, 1), RunResult("a", 100, 1), RunResult("a", 200, 1)]
        >>> Runs.of(runs).per_second, Runs.of(runs).summary()["runs"]
        (200.0, [300.0, 100.0, 200.0])
        """
        return float(np.median(self.rates)) if self.runs else 0.0

    def summary(self) -> dict[str, Any]:
        """What the report keeps: the median run's numbers, every rate, min and max."""
        rates = self.rates
        middle = self.runs[int(np.argsort(rates)[len(rates) // 2])] if self.runs else None
        return {"events": middle.events if middle else 0,
                "seconds": round(middle.seconds, 4) if middle else 0.0,
                "events_per_s": round(self.per_second, 1),
                "runs": [round(r, 1) for r in rates],
                "min": round(min(rates, default=0.0), 1),
                "max": round(max(rates, default=0.0), 1)}  # fmt: skip


@dataclass(frozen=True)
class BenchReport:
    """Every contender's result and the ratios the issue asks for."""

    options: dict[str, Any]
    machine: dict[str, Any]
    results: dict[str, dict[str, Any]]
    ratios: dict[str, float]
    latency: dict[str, dict[str, float | None]] = field(default_factory=dict)
    scaling: dict[str, dict[str, float]] = field(default_factory=dict)
    soak: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """The report as indented JSON."""
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)


def fill_topic(
    bootstrap: str,
    topic: str,
    x: np.ndarray,
    devices: int = 100,
    extra: dict[str, str] | None = None,
    encoding: str = "json",
) -> int:
    """Publish the rows of ``x`` as events (keys spread over ``devices``); the count."""
    producer = Producer({"logger": RDKAFKA_LOG, **(extra or {}), "bootstrap.servers": bootstrap,
                         "linger.ms": 50, "batch.size": 1_000_000, "compression.type": "none",
                         "queue.buffering.max.messages": 1_000_000})  # fmt: skip
    keys = [f"dev-{i}".encode() for i in range(devices)]
    rounded = x.astype(float).round(5)
    for i, row in enumerate(rounded.tolist() if encoding == "json" else rounded):
        key = keys[i % devices]
        if encoding == "json":
            value = orjson.dumps({"device_id": key.decode(), "values": row, "id": str(i)})
            headers = None
        else:
            value, headers = encode_f32(row), f32_headers(str(i))
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
    left = producer.flush(120)
    if left:
        raise RuntimeError(f"{left} benchmark events were not delivered")
    return len(x)


TUTORIAL_HIDDEN = {784: (250, 10)}
"""Encoder widths of the tutorials' models by input size: MNIST's 784-250-10-250-784."""


def bench_hidden(d: int, hidden: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The encoder widths the bench trains: given, the tutorial's, or seismo's default.

    >>> bench_hidden(784), bench_hidden(16), bench_hidden(16, (8, 2))
    ((250, 10), (32, 8), (8, 2))
    """
    return hidden or TUTORIAL_HIDDEN.get(d) or tuple(default_hidden(d))


def train_bench_model(
    d: int, out: Path, seed: int, hidden: tuple[int, ...] | None = None, neighbours: int = 0
) -> Path:
    """A dense autoencoder of :func:`bench_hidden` widths for ``d``, trained briefly.

    ``neighbours``: reference rows of its neighbour term (0 = none, the figures
    of ``docs/benchmarks.md``; ``seismo train``'s default is 2048).
    """
    config = DenseConfig(n_features=d, hidden=bench_hidden(d, hidden))
    train = TrainConfig(epochs=3, seed=seed, neighbours=neighbours)
    result = train_autoencoder(factor_rows(4000, d, seed + 1), config=config, train=train,
                               device="cpu")  # fmt: skip
    return save_artifact(build_artifact(result, name=f"bench-d{d}"), out)


def _ratios(rates: dict[str, float]) -> dict[str, float]:
    """Every seismo row over the raw ceiling of its encoding, and the other ratios asked for.

    >>> _ratios({"raw": 1000.0, "seismo": 500.0, "per-message": 50.0, "seismo-device": 250.0})
    {'seismo/raw': 0.5, 'seismo/per-message': 10.0, 'seismo-device/raw': 0.25, \
'seismo-device/seismo': 0.5}
    """
    out: dict[str, float] = {}

    def put(a: str, b: str) -> None:
        if a in rates and rates.get(b, 0.0) > 0:
            out[f"{a}/{b}"] = rates[a] / rates[b]

    put("seismo", "raw")
    put("seismo", "per-message")
    put("seismo", "river-hst")
    put("seismo-f32", "raw-f32")
    put("seismo-f32", "raw-f32-backoff")
    put("seismo-f32", "per-message")
    for name in rates:
        if name.startswith("seismo-device"):
            model = "seismo" + name.removeprefix("seismo-device")
            put(name, "raw")
            put(name, model)
    return out


def run_bench(options: BenchOptions, workdir: Path, echo: Echo) -> BenchReport:
    """Prepare the topic and the model, run every contender, return the report."""
    tag = uuid.uuid4().hex[:8]
    topic, alerts, dlq = f"bench-{tag}", f"bench-{tag}-alerts", f"bench-{tag}-dlq"
    with ExitStack() as stack:
        bootstrap = options.bootstrap_servers or (
            stack.enter_context(EmbeddedKafka()).bootstrap_servers
        )
        redis_url = options.redis_url or stack.enter_context(EmbeddedRedis()).url
        create_topics(bootstrap, {topic: options.partitions, alerts: 1, dlq: 1},
                      extra_config=options.kafka_config)  # fmt: skip
        started = time.perf_counter()
        rows = factor_rows(options.events, options.features, options.seed)
        n = fill_topic(bootstrap, topic, rows, extra=options.kafka_config)
        echo(f"published {n:,} events of d={options.features} to {options.partitions} "
             f"partitions in {time.perf_counter() - started:.1f} s")  # fmt: skip
        model_dir = train_bench_model(options.features, workdir / f"model-{tag}", options.seed,
                                      options.hidden, options.neighbours)  # fmt: skip
        results = _run_all(options, bootstrap, redis_url, topic, alerts, dlq, model_dir, n, echo)
        results |= _run_scopes(options, bootstrap, redis_url, topic, model_dir, n, workdir, echo)
        if options.binary:
            results |= _run_binary(options, bootstrap, redis_url, rows, model_dir, echo)
        ours = results["seismo"].per_second
        latency = _run_latency(options, bootstrap, redis_url, model_dir, ours, echo)
        scaling = _run_scaling(options, bootstrap, redis_url, model_dir, rows, workdir, echo)
        soak = _run_soak(options, bootstrap, redis_url, model_dir, ours, echo)
    return BenchReport(
        options={k: v for k, v in asdict(options).items() if k != "kafka_config"},
        machine=machine_facts(),
        results={k: r.summary() for k, r in results.items()},
        ratios={k: round(v, 3) for k, v in
                _ratios({k: r.per_second for k, r in results.items()}).items()},
        latency=latency,
        scaling=scaling,
        soak=soak,
    )  # fmt: skip


def _run_soak(
    o: BenchOptions, bootstrap: str, redis_url: str, model_dir: Path, max_rate: float,
    echo: Echo,
) -> dict[str, Any]:  # fmt: skip
    """Half of seismo's measured rate for ``soak_seconds``, RSS sampled every 5 s."""
    from seismo.stream.bench.soak import run_soak

    if o.soak_seconds <= 0 or max_rate <= 0:
        return {}
    tag = uuid.uuid4().hex[:8]
    topic, alerts, dlq = f"soak-{tag}", f"soak-{tag}-alerts", f"soak-{tag}-dlq"
    create_topics(bootstrap, {topic: o.partitions, alerts: 1, dlq: 1},
                  extra_config=o.kafka_config)  # fmt: skip
    settings = _scorer_settings(o, bootstrap, redis_url, model_dir, topic, alerts, dlq,
                                o.linger_ms)  # fmt: skip
    rate = max_rate / 2
    r = run_soak(settings, o.features, rate, o.soak_seconds, o.partitions)
    echo(f"soak at {rate:,.0f} events/s for {o.soak_seconds:g} s: RSS "
         f"{r.samples[0][1]:.0f} -> {r.samples[-1][1]:.0f} MiB, growth after warm-up "
         f"{r.growth_mib:+.1f} MiB over {r.samples[-1][2]:,} events")  # fmt: skip
    return {"rate": round(rate, 1), "seconds": o.soak_seconds,
            "growth_mib": round(r.growth_mib, 1), "block_growth": r.block_growth,
            "samples": r.samples}  # fmt: skip


def _run_scaling(
    o: BenchOptions, bootstrap: str, redis_url: str, model_dir: Path, rows: np.ndarray,
    workdir: Path, echo: Echo,
) -> dict[str, dict[str, float]]:  # fmt: skip
    from seismo.stream.bench.scaling import run_scaling

    extra = [a for k, v in o.kafka_config.items() for a in ("--kafka-config", f"{k}={v}")]
    extra += ["--max-batch", str(o.max_batch), "--linger-ms", str(o.linger_ms),
              "--device", o.device, "--prefetch" if o.prefetch else "--no-prefetch"]  # fmt: skip
    out: dict[str, dict[str, float]] = {}
    for n in o.scaling:
        r = run_scaling(
            n, bootstrap=bootstrap, redis_url=redis_url, model_dir=model_dir,
            partitions=o.partitions, workdir=workdir, extra_args=extra,
            kafka_config=o.kafka_config,
            fill=lambda topic: fill_topic(bootstrap, topic, rows, extra=o.kafka_config),
        )  # fmt: skip
        out[str(n)] = {"events": r.events, "seconds": round(r.seconds, 3),
                       "fill_seconds": round(r.fill_seconds, 3),
                       "events_per_s": round(r.per_second, 1)}  # fmt: skip
        echo(f"{n} scorer process(es): {r.per_second:,.0f} events/s "
             f"({r.events:,} events in {r.seconds:.2f} s)")  # fmt: skip
    return out


LATENCY_LEVELS = (0.5, 0.9)
"""Shares of seismo's measured maximum rate at which latency is measured."""


def _scorer_settings(
    o: BenchOptions, bootstrap: str, redis_url: str, model_dir: Path, topic: str, alerts: str,
    dlq: str, linger_ms: int, **overrides: Any,
) -> Any:  # fmt: skip
    tag = uuid.uuid4().hex[:8]
    return load_settings({
        "model": str(model_dir), "bootstrap_servers": bootstrap, "redis_url": redis_url,
        "redis_prefix": f"bench-{tag}", "input_topic": topic, "alerts_topic": alerts,
        "dlq_topic": dlq, "group_id": f"bench-{tag}", "max_batch": o.max_batch,
        "linger_ms": linger_ms, "metrics_port": 0, "device": o.device, "drift_m": 0,
        "prefetch": o.prefetch,
        "kafka_config": o.kafka_config, **overrides,
    }, env={})  # fmt: skip


def _ms(value: float | None) -> str:
    """A latency for people.

    >>> _ms(12.34), _ms(None)
    ('12 ms', '-')
    """
    return "-" if value is None else f"{value:.0f} ms"


def _run_latency(
    o: BenchOptions, bootstrap: str, redis_url: str, model_dir: Path, max_rate: float,
    echo: Echo,
) -> dict[str, dict[str, float | None]]:  # fmt: skip
    from seismo.stream.bench.latency import latency_rows, run_delivery, run_latency

    out: dict[str, dict[str, float | None]] = {}
    if o.latency_seconds <= 0 or max_rate <= 0:
        return out
    for share in LATENCY_LEVELS:
        tag = uuid.uuid4().hex[:8]
        topic, alerts, dlq = f"lat-{tag}", f"lat-{tag}-alerts", f"lat-{tag}-dlq"
        create_topics(bootstrap, {topic: o.partitions, alerts: 1, dlq: 1},
                      extra_config=o.kafka_config)  # fmt: skip
        rate = share * max_rate
        rows = latency_rows(int(rate * o.latency_seconds), o.features, o.seed + 7)
        settings = _scorer_settings(o, bootstrap, redis_url, model_dir, topic, alerts, dlq,
                                    o.latency_linger_ms)  # fmt: skip
        r = run_latency(settings, rows, rate, o.partitions)
        bare_topic = f"lat-{tag}-bare"
        create_topics(bootstrap, {bare_topic: o.partitions}, extra_config=o.kafka_config)
        bare = run_delivery(bootstrap, bare_topic, rows, rate, o.partitions, extra={
            "fetch.wait.max.ms": fetch_wait_ms(o.latency_linger_ms), **o.kafka_config},
            producer_extra=o.kafka_config)  # fmt: skip
        out[f"{int(share * 100)}%"] = {
            "offered_per_s": round(r.offered_rate, 1), "achieved_per_s": round(r.achieved_rate, 1),
            "alerts": r.alerts, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
            "delivery_p50_ms": bare.p50_ms, "delivery_p99_ms": bare.p99_ms,
        }  # fmt: skip
        echo(f"latency at {share:.0%} of max ({r.achieved_rate:,.0f} events/s, linger "
             f"{o.latency_linger_ms} ms): p50 {_ms(r.p50_ms)}, p99 {_ms(r.p99_ms)} over "
             f"{r.alerts} alerts; a bare consumer: p50 {_ms(bare.p50_ms)}, "
             f"p99 {_ms(bare.p99_ms)}")  # fmt: skip
    return out


def _run_all(
    o: BenchOptions, bootstrap: str, redis_url: str, topic: str, alerts: str, dlq: str,
    model_dir: Path, n: int, echo: Echo,
) -> dict[str, Runs]:  # fmt: skip
    """raw and seismo ``repeats`` times (in turn), then per-message and River once
    (each skipped when its event count is 0)."""
    from seismo.models.artifact import load_artifact

    results = _raw_and_seismo(o, bootstrap, redis_url, topic, model_dir, n, echo, "")
    extra = _consumer_config(o)
    found = []
    if o.per_message_events > 0:
        artifact = load_artifact(model_dir, device=o.device)
        found.append(run_per_message(bootstrap, topic, o.partitions, artifact,
                                     min(n, o.per_message_events), extra=extra))  # fmt: skip
    if o.river_events > 0:
        found.append(run_river(bootstrap, topic, o.partitions, min(n, o.river_events),
                               extra=extra))  # fmt: skip
    for r in found:
        results[r.name] = Runs.of([r])
        _echo_result(r.name, r, echo)
    return results


def _raw_and_seismo(
    o: BenchOptions, bootstrap: str, redis_url: str, topic: str, model_dir: Path, n: int,
    echo: Echo, suffix: str,
) -> dict[str, Runs]:  # fmt: skip
    """``repeats`` rounds of the raw consumer then seismo, each seismo on a fresh group.

    On the binary topic (``suffix`` ``-f32``) each round also runs the raw
    consumer with seismo's fetch queue backoff (``raw-f32-backoff``): with
    librdkafka's 1 000 ms the backoff caps a plain consumer of small records
    below what seismo reads (docs/benchmarks.md, "The raw ceiling"), so the
    defaults' row is no ceiling there.
    """
    raws: list[RunResult] = []
    ours: list[RunResult] = []
    backed: list[RunResult] = []
    wanted = o.raw_backoff and suffix == "-f32"
    backoff = fetch_queue_defaults(libversion()[1]) if wanted else {}
    for _ in range(o.repeats):
        raws.append(run_raw(bootstrap, topic, n, extra=o.kafka_config))
        _echo_result("raw" + suffix, raws[-1], echo)
        if backoff:
            backed.append(run_raw(bootstrap, topic, n, extra={**backoff, **o.kafka_config}))
            _echo_result(f"raw{suffix}-backoff", backed[-1], echo)
        ours.append(run_seismo(_bench_settings(o, bootstrap, redis_url, model_dir, topic), n))
        _echo_result("seismo" + suffix, ours[-1], echo)
    out = {"raw" + suffix: Runs.of(raws)}
    if backed:
        out[f"raw{suffix}-backoff"] = Runs.of(backed)
    return out | {"seismo" + suffix: Runs.of(ours)}


def _bench_settings(
    o: BenchOptions, bootstrap: str, redis_url: str, model_dir: Path, topic: str,
    **overrides: Any,
) -> Any:  # fmt: skip
    """Scorer settings on ``topic`` with alert and dead-letter topics of its own."""
    tag = uuid.uuid4().hex[:8]
    alerts, dlq = f"{topic}-{tag}-alerts", f"{topic}-{tag}-dlq"
    create_topics(bootstrap, {alerts: 1, dlq: 1}, extra_config=o.kafka_config)
    return _scorer_settings(o, bootstrap, redis_url, model_dir, topic, alerts, dlq,
                            o.linger_ms, **overrides)  # fmt: skip


def _run_binary(
    o: BenchOptions, bootstrap: str, redis_url: str, rows: np.ndarray, model_dir: Path,
    echo: Echo,
) -> dict[str, Runs]:  # fmt: skip
    """The raw consumer and seismo again, on the same rows as ``application/x-seismo-f32``."""
    topic = f"bench-{uuid.uuid4().hex[:8]}-f32"
    create_topics(bootstrap, {topic: o.partitions}, extra_config=o.kafka_config)
    n = fill_topic(bootstrap, topic, rows, extra=o.kafka_config, encoding="f32")
    return _raw_and_seismo(o, bootstrap, redis_url, topic, model_dir, n, echo, "-f32")


def _run_scopes(
    o: BenchOptions, bootstrap: str, redis_url: str, topic: str, model_dir: Path, n: int,
    workdir: Path, echo: Echo,
) -> dict[str, Runs]:  # fmt: skip
    """Device scope beside model scope on the JSON topic, ``repeats`` times each, in turn.

    ``seismo-device`` pairs with ``seismo`` (already measured). With ``--window W``
    a model of ``W * d`` inputs is trained as well and ``seismo-wW`` (model
    scope) and ``seismo-device-wW`` run in turn.
    """
    if o.threshold_scope != "device":
        return {}
    out = {"seismo-device": Runs.of(_scope_runs(o, bootstrap, redis_url, topic, model_dir, n,
                                                echo, "device", 1))}  # fmt: skip
    if o.window > 1:
        windowed = train_bench_model(o.features * o.window, workdir / f"model-w{o.window}",
                                     o.seed)  # fmt: skip
        runs: dict[str, list[RunResult]] = {"model": [], "device": []}
        for _ in range(o.repeats):
            for scope, found in runs.items():
                found += _scope_runs(o, bootstrap, redis_url, topic, windowed, n, echo, scope,
                                     o.window, repeats=1)  # fmt: skip
        out[f"seismo-w{o.window}"] = Runs.of(runs["model"])
        out[f"seismo-device-w{o.window}"] = Runs.of(runs["device"])
    return out


def _scope_runs(
    o: BenchOptions, bootstrap: str, redis_url: str, topic: str, model_dir: Path, n: int,
    echo: Echo, scope: str, window: int, repeats: int | None = None,
) -> list[RunResult]:  # fmt: skip
    name = ("seismo-device" if scope == "device" else "seismo") + (
        f"-w{window}" if window > 1 else "")
    found = []
    for _ in range(o.repeats if repeats is None else repeats):
        settings = _bench_settings(o, bootstrap, redis_url, model_dir, topic, window=window,
                                   threshold_scope=scope)  # fmt: skip
        found.append(run_seismo(settings, n))
        _echo_result(name, found[-1], echo)
    return found


def _consumer_config(o: BenchOptions) -> dict[str, Any]:
    """The in-process contenders' consumer settings: the scorer's own fetch wait and fetch
    queue backoff, then ``--kafka-config``."""
    return {"fetch.wait.max.ms": fetch_wait_ms(o.linger_ms),
            **fetch_queue_defaults(libversion()[1]), **o.kafka_config}  # fmt: skip


def _echo_result(name: str, r: RunResult, echo: Echo) -> None:
    echo(f"{name:>18}: {r.per_second:>12,.0f} events/s "
         f"({r.events:,} events in {r.seconds:.2f} s)")  # fmt: skip


def machine_facts() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": __import__("os").cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def format_report(report: BenchReport) -> list[str]:
    """A Markdown table of the results and the ratios."""
    lines = ["| contender | events | runs | events/s (median) | lowest | highest | spread |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for name, r in report.results.items():
        rate = r["events_per_s"]
        low, high = r.get("min", rate), r.get("max", rate)
        spread = f"{(high - low) / rate:.0%}" if rate else "-"
        lines.append(f"| {name} | {r['events']:,} | {len(r.get('runs', [rate]))} | {rate:,.0f} "
                     f"| {low:,.0f} | {high:,.0f} | {spread} |")  # fmt: skip
    lines.append("")
    lines += [f"- {name}: {value:.3f}" for name, value in report.ratios.items()]
    lines += ["", "Ratios are of medians; spread is (highest - lowest) / median."]
    if report.latency:
        o = report.options
        lines += ["", f"Event-to-alert latency, linger {o['latency_linger_ms']} ms, "
                  f"{o['latency_seconds']:g} s of paced events per level:", "",
                  "| share of max rate | events/s offered | achieved | alerts | p50 | p99 "
                  "| bare consumer p50 | bare consumer p99 |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for level, lat in report.latency.items():
            lines.append(
                f"| {level} | {lat['offered_per_s']:,.0f} | {lat['achieved_per_s']:,.0f} "
                f"| {lat['alerts']} | {_ms(lat['p50_ms'])} | {_ms(lat['p99_ms'])} "
                f"| {_ms(lat.get('delivery_p50_ms'))} | {_ms(lat.get('delivery_p99_ms'))} |"
            )
        lines += ["", "The bare consumer reads the same paced stream from its own topic and "
                  "decodes nothing (it takes each message's Kafka timestamp, set at send time): "
                  "the latency any consumer of this broker on this machine sees before it can "
                  "act on an event."]  # fmt: skip
    if report.soak:
        s = report.soak
        samples = s["samples"]
        lines += ["", f"Memory soak: {s['rate']:,.0f} events/s for {s['seconds']:g} s, RSS of "
                  f"the scorer's process every 5 s: {samples[0][1]:.0f} MiB at the start, "
                  f"{samples[-1][1]:.0f} MiB at the end after {samples[-1][2]:,} events; "
                  f"peak {max(x[1] for x in samples):.0f} MiB; "
                  f"growth after the first fifth: {s['growth_mib']:+.1f} MiB. Blocks held by "
                  f"Python's allocator: {samples[0][3]:,} at the start, {samples[-1][3]:,} at "
                  f"the end ({s.get('block_growth', 0):+,} after the first fifth)."]  # fmt: skip
    if report.scaling:
        base = next(iter(report.scaling.values()))["events_per_s"] or 1.0
        lines += ["", "Scorer processes in one group (`seismo score` subprocesses; the events "
                  "are published once all own partitions, and the time runs from the start of "
                  "publishing to the group's last commit, so it is never shorter than "
                  "publishing):", "",
                  "| processes | events | publishing s | seconds | events/s | vs the first row |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for n, r in report.scaling.items():
            rate = r["events_per_s"]
            lines.append(f"| {n} | {r['events']:,.0f} | {r['fill_seconds']:.2f} "
                         f"| {r['seconds']:.2f} | {rate:,.0f} | {rate / base:.2f} |")  # fmt: skip
    return lines


def _shape(d: int, hidden: Sequence[int] | None) -> str:
    """The bench model's layer widths.

    >>> _shape(784, None)
    '784-250-10-250-784'
    """
    widths = bench_hidden(d, tuple(hidden) if hidden else None)
    return "-".join(str(w) for w in (d, *widths, *reversed(widths[:-1]), d))


SECTION = "## Streaming throughput (seismo bench)"


def render_section(report: BenchReport, command: str) -> str:
    """The ``docs/benchmarks.md`` section of one run (replaced by the next run)."""
    m, o = report.machine, report.options
    lines = [
        SECTION, "",
        "Every contender reads the same topic (JSON events, one after the other); `raw-f32` "
        "and `seismo-f32` read a second topic of the same rows in the binary encoding "
        "`application/x-seismo-f32`. `raw` and `seismo` run in turn "
        f"{o.get('repeats', 1)} times (each seismo run a fresh group), per-message and River "
        "once. Rates count the events after each one's first batch or message, so start-up, "
        "the group join and model loading count for none. The broker and Redis run on the "
        "same machine as the contenders.", "",
        "`raw` is the ceiling every `/raw` ratio is against: a plain confluent-kafka consumer "
        "in a process of its own (`python -m seismo.stream.bench.raw_consumer`) on "
        "librdkafka's defaults, `subscribe`, `consume(10000, 1.0)`, discard; no logger "
        "callback, no other thread, no torch in that process, and librdkafka's fetch queue "
        "backoff of 1 000 ms, where seismo's consumer sets 10 ms (`CONSUMER_DEFAULTS`; "
        "docs/benchmarks.md, \"The raw ceiling\"). The in-process consumers "
        "(per-message, River) fetch with the scorer's `fetch.wait.max.ms` (its linger) and its "
        "`fetch.queue.backoff.ms` (10 ms). On the binary topic that backoff caps the plain "
        "consumer below seismo, so `raw-f32-backoff` is the same consumer with seismo's 10 ms "
        "(its only other setting), run in each round beside `raw-f32`: the binary ceiling. "
        "`seismo-device` is seismo with `--threshold-scope device` (100 devices) on the same "
        "topic; `-wW` rows score windows of W readings with a model of W * d inputs.", "",
        f"- command: `{command}`",
        f"- date: {m['date']}; machine: {m['cpus']}-core CPU, {m['platform']}",
        f"- versions: python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads)",
        f"- topic: {o['events']:,} events, d = {o['features']}, {o['partitions']} partitions; "
        f"model {_shape(o['features'], o.get('hidden'))}; "
        f"scorer max batch {o['max_batch']}, linger {o['linger_ms']} ms, device {o['device']}",
        f"- broker: {'embedded Tansu' if not o['bootstrap_servers'] else 'given'}", "",
        *format_report(report), "",
    ]  # fmt: skip
    return "\n".join(lines)

