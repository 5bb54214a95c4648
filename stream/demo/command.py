"""``seismo demo``: Kafka, Redis, a model, the simulator, the scorer and the sidecar, live.

Order of a run (every step undone in reverse by one ``ExitStack``, also on
Ctrl-C and on errors):

1. an embedded Kafka (Tansu) and Redis on free loopback ports, unless
   ``--bootstrap-servers`` / ``--redis-url`` name existing ones;
2. a dense autoencoder trained on one simulated day of normal readings,
   published as the first version of a registry in the run directory;
3. the topics (on an existing Kafka, suffixed with the run id, so a demo
   never mixes with real traffic or an earlier run; created after the
   model, so a demo stopped while training leaves none);
4. the scorer (``seismo score --model-store``) and the retraining sidecar
   (``seismo retrain``) as child processes, the simulator in a thread, and a
   watcher of the scores and alerts topics feeding the live view;
5. at the end (``--duration`` or Ctrl-C): the simulator stops, the scorer gets
   up to ``DRAIN_S`` seconds to score what was published, the children are
   stopped, and the summary is printed and written (``summary.json``,
   ``report.html``, ``labels.jsonl`` in the run directory).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import torch
from rich.console import Console
from rich.live import Live

from seismo.models.artifact import build_artifact
from seismo.models.config import DenseConfig, TrainConfig
from seismo.models.errors import TrainingStopped
from seismo.stream.demo.detection_score import DetectionScore, score_detections
from seismo.stream.demo.report import write_report
from seismo.stream.demo.state import DemoState
from seismo.stream.demo.view import Snapshot, render, status_line
from seismo.stream.io.kafka import PRODUCER_DEFAULTS, ConfirmingProducer, client_config
from seismo.stream.io.redis_stats import connect
from seismo.stream.io.scrape import BatchLatency
from seismo.stream.local.children import SeismoChild
from seismo.stream.local.embedded import EmbeddedKafka, EmbeddedRedis, create_topics, free_port
from seismo.stream.offline.train import fit_with_progress
from seismo.stream.registry.model_registry import ModelRegistry
from seismo.stream.sim.command import SimulationPublisher
from seismo.stream.sim.plant import CHANNELS
from seismo.stream.sim.simulation import Simulation, SimulationConfig, Tick

log = logging.getLogger(__name__)

MODEL_NAME = "pumps"
DRAIN_S = 20.0
DAY_S = 30.0
"""Seconds of a simulated day, at any rate."""
DRIFT_COOLDOWN_S = 20.0
CHILD_ENV = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
"""The demo's model is tiny: one torch thread per process is fastest, and three
processes that each spin two threads on a small machine slow each other down."""
RETRAIN_EPOCHS = 15
"""Challengers train shorter than the first model: a round must fit in the demo."""
ASSIGN_TIMEOUT_S = 60.0
GRACE_TICKS = 20
HEADLESS_EVERY_S = 5.0


@dataclass(frozen=True)
class DemoOptions:
    """The ``seismo demo`` flags."""

    duration_s: float | None = 60.0
    devices: int = 20
    rate: float = 1000.0
    bootstrap_servers: str | None = None
    redis_url: str | None = None
    out_dir: Path = Path("seismo-demo")
    tty: bool = True
    seed: int = 0
    scenario: str = "steady"
    anomaly_rate: float = 0.03
    partitions: int = 4
    retrain_interval_s: float = 300.0
    epochs: int = 40
    kafka_config: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scenario not in ("steady", "drift"):
            raise ValueError("scenario must be steady or drift")
        if self.rate <= 0 or self.devices < 1:
            raise ValueError("rate and devices must be positive")
        if self.duration_s is not None and not self.duration_s >= 0:  # NaN too
            raise ValueError("duration must be 0 (until Ctrl-C) or more seconds")

    @property
    def ticks_per_s(self) -> float:
        """Readings per device per second."""
        return self.rate / self.devices


@dataclass(frozen=True)
class Topics:
    """The run's topic names."""

    events: str
    alerts: str
    scores: str
    labels: str
    dlq: str

    @classmethod
    def for_run(cls, suffix: str) -> Topics:
        """Standard names (``sensor-events``, ``anomalies``, ...) plus ``suffix``.

        >>> Topics.for_run("").alerts, Topics.for_run("-demo-1").events
        ('anomalies', 'sensor-events-demo-1')
        """
        return cls(
            f"sensor-events{suffix}", f"anomalies{suffix}", f"sensor-scores{suffix}",
            f"sensor-labels{suffix}", f"sensor-events{suffix}.dlq",
        )  # fmt: skip


