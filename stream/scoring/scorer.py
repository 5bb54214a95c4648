"""The scoring loop: micro-batches in, alerts out, at least once.

:class:`Scorer` only moves data between Kafka, the model, the threshold rule
and Redis; the logic lives in :mod:`seismo.stream.scoring.codec`,
:mod:`seismo.stream.scoring.threshold` and
:mod:`seismo.stream.scoring.alerts`. It runs in one thread, so a rebalance (served inside
``consume``) never happens while a batch is in flight.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import orjson
from confluent_kafka import (
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)

from seismo.models.artifact import Artifact
from seismo.models.columns import SECONDS_BELOW
from seismo.stream.config.settings import ScorerSettings
from seismo.stream.errors import DeliveryError
from seismo.stream.io.batch_sources import MessageSources, kafka_times
from seismo.stream.io.health import IdleNotice, unowned_after_s
from seismo.stream.io.kafka import CONSUMER_DEFAULTS, ConfirmingProducer, split_errors
from seismo.stream.io.log_throttle import Throttle
from seismo.stream.io.metrics import ScorerMetrics
from seismo.stream.io.redis_stats import SharedStats
from seismo.stream.registry.model_watch import ModelWatcher
from seismo.stream.scoring.alerts import ScoredBatch, Source, alert_records, score_records
from seismo.stream.scoring.codec import (
    DecodedBatch,
    Headers,
    Unreadable,
    decode_batch,
    header_pairs,
    message_headers,
)
from seismo.stream.scoring.dead_letters import (
    DeadLetterLog,
    Outgoing,
    dead_letter,
    producer_limit,
    stub,
)
from seismo.stream.scoring.devices.rule import DeviceRule
from seismo.stream.scoring.devices.states import DeviceStates
from seismo.stream.scoring.drift import DriftMonitor, ThresholdWatch
from seismo.stream.scoring.fast_decode import MAX_TS_MS
from seismo.stream.scoring.judges import DeviceJudge, Judge, SharedJudge
from seismo.stream.scoring.prefetch import Prefetcher
from seismo.stream.scoring.scorable import NOT_FINITE, finite_rows, representable
from seismo.stream.scoring.threshold import ThresholdRule, ThresholdSource, learnable, to_space
from seismo.stream.scoring.window_buffer import WindowBuffer, gather, reading_channels

log = logging.getLogger(__name__)

#: An event time below this many ms (1973) is most likely in epoch seconds: the bound
#: at which ``seismo produce`` and ``train`` read a file's times as seconds.
SECONDS_BELOW_MS = int(SECONDS_BELOW)

#: Longest pause between two attempts to publish a batch the broker did not confirm.
MAX_DELIVERY_PAUSE_S = 30.0
#: Times a record is refused for good (too large, invalid) before a stub replaces it.
MAX_REFUSALS = 2


@dataclass(frozen=True)
class BatchResult:
    """What one call of :meth:`Scorer.process` did."""

    consumed: int
    scored: int
    dead_lettered: int
    alerts: int


StatsFactory = Callable[[Artifact], SharedStats]
"""The shared statistics of a model version (each version has its own)."""
DriftCallback = Callable[[Artifact], None]
"""Called when the scores of the model serving have drifted from its calibration."""
TailReader = Callable[[list[TopicPartition], int], list[Message]]
"""Up to ``n`` messages before the group's committed offset of each partition, in order."""


