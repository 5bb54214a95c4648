"""``seismo incidents``: the Faust app that turns the alerts topic into incidents.

One agent consumes the alerts topic (keyed by device id) and keeps every
device's state (:mod:`seismo.stream.incidents.state`) in a Faust table, ``devices``, whose
changelog topic (``{app_id}-devices-changelog``) makes it survive a restart or
a rebalance. A timer resolves incidents that went quiet, timed on each
partition's stream clock (:mod:`seismo.stream.incidents.stream_clock`), so a
backlog is read as it happened. Every change is
published to the incidents topic, keyed by device id; changes made while
processing an alert are published before that alert's offset is committed
(Faust's attachments), so none is lost in a crash.

The table uses the producer's partitioner (``use_partitioner``), so the timer
may write to it too; seismo's scorer publishes alerts with the Java-compatible
``murmur2_random`` partitioner, the same as Faust's (aiokafka's), so a
device's alerts and its table entry share a partition number and land on the
same worker.

One alert never stops the agent: a message that is no alert
(:func:`~seismo.stream.incidents.state.alert_problem`), or any error while applying one,
sends that message to the dead topic (``alerts_dlq_topic``, created with one
partition at start when missing, as Faust does with its table's topic) with
the scorer's dead-letter headers (``seismo-error``: the reason;
``seismo-source-topic``, ``-partition``, ``-offset``), counted
(``seismo_incident_skipped_messages_total``) and logged once; the dead letter
is published before the alert's offset is committed, like any change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import faust
import orjson
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient, NewTopic

from seismo.stream.config.incident_settings import IncidentSettings, faust_credentials
from seismo.stream.errors import ServiceError
from seismo.stream.incidents.silences import SilenceCache
from seismo.stream.incidents.state import (
    Change,
    Rules,
    State,
    alert_problem,
    last_alert_at,
    mute,
    new_state,
    on_alert,
    on_tick,
)
from seismo.stream.incidents.stream_clock import StreamClock
from seismo.stream.io.kafka import client_config
from seismo.stream.io.log_throttle import throttle_loggers
from seismo.stream.io.metrics import IncidentMetrics
from seismo.stream.scoring.alerts import Source, dead_letter_headers

K = TypeVar("K")

log = logging.getLogger(__name__)

#: Seconds between two sweeps of the whole table (idle devices forgotten, open incidents
#: found again); a shorter --forget-after sweeps as often.
SWEEP_S = 60.0


def rules_of(settings: IncidentSettings) -> Rules:
    return Rules(open_after=settings.open_after, window_s=settings.window_s,
                 quiet_s=settings.quiet_period_s)  # fmt: skip


def partition_count(settings: IncidentSettings) -> int:
    """Partitions of the alerts topic; the incidents topic must exist too.

    The dead topic is created (one partition) when missing.
    """
    admin = AdminClient(client_config(settings.bootstrap_servers, {}, settings.kafka_config))
    try:
        topics = admin.list_topics(timeout=10).topics
    except Exception as exc:  # KafkaException: one line, not a traceback
        where = settings.bootstrap_servers
        raise ServiceError(f"Kafka broker unreachable at {where}: {exc}") from None
    for name in (settings.alerts_topic, settings.incidents_topic):
        if name not in topics or topics[name].error is not None:
            raise ServiceError(f"topic {name!r} does not exist (create it first)")
    if settings.alerts_dlq_topic not in topics:
        _create_topic(admin, settings.alerts_dlq_topic)
    return len(topics[settings.alerts_topic].partitions)


def _create_topic(admin: AdminClient, name: str) -> None:
    future = admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name]
    try:
        future.result(timeout=15)
    except Exception as exc:  # KafkaException: one line, not a traceback
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return
        raise ServiceError(
            f"cannot create the dead topic {name!r} (create it first): {exc}"
        ) from None
    log.info("created the dead topic %s (1 partition)", name)


def parse_alert(value: bytes | None) -> tuple[dict[str, Any] | None, str | None]:
    """The alert in a message value, or why it is none.

    >>> parse_alert(b'{"alert_id": "t:0:1", "device_id": "d", "ts": 5}')[0]["device_id"]
    'd'
    >>> parse_alert(b"junk"), parse_alert(b'{"device_id": "d"}'), parse_alert(None)
    ((None, 'invalid JSON'), (None, 'alert_id is missing'), (None, 'invalid JSON'))
    """
    try:
        alert = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None, "invalid JSON"
    problem = alert_problem(alert)
    return (None, problem) if problem else (alert, None)


def failure_reason(exc: BaseException) -> str:
    """The dead-letter reason of an unexpected error while applying one alert.

    >>> failure_reason(KeyError("seq"))
    "cannot apply: KeyError: 'seq'"
    """
    words = " ".join(str(exc).split())[:200]
    return f"cannot apply: {type(exc).__name__}" + (f": {words}" if words else "")


def _with_silence(change: dict[str, Any], reason: str | None) -> dict[str, Any]:
    return {**change, "silenced": reason is not None, "silence_reason": reason}


def build_app(
    settings: IncidentSettings, partitions: int, silences: SilenceCache,
    metrics: IncidentMetrics | None = None,
) -> faust.App:  # fmt: skip
    """The Faust app: one agent, one table, one timer."""
    metrics = metrics or IncidentMetrics()
    rules = rules_of(settings)
    batching: dict[str, Any] = {}
    if settings.producer_batch_bytes is not None:
        batching["producer_max_batch_size"] = settings.producer_batch_bytes
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{h.strip()}" for h in settings.bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(settings.kafka_config),
        store=settings.store,
        datadir=str(Path(settings.data_dir)),
        web_enabled=False,
        web_bind="127.0.0.1",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(settings.session_timeout_s / 10, 0.5),
        topic_partitions=partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,  # a standby's entries would be resolved twice by the timer
        consumer_auto_offset_reset="earliest",
        **batching,
    )
    alerts = app.topic(settings.alerts_topic, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw")  # fmt: skip
    incidents = app.topic(settings.incidents_topic, key_serializer="raw", value_serializer="raw")
    # keys: raw device ids; values: JSON (the app's default serializers)
    dead = app.topic(settings.alerts_dlq_topic, key_serializer="raw", value_serializer="raw")
    devices = app.Table("devices", default=None, partitions=partitions, use_partitioner=True,
                        key_type=bytes)  # fmt: skip
    clock = StreamClock()  # quiet periods on the alerts' time (a backlog: see the module)
    open_keys: set[bytes] = set()  # devices with an open incident; sweep() finds them again
    swept = [-SWEEP_S]  # monotonic time of the last sweep (-SWEEP_S: one is due)
    every_s = min(SWEEP_S, settings.forget_after_s or SWEEP_S)

    async def publish(key: bytes, changes: list[dict[str, Any]]) -> None:
        for change in changes:
            metrics.changes.labels(change["status"]).inc()
            if change["silenced"]:
                metrics.silenced.inc()
            log.info("incident %s %s: %s, %d alerts, severity %s%s", change["incident_id"],
                     change["status"], change["device_id"], change["alert_count"],
                     change["severity"], " (silenced)" if change["silenced"] else "")
            await incidents.send(key=key, value=orjson.dumps(change))

    async def dead_letter(event: Any, reason: str, *, logged: bool = False) -> None:
        """Publish one message to the dead topic (before its offset is committed)."""
        m = event.message
        src = Source(m.topic, m.partition, m.offset)
        metrics.skipped.inc()
        await dead.send(key=event.key, value=event.value,
                        headers=dead_letter_headers(reason, src))  # fmt: skip
        if not logged:
            log.warning("sent %s:%d:%d to %s: %s", src.topic, src.partition, src.offset,
                        settings.alerts_dlq_topic, reason)  # fmt: skip

    async def apply(event: Any, alert: dict[str, Any]) -> None:
        key = event.key or str(alert["device_id"]).encode()
        state, changes = take_alert(devices.get(key), alert, event.message.partition, clock,
                                    rules)  # fmt: skip
        if changes:
            reason = silences.reason_for(str(alert["device_id"]), _now_ms())
            mute(state, reason)
            changes = [_with_silence(c, reason) for c in changes]
        devices[key] = state
        if state.get("incident"):
            open_keys.add(key)
        await publish(key, changes)

    @app.agent(alerts)
    async def track(stream: Any) -> None:
        async for event in stream.events():
            alert, problem = parse_alert(event.value)
            if alert is None:
                await dead_letter(event, problem or "no seismo alert")
                continue
            try:
                await apply(event, alert)
            except Exception as exc:  # noqa: BLE001 - one alert must never stop the agent
                m = event.message
                log.error("cannot apply %s:%d:%d (sent to %s)", m.topic, m.partition, m.offset,
                          settings.alerts_dlq_topic, exc_info=True)  # fmt: skip
                await dead_letter(event, failure_reason(exc), logged=True)

    def sweep() -> None:
        """At the first tick, every SWEEP_S, and after each rebalance once the table is
        recovered (Faust's on_rebalance_complete: incidents restored from the changelog):
        the whole table is read once; idle devices are forgotten, and those with an open
        incident found."""
        states = list(devices.items())
        gone = forgettable(states, clock, int(settings.forget_after_s * 1000),
                           settings.max_devices)  # fmt: skip
        for key in gone:
            del devices[key]
        if gone:
            metrics.forgotten.inc(len(gone))
            log.info("forgot %d idle device(s) (no alert for --forget-after, or beyond "
                     "--max-devices)", len(gone))  # fmt: skip
        open_keys.clear()
        open_keys.update(key for key, state in states if state and state.get("incident"))
        metrics.devices.set(len(states) - len(gone))
        swept[0] = time.monotonic()

    @app.timer(interval=settings.tick_s)
    async def resolve_quiet() -> None:
        if time.monotonic() - swept[0] >= every_s:
            sweep()
        # only the devices with an open incident: a scan of every device each tick took
        # 126 ms per 100 000 of them (a red-team finding)
        held = [(key, devices.get(key)) for key in list(open_keys)]
        open_keys.difference_update(key for key, state in held
                                    if not state or not state.get("incident"))  # fmt: skip
        due = [key for key, _, _ in quiet_ones(held, clock, rules)]
        for key in due:
            # Judged again on the state as it is now, with no await in between: the agent
            # may have applied an alert of this device while an earlier change was sent.
            for _, new, changes in quiet_ones([(key, devices.get(key))], clock, rules):
                devices[key] = new
                open_keys.discard(key)
                await publish(key, changes)

    async def forget_revoked(_sender: Any, *args: Any, **_kwargs: Any) -> None:
        for tp in args[0] if args else ():  # the clock of a partition that comes back starts again
            if tp.topic == settings.alerts_topic:
                clock.forget(tp.partition)

    app.on_partitions_revoked.connect(forget_revoked)  # type: ignore[arg-type]

    async def sweep_recovered(_sender: Any, *_args: Any, **_kwargs: Any) -> None:
        swept[0] = -SWEEP_S  # the next tick reads the recovered table

    app.on_rebalance_complete.connect(sweep_recovered)  # type: ignore[arg-type]

    return app


def quiet_libraries() -> None:
    """aiokafka's and Faust's WARNING-or-worse lines, each kind at most once a period:
    during a broker outage they log every retry, many a second."""
    throttle_loggers(("aiokafka", "faust"))


def take_alert(
    state: State | None, alert: dict[str, Any], partition: int, clock: StreamClock, rules: Rules
) -> tuple[State, list[Change]]:
    """One alert read from ``partition``, for its device's ``state`` (``None``: a device
    seen for the first time): the new state, which remembers the partition whose stream
    clock times its quiet period, and the incident changes. An alert detected after the
    wall clock's now counts as detected now: its incident resolves after its quiet
    period, not after the future time."""
    at = int(alert.get("detected_at") or alert["ts"])
    clock.saw(partition, at)
    if at > clock.wall():  # stamped in the future: detected now (it would hold an incident open)
        alert = {**alert, "detected_at": clock.wall()}
    new, changes = on_alert(state or new_state(), alert, rules)
    new["partition"] = partition
    return new, changes


def quiet_ones(
    states: Sequence[tuple[K, State | None]], clock: StreamClock, rules: Rules
) -> list[tuple[K, State, list[Change]]]:
    """The timer's turn: each device whose open incident went quiet on its partition's
    stream clock, with its new state and the change that resolves it.

    A partition with open incidents and no alert read since the start (they came
    back from the changelog) resumes its clock at the newest of their last alerts.
    """
    open_ = [(key, state) for key, state in states if state and state.get("incident")]
    for _, state in open_:
        clock.resume(state.get("partition"), int(state["incident"]["last_alert_at"]))
    out = []
    for key, state in open_:
        new, changes = on_tick(state, clock.now(state.get("partition")), rules)
        if changes:
            out.append((key, new, changes))
    return out


def forgettable(
    states: Sequence[tuple[K, State | None]], clock: StreamClock, forget_after_ms: int,
    max_devices: int,
) -> list[K]:  # fmt: skip
    """Devices whose state can go: with no open incident and no alert for
    ``forget_after_ms`` on their partition's stream clock (0: never); then, while more
    than ``max_devices`` would remain, those without an open incident whose last alert
    is the oldest. A device with an open incident is never forgotten.

    A forgotten device starts again as one never seen: a scorer's replay of an alert
    it had before is counted again (replays come within a batch's redelivery, long
    before a day; but beyond ``max_devices`` a flood of fresh ids can forget a device
    seconds after its last alert).

    >>> clock = StreamClock(lambda: 100_000)
    >>> states = [(b"a", {"last_at": 1_000, "incident": None}),
    ...           (b"b", {"last_at": 90_000, "incident": None}),
    ...           (b"c", {"last_at": 1_000, "incident": {"last_alert_at": 1_000}}),
    ...           (b"d", {"last_at": 99_000, "incident": None})]
    >>> forgettable(states, clock, forget_after_ms=50_000, max_devices=10)
    [b'a']
    >>> forgettable(states, clock, forget_after_ms=0, max_devices=2)
    [b'a', b'b']
    """
    gone: list[K] = []
    idle: list[tuple[int, K]] = []
    for key, state in states:
        if not state or state.get("incident"):
            continue
        last = last_alert_at(state)
        if forget_after_ms and clock.now(state.get("partition")) - last >= forget_after_ms:
            gone.append(key)
        else:
            idle.append((last, key))
    excess = len(states) - len(gone) - max_devices
    if excess > 0:
        idle.sort(key=lambda pair: pair[0])
        gone += [key for _, key in idle[:excess]]
    return gone


def _now_ms() -> int:
    return int(time.time() * 1000)


def run_incidents(settings: IncidentSettings) -> None:
    """Run the app in this process until SIGTERM/SIGINT (Faust's worker handles them)."""
    from seismo.stream.incidents.silences import list_silences
    from seismo.stream.io.redis_stats import connect

    log.info("starting incidents app %s on %s", settings.app_id, settings.alerts_topic)
    partitions = partition_count(settings)
    client = connect(settings.redis_url.get_secret_value())
    cache = SilenceCache(lambda: list_silences(client, settings.redis_prefix))
    metrics = IncidentMetrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, settings.metrics_host)
    log.info("incidents app starting its worker with settings %s", settings.redacted())
    app = build_app(settings, partitions, cache, metrics)
    quiet_libraries()
    # Seismo's own logging (setup_logging: one line per event, escaped) stays in force.
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False,
                          override_logging=False)  # fmt: skip
    try:
        worker.execute_from_commandline()
    finally:
        client.close()