@dataclass
class DemoResult:
    """What the run measured."""

    score: DetectionScore
    produced: int
    elapsed_s: float
    run_dir: Path
    versions: list[str]
    report: Path


def simulation_config(options: DemoOptions) -> SimulationConfig:
    """The simulated fleet: one simulated day lasts 30 s of the demo at any rate.

    >>> simulation_config(DemoOptions(rate=1000, devices=20, scenario="drift")).drift_at_tick
    1500
    """
    drift_at = None
    if options.scenario == "drift":
        seconds = (options.duration_s or 120.0) / 2
        drift_at = int(seconds * options.ticks_per_s)
    return SimulationConfig(
        devices=options.devices,
        anomaly_rate=options.anomaly_rate,
        day_ticks=max(int(DAY_S * options.ticks_per_s), 10),
        seed=options.seed,
        first_anomaly_tick=int(2 * options.ticks_per_s),
        drift_at_tick=drift_at,
    )


def train_first_model(
    simulation: Simulation,
    options: DemoOptions,
    console: Console,
    should_stop: Callable[[], bool] | None = None,
) -> Any:
    """Train on one simulated day of normal readings, with a progress bar."""
    torch.set_num_threads(1)  # see CHILD_ENV
    x = simulation.warmup_data(days=1.0)
    config = DenseConfig(n_features=len(CHANNELS), hidden=(16, 2))
    # normal readings: learn every row, score by the reconstruction (seismo train --clean
    # --no-range-term; the demo's figures are from before the range term)
    train = TrainConfig(epochs=options.epochs, batch_size=256, seed=options.seed,
                        trim_share=0.0, neighbours=0)
    console.print(f"training a dense autoencoder 5-16-2-16-5 on {len(x):,} normal readings")
    result = fit_with_progress(x, config, train, "cpu", console, should_stop)
    return build_artifact(
        result, name=MODEL_NAME, feature_names=list(CHANNELS),
        training_window={"source": "seismo demo warm-up", "rows": len(x)},
    )  # fmt: skip


def start_services(
    options: DemoOptions, stack: ExitStack, echo: Callable[[str], None]
) -> tuple[str, str]:
    """Bootstrap servers and Redis URL: the given ones, or embedded ones ``stack`` stops.

    A given Redis must answer before anything is created: a demo refused for
    its Redis leaves no topics on a given Kafka and trains no model.
    """
    bootstrap, redis_url = options.bootstrap_servers, options.redis_url
    if redis_url is not None:
        connect(redis_url).close()  # ServiceError: one line, without the password
    if bootstrap is None:
        kafka = stack.enter_context(EmbeddedKafka())
        bootstrap = kafka.bootstrap_servers
        echo(f"embedded Kafka (Tansu) on {bootstrap}, pid {kafka.pid}")
    if redis_url is None:
        server = stack.enter_context(EmbeddedRedis())
        redis_url = server.url
        echo(f"embedded Redis on {redis_url}, pid {server.pid}")
    return bootstrap, redis_url


def _pairs(config: dict[str, str]) -> list[str]:
    return [arg for key, value in config.items() for arg in ("--kafka-config", f"{key}={value}")]