class Scorer:
    """Score micro-batches from a subscribed consumer and publish the results.

    With a ``watcher`` (a model registry), a new model version is swapped in
    between two batches, with statistics of its own from ``stats_for``. With
    ``on_drift``, the scores' drift from the model's calibration (see
    :mod:`seismo.stream.scoring.drift`) is reported through it.
    """

    def __init__(
        self,
        *,
        settings: ScorerSettings,
        artifact: Artifact,
        consumer: Consumer,
        producer: ConfirmingProducer,
        stats: SharedStats,
        metrics: ScorerMetrics,
        clock: Callable[[], float] = time.time,
        watcher: ModelWatcher | None = None,
        stats_for: StatsFactory | None = None,
        on_drift: DriftCallback | None = None,
        new_producer: Callable[[], ConfirmingProducer] | None = None,
        read_tail: TailReader | None = None,
        devices: DeviceStates | None = None,
    ) -> None:
        self.settings = settings
        self.artifact = artifact
        self.consumer = consumer
        self.producer = producer
        self.stats = stats
        self.metrics = metrics
        self.clock = clock
        self.watcher = watcher
        self.stats_for = stats_for
        self.on_drift = on_drift
        self.new_producer = new_producer
        self.read_tail = read_tail
        self._stop = threading.Event()
        self._prefetcher: Prefetcher[Message] | None = None
        self.rule = ThresholdRule(
            k=settings.k, min_samples=settings.min_samples, space=settings.threshold_space,
            max_factor=settings.max_threshold_factor,
        )
        #: totals already reported to the metrics, and those of swapped-out statistics
        self._seen = {"errors": 0, "repairs": 0, "evictions": 0}
        self._retired = {"errors": 0, "repairs": 0}
        self._dlq_limit = producer_limit(settings.kafka_config)
        self._stats_source: ThresholdSource = "redis"
        #: the clock time that stood in for the last decoded batch's missing event times
        self._stand_in_ms: int | None = None
        self.drift = self._drift_monitor(artifact)
        #: what the log says of dead letters (a summary) and of the threshold's drift
        self.dead_letters = DeadLetterLog(settings.dlq_topic)
        self.threshold_watch = ThresholdWatch()
        #: warnings that would repeat every batch (consume errors in an outage, a drift,
        #: odd timestamps): at most one line of each kind per period
        self._log_throttle = Throttle()
        session_ms = settings.kafka_config.get("session.timeout.ms",
                                               CONSUMER_DEFAULTS["session.timeout.ms"])
        self.idle_notice = IdleNotice(unowned_after_s(session_ms))
        #: Whether the newest offset commit failed (its batch is scored again by the next
        #: owner of the partitions): the stop line says so instead of "stopped cleanly".
        self.last_commit_failed = False
        self._whole_dropped = 0  # whole windows dropped since the last line about them
        #: the lowest seconds-like event time since the last warning about them
        self._earliest_ms = SECONDS_BELOW_MS
        metrics.set_model(artifact.name, artifact.version)
        self.windows: WindowBuffer | None = None
        self._owned: set[tuple[str, int]] = set()
        #: the channel names of one reading, in model order (named values, window gather)
        self._channels = reading_channels(artifact.feature_names, settings.window)
        #: values per reading: the model's width over the window
        self._reading_width = artifact.n_features // settings.window
        if settings.window > 1:
            size = settings.window
            self.windows = WindowBuffer(size, settings.window_stride, self._reading_width,
                                        step=settings.window_step,
                                        max_devices=settings.max_devices)  # fmt: skip
        self.devices = devices
        self.judge: Judge = SharedJudge()
        if settings.threshold_scope == "device":
            if devices is None:
                raise ValueError("threshold_scope device needs the device states store")
            rule = DeviceRule(
                k=settings.k, smooth=settings.smooth, history=settings.device_history,
                level_history=settings.level_history, level_warmup=settings.level_warmup,
                learn_anomalies=settings.learn_anomalies, level_mode=settings.level_mode,
                level_smooth=settings.level_smooth, level_k=settings.level_k,
                level_tolerance=settings.level_tolerance,
                level_clip=settings.level_clip)  # fmt: skip
            self.judge = DeviceJudge(devices, rule, settings.max_batch,
                                     on_skipped=metrics.rows_skipped.inc)  # fmt: skip

    def close(self) -> None:
        """On shutdown, after the last batch: one last try to write to Redis what the
        scorer learnt (warned about when Redis is still away: it is lost), then flush
        and close the producer in use."""
        self.stats.flush()
        self.judge.save()
        counts = self.judge.counts()
        if counts is not None and counts.pending:
            log.warning("%d device states could not be written to Redis at shutdown: those "
                        "devices continue from their last written state", counts.pending)
        left = self.producer.close()
        if left:
            log.warning("%d output messages were not delivered at shutdown; their input "
                        "offsets were not committed, so they are produced again", left)

    def _drift_monitor(self, artifact: Artifact) -> DriftMonitor | None:
        s, cal = self.settings, artifact.calibration
        if not s.drift_m or self.on_drift is None:
            return None
        if s.threshold_space == "log":
            return DriftMonitor(cal.log_mean, cal.log_std, s.drift_m, s.drift_window)
        return DriftMonitor(cal.mean, cal.std, s.drift_m, s.drift_window)

    def swap_if_ready(self) -> bool:
        """Swap in a new model version if the watcher has one loaded; call between batches.

        The new version's threshold statistics start from its own calibration:
        they live under a key of their own, so an old version's statistics
        never judge a new model's scores.
        """
        new = self.watcher.take() if self.watcher is not None else None
        if new is None or self.stats_for is None:
            return False
        old, self.artifact = self.artifact, new
        self._retired["errors"] += self.stats.errors  # the new statistics count from 0
        self._retired["repairs"] += self.stats.repairs
        self.stats = self.stats_for(new)
        self.drift = self._drift_monitor(new)
        self._channels = reading_channels(new.feature_names, self.settings.window)
        self.metrics.set_model(new.name, new.version)
        self.metrics.model_swaps.inc()
        log.info("model swapped: %s version %s -> %s", new.name, old.version, new.version)
        return True

    def run(self, stop: threading.Event) -> None:
        """Consume and process batches until ``stop`` is set.

        A batch closes when ``max_batch`` messages arrived or ``linger_ms``
        passed; the batch in flight when ``stop`` is set is finished first
        (with ``prefetch``, the one consumed ahead of it too).
        """
        linger_s = self.settings.linger_ms / 1000
        self._stop = stop

        def consume() -> list[Message]:
            return self.consumer.consume(num_messages=self.settings.max_batch, timeout=linger_s)

        if not self.settings.prefetch:
            while not stop.is_set():
                self.swap_if_ready()
                messages = consume()
                self._step(messages, self.consumer.assignment())
            return
        # The consumer is used by the prefetching thread only (see prefetch.py).
        owned: list[list[TopicPartition]] = [[]]

        def prefetch() -> list[Message]:
            messages = consume()
            owned[0] = self.consumer.assignment()
            return messages

        try:
            with Prefetcher(prefetch, stop) as prefetcher:
                self._prefetcher = prefetcher
                while not stop.is_set():
                    self.swap_if_ready()
                    self._step(prefetcher.next(linger_s) or [], owned[0], prefetcher.done)
                for ahead in prefetcher.left():
                    self._step(ahead, owned[0], prefetcher.done)
        finally:
            self._prefetcher = None  # the thread is gone: the consumer is this thread's again

    def settle(self) -> None:
        """Before partitions are revoked: finish and commit every batch consumed ahead.

        Called by the consumer's revocation callback, which librdkafka runs in
        the thread that consumes; without prefetching it has nothing to wait for.
        """
        prefetcher = self._prefetcher
        if prefetcher is not None:
            prefetcher.settle()

    def _step(
        self, messages: Sequence[Message], assignment: Sequence[TopicPartition],
        done: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        """One turn of the loop: ``messages`` processed (or, with none, the idle chores)."""
        self._sync_partitions(assignment)  # before the batch: it may be a new partition's
        if messages:
            try:
                self.process(messages)
            finally:
                if done is not None:
                    done()
        else:
            self.producer.poll()
            self._summarise_dead_letters()
        self.metrics.health.loop_alive(len(assignment))
        self._warn_if_unowned()

    def _warn_if_unowned(self) -> None:
        """Say so while the scorer owns no partition (see :class:`IdleNotice`)."""
        health = self.metrics.health
        unowned = health.unowned_s()
        if unowned is None and not self.idle_notice.told:
            return  # the usual case, every batch: nothing more to read
        level = self.idle_notice.check(unowned, health.kafka_for(), time.monotonic())
        if level is not None:
            log.log(level, "no partition of %s assigned to this scorer for %.0f s (group %s): "
                    "other members own them all (more scorers than partitions: this one "
                    "waits as a standby), or the group is stuck at the broker; on Tansu a "
                    "member stopped while joining leaves it so: restart the broker "
                    "(docs/kafka-compat.md)", self.settings.input_topic, unowned,
                    self.settings.group_id)  # fmt: skip

    def _sync_partitions(self, assignment: Sequence[TopicPartition]) -> None:
        """Keep the device windows and device states in step with the partitions owned.

        After a revocation every window starts again (the lost partitions'
        readings go elsewhere) and the device states are read from Redis
        again when next needed (the new owner may have moved them on); a
        newly owned partition's windows are rebuilt from up to
        ``window_tail`` messages before its committed offset, which its
        previous owner already scored, so its devices are judged from their
        next reading on.
        """
        if self.windows is None and self.devices is None:
            return
        owned = {(tp.topic, tp.partition) for tp in assignment}
        if owned == self._owned:
            return
        if not owned >= self._owned:
            self.judge.forget()
            if self.windows is not None:
                log.info("partitions revoked: %d device windows start again", len(self.windows))
                self.windows.forget()
            gained = owned
        else:
            gained = owned - self._owned
        self._owned = owned
        if self.windows is None or self.read_tail is None or not gained \
                or not self.settings.window_tail:  # fmt: skip
            return
        tail = self.read_tail([TopicPartition(t, p) for t, p in sorted(gained)],
                              self.settings.window_tail)  # fmt: skip
        if tail:
            # into the buffers, not scored; a reading dead-lettered when it came (beyond
            # float32 once standardised) stays out, as it stayed out of the windows then
            self._gather(self._scorable(self._decode(tail, now_ms=0)), tail)
        log.info("device windows rebuilt from %d earlier messages of %d partitions",
                 len(tail), len(gained))  # fmt: skip

    def process(self, raw: Sequence[Message]) -> BatchResult:
        """Score one micro-batch and hand it on, at least once.

        The order below is what makes a crash at any point lose nothing:

        1. Decode and validate; score the valid rows; judge them (:attr:`judge`:
           against the threshold from the shared statistics read from Redis, or
           each device against its own state).
        2. Produce alerts, scores (if enabled) and dead letters.
        3. Flush and confirm delivery. When the broker does not confirm it,
           publish the batch again with a new producer, with a growing pause
           (1 s to 30 s), until it is confirmed: meanwhile nothing more is
           consumed, so an unwritable output topic holds the scorer back
           instead of filling its memory. Once ``stop`` is set, give up with
           ``DeliveryError`` *without committing*: the batch is consumed
           again after a restart.
        4. Write to Redis what the batch taught: merge its normal scores into
           the shared statistics, and save the device states it moved on.
        5. Commit the batch's offsets synchronously (with ``prefetch``, in the
           consuming thread before its next ``consume()``).

        A crash before step 5 replays the batch: alerts reappear with the same
        ``alert_id`` (deduplicate on it) and step 4 may count a batch twice in
        the rolling statistics, which only nudges them (device states remember
        the offsets they judged, so a replay is not judged twice). Nothing is lost.
        """
        started = time.perf_counter()
        messages, errors = split_errors(raw)
        if errors:
            self.metrics.kafka_errors.inc(len(errors))
            held = self._log_throttle.admit(errors[0].code())
            if held is not None:
                log.warning("consume error: %s%s", errors[0].str(), self._log_throttle.note(held))
        if not messages:
            return BatchResult(0, 0, 0, 0)
        sources = MessageSources(messages)
        headers = [message_headers(m) for m in messages]  # once: see message_headers
        decoded = self._scorable(self._decode(messages, int(self.clock() * 1000), headers))
        decoded, starts = self._gather(decoded, messages)
        decoded, starts = self.judge.unjudged(decoded, starts, sources)
        scored = self._score(decoded, sources, starts)  # 1
        self._watch_drift(scored)
        n_alerts = self._deliver(scored, messages, sources, headers)  # 2, 3
        calibrated = self.rule.calibrated(self.artifact.calibration)  # the learning floor's anchor
        self.stats.merge(  # 4
            learnable(scored.scores, scored.flags, self.settings.learn_anomalies, self.rule.space,
                      scored.threshold, calibrated)  # fmt: skip
        )
        self.judge.save()
        self._commit(sources)  # 5
        self._observe(scored, len(messages), n_alerts, started)
        self._summarise_dead_letters()
        done = scored.decoded
        return BatchResult(len(messages), len(done), len(done.rejected), n_alerts)

    def _scorable(self, decoded: DecodedBatch) -> DecodedBatch:
        """Dead-letter the events whose standardised values would overflow the model's
        float32 math (:mod:`seismo.stream.scoring.scorable`), before they reach a window
        or the model."""
        scaler = self.artifact.detector.scaler
        ok = representable(decoded.values, scaler.mean, scaler.scale)
        return decoded if ok.all() else decoded.reject(~ok, NOT_FINITE)

    def _decode(
        self, messages: Sequence[Message], now_ms: int, headers: Sequence[Headers] | None = None
    ) -> DecodedBatch:
        """The messages' events (``d`` values each: the model's width over the window),
        positional or named by channel; ``headers`` are theirs when already read."""
        if headers is None:
            headers = [message_headers(m) for m in messages]
        stamps, odd, stood_in = kafka_times(messages, now_ms)
        self._stand_in_ms = now_ms if stood_in else None
        self._report_odd_timestamps(odd)
        decoded = decode_batch(
            [m.value() for m in messages],
            kafka_timestamps=stamps,
            n_features=self.artifact.n_features // self.settings.window,
            max_bytes=self.settings.max_message_bytes,
            headers=headers,
            keys=[m.key() for m in messages] if any(headers) else None,
            channels=self._channels,
        )
        self._report_seconds_like(decoded.timestamps)
        return decoded

    def _report_seconds_like(self, timestamps: np.ndarray) -> None:
        """Log (at most once a period, with every such event since the last line) events
        whose time lies before 1973: a ``ts`` in epoch seconds, which the contract reads
        as milliseconds (1732500000 is 1970-01-21)."""
        early = timestamps < SECONDS_BELOW_MS
        if not early.any():
            return
        self._earliest_ms = min(self._earliest_ms, int(timestamps[early].min()))
        total = self._log_throttle.tally("seconds", int(np.count_nonzero(early)))
        if total is not None:
            log.warning("%d event(s) with a time before 1973 (as low as %d ms): epoch seconds? "
                        "An event's ts (without one, its Kafka timestamp) is read as epoch "
                        "milliseconds; their alerts and windows carry that time",
                        total, self._earliest_ms)  # fmt: skip
            self._earliest_ms = SECONDS_BELOW_MS

    def _report_odd_timestamps(self, odd: int) -> None:
        """Count (and, at most once a period, log) Kafka timestamps replaced by the clock."""
        if not odd:
            return
        self.metrics.timestamps_replaced.inc(odd)
        held = self._log_throttle.admit("timestamps")
        if held is not None:
            log.warning("%d message(s) with a Kafka timestamp outside [0, %d) ms (a producer "
                        "clock in microseconds?): their events take the scorer's clock",
                        odd, MAX_TS_MS)  # fmt: skip

    def _gather(
        self, decoded: DecodedBatch, messages: Sequence[Message]
    ) -> tuple[DecodedBatch, np.ndarray | None]:
        """With windows, push the events into the device windows and score the windows
        they complete instead; without, the events themselves."""
        if self.windows is None:
            return decoded, None
        partitions = [m.partition() or 0 for m in messages]
        offsets = [m.offset() or 0 for m in messages]
        before, whole = self.windows.evictions, self.windows.dropped_full
        out = gather(self.windows, decoded, partitions, offsets)
        self._report_dropped_windows(self.windows.evictions - before,
                                     self.windows.dropped_full - whole,
                                     self.windows.max_devices)  # fmt: skip
        return out

    def _report_dropped_windows(self, dropped: int, whole: int, cap: int | None) -> None:
        """Log (at most once a period, with every one since the last line) device windows
        dropped to stay under ``max_devices``: their devices' readings are not scored
        until their windows fill again."""
        self._whole_dropped += whole
        total = self._log_throttle.tally("windows", dropped)
        if total is not None:
            log.warning("%d device window(s) dropped to stay under --max-devices %s (%d of "
                        "them whole): their devices' next readings are not scored until their "
                        "windows fill again; more devices report on this scorer's partitions "
                        "than that, or events carry a new device id each", total, cap,
                        self._whole_dropped)  # fmt: skip
            self._whole_dropped = 0

    def _score(
        self, decoded: DecodedBatch, sources: Sequence[Source], starts: np.ndarray | None = None
    ) -> ScoredBatch:
        scores, feature_errors = self.artifact.detector.score_with_features(decoded.values)
        finite = finite_rows(scores, feature_errors)
        if not finite.all():  # never thresholded, learned or judged: dead-lettered
            decoded = decoded.reject(~finite, NOT_FINITE)
            scores, feature_errors = scores[finite], feature_errors[finite]
            starts = None if starts is None else starts[finite]
        stats, source = self.stats.read()
        self._stats_source = source
        threshold = self.rule.current(stats, self.artifact.calibration, source)
        verdicts = self.judge.judge(decoded, scores, sources, threshold, self.artifact,
                                    self._reading_width)  # fmt: skip
        return ScoredBatch(
            decoded=decoded,
            sources=sources,
            scores=scores,
            feature_errors=feature_errors,
            flags=verdicts.flags,
            zscores=verdicts.zscores,
            threshold=threshold,
            model_version=self.artifact.version,
            feature_names=self.artifact.feature_names,
            window_starts=starts,
            window=(self.settings.window, self.settings.window_stride, self.settings.window_step),
            channel_names=self._channels,
            device=verdicts.device,
            stand_in_ms=self._stand_in_ms,
        )

    def _watch_drift(self, scored: ScoredBatch) -> None:
        if self.drift is None or self.on_drift is None or not len(scored.scores):
            return
        if self.drift.observe(to_space(scored.scores, self.rule.space)):
            held = self._log_throttle.admit("drift")  # it repeats while the drift lasts
            if held is not None:
                log.warning("scores of %s version %s drifted from its calibration (the "
                            "devices changed, or the events differ from the training data: "
                            "units, or the order of positional values)%s",
                            self.artifact.name, self.artifact.version,
                            self._log_throttle.note(held))  # fmt: skip
            self.on_drift(self.artifact)

    def _outbox(
        self, scored: ScoredBatch, messages: Sequence[Message], sources: Sequence[Source],
        headers: Sequence[Headers],
    ) -> tuple[list[Outgoing], list[str]]:  # fmt: skip
        """Every record the batch publishes (alerts, scores, dead letters), and for each
        the reason of the dead-letter stub that replaces it if it is refused for good."""
        s, decoded = self.settings, scored.decoded
        records: list[Outgoing] = []
        reasons: list[str] = []
        detected_at = int(self.clock() * 1000)
        flagged = decoded.rows[np.flatnonzero(scored.flags)]
        for record, row in zip(alert_records(scored, detected_at), flagged, strict=True):
            records.append(Outgoing(s.alerts_topic, orjson.dumps(record),
                                    record["device_id"].encode(), None, int(row)))  # fmt: skip
            reasons.append("its alert was refused by the broker")
        if s.scores_topic:
            for record, row in zip(score_records(scored), decoded.rows, strict=True):
                records.append(Outgoing(s.scores_topic, orjson.dumps(record),
                                        record["device_id"].encode(), None, int(row)))  # fmt: skip
                reasons.append("its score record was refused by the broker")
        for rejected in decoded.rejected:
            msg = messages[rejected.index]
            read = headers[rejected.index]
            records.append(dead_letter(
                s.dlq_topic, msg.value(), msg.key(), header_pairs(read), rejected.reason,
                sources[rejected.index], row=rejected.index, limit=self._dlq_limit,
                unreadable=isinstance(read, Unreadable),
            ))  # fmt: skip
            reasons.append(rejected.reason)
        return records, reasons

    def _deliver(
        self, scored: ScoredBatch, messages: Sequence[Message], sources: Sequence[Source],
        headers: Sequence[Headers],
    ) -> int:  # fmt: skip
        """Publish the batch's records and wait for the broker to confirm them all.

        A record refused for good (too large, invalid) :data:`MAX_REFUSALS`
        times is replaced by a dead-letter stub of its source message
        (:func:`seismo.stream.scoring.dead_letters.stub`) and the batch is published again
        at once; any other failure is retried with a growing pause.
        """
        records, reasons = self._outbox(scored, messages, sources, headers)
        refusals: dict[int, int] = {}
        pause = 1.0
        while True:
            for tag, r in enumerate(records):
                self.producer.send(r.topic, r.value, r.key, r.headers, tag=tag)
            try:
                self.producer.flush(self.settings.flush_timeout_s)
                break
            except DeliveryError as exc:
                self.metrics.delivery_failures.inc()
                if self.new_producer is None or self._stop.is_set():
                    raise
                stubbed = self._stub_refused(records, reasons, exc.refused, refusals, sources)
                wait = 0.0 if stubbed else pause
                log.warning("%s; publishing the batch again with a new producer in %g s",
                            exc, wait)  # fmt: skip
                self.producer.abandon()
                if wait and self._stop.wait(wait):
                    raise
                self.producer = self.new_producer()
                if not stubbed:
                    pause = min(pause * 2, MAX_DELIVERY_PAUSE_S)
        n_alerts = int(scored.flags.sum())
        if n_alerts:
            detected = int(self.clock() * 1000)
            for ts in scored.decoded.timestamps[scored.flags]:
                self.metrics.event_to_alert.observe(max(detected - int(ts), 0) / 1000)
        return n_alerts

    def _stub_refused(
        self, records: list[Outgoing], reasons: list[str],
        refused: Sequence[tuple[object, str]], refusals: dict[int, int],
        sources: Sequence[Source],
    ) -> int:  # fmt: skip
        """Replace the records refused for good often enough by stubs; how many were."""
        stubbed = 0
        for tag, error in refused:
            if not isinstance(tag, int):
                continue
            refusals[tag] = refusals.get(tag, 0) + 1
            r = records[tag]
            is_stub = r.topic == self.settings.dlq_topic and r.value is None
            if refusals[tag] >= MAX_REFUSALS and not is_stub:
                records[tag] = stub(self.settings.dlq_topic, reasons[tag], sources[r.row],
                                    row=r.row, error=error)  # fmt: skip
                stubbed += 1
                log.error("a record for %s (source offset %d) was refused for good (%s): "
                          "its source message is dead-lettered as a stub", r.topic,
                          sources[r.row].offset, error)  # fmt: skip
        return stubbed

    def _summarise_dead_letters(self) -> None:
        """One WARNING line per period while events are dead-lettered (count, a sample)."""
        line = self.dead_letters.due()
        if line is not None:
            log.warning("%s", line)

    def _commit(self, sources: MessageSources) -> None:
        prefetcher = self._prefetcher
        if prefetcher is not None:  # the consumer belongs to the prefetching thread
            prefetcher.defer(lambda: self._commit_now(sources))
        else:
            self._commit_now(sources)

    def _commit_now(self, sources: MessageSources) -> None:
        try:
            self.consumer.commit(offsets=sources.commit_offsets(), asynchronous=False)
        except KafkaException as exc:
            # A rebalance took the partitions: their new owner re-scores the batch
            # (duplicates, never loss), so carry on.
            self.metrics.kafka_errors.inc()
            self.last_commit_failed = True
            log.warning("offset commit failed, batch will be redelivered: %s", exc)
        else:
            self.last_commit_failed = False

    def _observe(self, scored: ScoredBatch, consumed: int, alerts: int, started: float) -> None:
        m, t = self.metrics, scored.threshold
        m.consumed.inc(consumed)
        m.scored.inc(len(scored.decoded))
        m.dead_lettered.inc(len(scored.decoded.rejected))
        self.dead_letters.add([(r.reason, scored.sources[r.index])
                               for r in scored.decoded.rejected])  # fmt: skip
        m.alerts.inc(alerts)
        m.batch_size.observe(consumed)
        m.batch_latency.observe(time.perf_counter() - started)
        m.threshold.set(t.value)
        calibrated = self.rule.calibrated(self.artifact.calibration).value
        m.threshold_calibration.set(calibrated)
        said = self.threshold_watch.observe(t.value, calibrated, t.capped_from)
        if said is not None:
            log.log(*said)
        m.threshold_mean.set(t.mean)
        m.threshold_std.set(t.std)
        m.threshold_local.set(1 if self._stats_source == "local" else 0)
        m.health.redis(local=self._stats_source == "local")
        m.stats_pending.set(self.stats.pending.count)
        totals = {"errors": self._retired["errors"] + self.stats.errors,
                  "repairs": self._retired["repairs"] + self.stats.repairs,
                  "evictions": 0}  # fmt: skip
        counts = self.judge.counts()
        if counts is not None:
            m.device_states.set(counts.held)
            m.device_states_pending.set(counts.pending)
            totals["errors"] += counts.errors
            totals["repairs"] += counts.repairs
            totals["evictions"] += counts.evictions
        if self.windows is not None:
            totals["evictions"] += self.windows.evictions
        for name, counter in (("errors", m.redis_errors), ("repairs", m.state_repairs),
                              ("evictions", m.device_evictions)):  # fmt: skip
            counter.inc(totals[name] - self._seen[name])
            self._seen[name] = totals[name]