def child_commands(
    options: DemoOptions, topics: Topics, bootstrap: str, redis_url: str, store: Path,
    prefix: str, metrics_port: int,
) -> dict[str, list[str]]:  # fmt: skip
    """The scorer's and the sidecar's ``seismo`` command lines."""
    common = ["--bootstrap-servers", bootstrap, "--redis-url", redis_url, "--redis-prefix",
              prefix, "--model-store", str(store), "--model-name", MODEL_NAME,
              "--input-topic", topics.events, *_pairs(options.kafka_config)]  # fmt: skip
    scorer = ["score", *common, "--alerts-topic", topics.alerts, "--scores-topic", topics.scores,
              "--dlq-topic", topics.dlq, "--group-id", f"seismo-demo-{prefix}",
              "--metrics-port", str(metrics_port), "--model-poll-s", "5",
              "--drift-cooldown-s", f"{DRIFT_COOLDOWN_S:g}"]  # fmt: skip
    # The window holds one simulated day (30 s) of every pump: a challenger must
    # know the whole daily cycle of the new regime before it can pass the gate.
    window = int(options.rate * DAY_S)
    retrainer = ["retrain", *common, "--interval", f"{options.retrain_interval_s:g}",
                 "--metrics-port", "0", "--window-size", str(window),
                 "--min-train-size", str(window // 4), "--group-by", "none",
                 "--epochs", str(RETRAIN_EPOCHS)]  # fmt: skip
    return {"scorer": scorer, "retrainer": retrainer}


class Demo:
    """One run of the demo; :meth:`run` does everything and returns the result."""

    def __init__(self, options: DemoOptions, stop: threading.Event, console: Console) -> None:
        self.options = options
        self.stop = stop
        self.console = console
        self.run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.run_dir = options.out_dir / self.run_id
        self.state = DemoState()
        self.lock = threading.Lock()
        self.labels: list[dict[str, Any]] = []
        self.produced = 0
        self.simulation = Simulation(simulation_config(options))

    def echo(self, line: str) -> None:
        """A plain progress line."""
        self.console.print(line, highlight=False, soft_wrap=True)

    def run(self) -> DemoResult | None:
        """Start everything, show it live, stop everything, summarise.

        ``None`` when stopped (Ctrl-C) before the stream started.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            return self._run()
        except TrainingStopped:
            self.echo("stopped while training; nothing was streamed")
            return None

    def _run(self) -> DemoResult:
        with ExitStack() as stack:
            bootstrap, url = start_services(self.options, stack, self.echo)
            suffix = "" if self.options.bootstrap_servers is None else f"-demo-{self.run_id}"
            topics = Topics.for_run(suffix)
            store, prefix = self.run_dir / "store", f"seismo-demo-{self.run_id}"
            # the model first: a demo stopped while training (Ctrl-C) or refused by its
            # Redis leaves no topics on a given Kafka
            self._publish_first_model(store, url, prefix)
            self._create_topics(bootstrap, topics)
            port = free_port()
            commands = child_commands(self.options, topics, bootstrap, url, store, prefix, port)
            children = {
                name: stack.enter_context(SeismoChild(name, args, self.run_dir / f"{name}.log",
                                                      env=CHILD_ENV))  # fmt: skip
                for name, args in commands.items()
            }
            self.echo("started " + ", ".join(f"the {n} (pid {c.pid})" for n, c in children.items()))
            watcher = self._watch(bootstrap, topics)
            stack.callback(watcher.stop)
            self._wait_until_assigned(children["scorer"])
            started = time.monotonic()
            self._stream(bootstrap, topics, children, port, started)
            elapsed = time.monotonic() - started
            self._drain(children)
        return self._finish(elapsed)

    def _wait_until_assigned(self, scorer: SeismoChild) -> None:
        """Start the stream once the scorer owns its partitions (its log says so)."""
        deadline = time.monotonic() + ASSIGN_TIMEOUT_S
        while time.monotonic() < deadline and not self.stop.is_set():
            scorer.check_alive()
            if scorer.has_logged("partitions assigned"):
                return
            time.sleep(0.2)
        if not self.stop.is_set():
            log.warning("the scorer has no partitions after %g s; streaming anyway",
                        ASSIGN_TIMEOUT_S)  # fmt: skip

    def _create_topics(self, bootstrap: str, topics: Topics) -> None:
        n = self.options.partitions
        create_topics(bootstrap, {topics.events: n, topics.alerts: n, topics.scores: n,
                                  topics.labels: 1, topics.dlq: 1},
                      extra_config=self.options.kafka_config)  # fmt: skip
        self.echo(f"topics: {topics.events} -> {topics.alerts} (scores {topics.scores}, "
                  f"labels {topics.labels})")  # fmt: skip

    def _publish_first_model(self, store: Path, redis_url: str, prefix: str) -> None:
        artifact = train_first_model(
            self.simulation, self.options, self.console, should_stop=self.stop.is_set
        )
        client = connect(redis_url)
        try:
            version = ModelRegistry(store, client, prefix).publish(artifact)
        finally:
            client.close()
        self.echo(f"published {MODEL_NAME} version {version} to {store}")

    def _watch(self, bootstrap: str, topics: Topics) -> Any:
        from seismo.stream.io.topic_watch import TopicWatcher

        n = self.options.partitions
        return TopicWatcher(
            bootstrap, {topics.scores: n, topics.alerts: n},
            {topics.scores: self.state.add_score, topics.alerts: self.state.add_alert},
            self.lock, self.options.kafka_config,
        ).start()  # fmt: skip

    def _stream(
        self, bootstrap: str, topics: Topics, children: dict[str, SeismoChild], port: int,
        started: float,
    ) -> None:  # fmt: skip
        producer = ConfirmingProducer(
            client_config(bootstrap, PRODUCER_DEFAULTS, self.options.kafka_config)
        )
        labels_file = (self.run_dir / "labels.jsonl").open("wb")
        publisher = SimulationPublisher(self.simulation, producer, topics.events, topics.labels,
                                        labels_file)  # fmt: skip
        sim_stop = threading.Event()
        thread = threading.Thread(
            target=publisher.run, name="simulator",
            args=(self.options.rate, sim_stop, self.options.duration_s, self._on_tick),
        )  # fmt: skip
        thread.start()
        try:
            self._show(children, port, started, thread)
        finally:
            sim_stop.set()
            thread.join()
            labels_file.close()
            self.labels.extend(self.simulation.open_labels())
            self.produced = publisher.totals.events

    def _on_tick(self, tick: Tick) -> None:
        self.produced += len(tick.events)
        self.labels.extend(tick.labels)

    def _snapshot(self, started: float, latency: BatchLatency) -> Snapshot:
        return Snapshot(self.state, time.monotonic() - started, self.produced,
                        latency.read(), self.options.duration_s)  # fmt: skip

    def _show(
        self, children: dict[str, SeismoChild], port: int, started: float,
        simulator: threading.Thread,
    ) -> None:  # fmt: skip
        """Refresh the view until the duration is over, Ctrl-C, or a child fails."""
        live = Live(console=self.console, refresh_per_second=4) if self.options.tty else None
        latency = BatchLatency(port)
        last_line = 0.0
        with live if live is not None else ExitStack():
            while simulator.is_alive() and not self.stop.wait(0.25):
                for child in children.values():
                    child.check_alive()
                with self.lock:
                    self.state.rate.add(self.state.scored)
                    snapshot = self._snapshot(started, latency)
                    if live is not None:
                        live.update(render(snapshot))
                if live is None and time.monotonic() - last_line >= HEADLESS_EVERY_S:
                    last_line = time.monotonic()
                    self.echo(status_line(snapshot))

    def _drain(self, children: dict[str, SeismoChild]) -> None:
        """Give the scorer time to score everything published, then stop the children."""
        self.echo(f"stopping: waiting up to {DRAIN_S:g} s for the scorer to catch up")
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline and self.state.scored < self.produced:
            children["scorer"].check_alive()
            time.sleep(0.2)
        time.sleep(1.0)  # the alerts of the last batch
        for name in ("retrainer", "scorer"):
            children[name].stop()

    def _finish(self, elapsed: float) -> DemoResult:
        with self.lock:
            score = score_detections(self.labels, self.state.alert_ticks,
                                     events=self.state.scored, grace=GRACE_TICKS)  # fmt: skip
        summary = summary_dict(score, self.produced, elapsed, self.state)
        summary_json = orjson.dumps(summary, option=orjson.OPT_INDENT_2)
        (self.run_dir / "summary.json").write_bytes(summary_json)
        report = write_report(
            self.run_dir / "report.html", title=f"seismo demo {self.run_id}",
            summary=flat_summary(summary),
            details={"devices": self.options.devices, "rate (events/s)": self.options.rate,
                     "scenario": self.options.scenario, "seed": self.options.seed,
                     "model versions": ", ".join(self.state.versions_seen)},
            state=self.state, labels=self.labels,
        )  # fmt: skip
        return DemoResult(score, self.produced, elapsed, self.run_dir,
                          list(self.state.versions_seen), report)  # fmt: skip


def summary_dict(
    score: DetectionScore, produced: int, elapsed_s: float, state: DemoState
) -> dict[str, Any]:
    """The ``summary.json`` content: the detection figures plus the run's counts."""
    return {
        **score.to_json_dict(),
        "produced": produced,
        "elapsed_s": round(elapsed_s, 1),
        "events_per_s": round(produced / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "event_to_alert_p50_ms": state.latency_ms(0.5),
        "event_to_alert_p99_ms": state.latency_ms(0.99),
        "model_versions": list(state.versions_seen),
    }


def flat_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without nested values, for a two-column table.

    >>> flat_summary({"recall": 0.9, "by_kind": {"spike": {"detected": 2, "episodes": 3}}})
    {'recall': 0.9, 'recall of spike': '2 of 3'}
    """
    out = {k: v for k, v in summary.items() if not isinstance(v, dict | list)}
    for kind, counts in summary.get("by_kind", {}).items():
        out[f"recall of {kind}"] = f"{counts['detected']} of {counts['episodes']}"
    return out
