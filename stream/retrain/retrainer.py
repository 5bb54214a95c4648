"""The retraining sidecar: follow the input topic, retrain on schedule or request, publish.

:class:`Retrainer` moves data only: events from Kafka into the
:class:`~seismo.stream.retrain.reservoir.Reservoir`, the champion's shared threshold from
Redis, a :func:`~seismo.stream.retrain.round.run_round` result into the
:class:`~seismo.stream.registry.model_registry.ModelRegistry`. It reads the input topic without a
consumer group (assigned partitions, starting ``backfill`` events before the
end of each), so a long training never triggers a rebalance, and it commits
nothing: the window is a sample, rebuilt after a restart.

A round starts when ``interval_s`` has passed since the last one, or at once
when a retrain request is waiting in Redis (a scorer's drift trigger, or
``seismo models request-retrain``), and only while this process holds the
retrainer lease, so at most one retrainer of a model name works at a time.

Events are decoded as the scorer decodes them (:func:`~seismo.stream.scoring.codec.decode_batch`
with the messages' headers and keys), so JSON and binary
(``application/x-seismo-f32``) events both enter the window. Events that
cannot be decoded, or whose values would overflow the champion's float32
math (:func:`~seismo.stream.scoring.scorable.representable`), are left out, counted
(:attr:`Retrainer.rejected`) and logged at most once a minute, with a reason.

An event's time orders the window and picks the held-back slice (the newest
events), so a time ahead of this process's clock is taken as the moment the
event was read: events stamped a year ahead stayed in every round's
held-back slice and decided the gate (a red-team finding; an allowance of 5
minutes still let a steady sender hold most of the slice, a reviewer's). Device
groups dropped to stay under ``max_groups`` are logged at most once a minute.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from seismo.models.artifact import Artifact
from seismo.models.columns import window_of
from seismo.models.errors import TrainingStopped
from seismo.stream.config.retrain_settings import RetrainSettings
from seismo.stream.errors import ConfigError, NoCurrentVersion, SeismoError
from seismo.stream.io.batch_sources import kafka_times
from seismo.stream.io.kafka import split_errors
from seismo.stream.io.log_throttle import Throttle
from seismo.stream.io.metrics import RetrainerMetrics
from seismo.stream.io.redis_stats import RedisStats, stats_key
from seismo.stream.registry.model_registry import ModelRegistry
from seismo.stream.retrain.requests import Lease, lease_key, restore_request, take_request
from seismo.stream.retrain.reservoir import Reservoir, group_of
from seismo.stream.retrain.round import RoundOptions, RoundResult, reference_of, run_round
from seismo.stream.scoring.codec import decode_batch, message_headers
from seismo.stream.scoring.scorable import NOT_FINITE, representable
from seismo.stream.scoring.stats import RunningStats
from seismo.stream.scoring.threshold import Threshold, ThresholdRule

log = logging.getLogger(__name__)

#: Most messages taken from the consumer per call.
CONSUME_BATCH = 5000
#: Events left out of the window are logged at most this often (s).
REJECT_LOG_S = 60.0
#: Longest wait between two tries while Redis does not answer (s).
MAX_REDIS_RETRY_S = 30.0


def start_offsets(low: int, high: int, backfill: int) -> int:
    """Where to start reading a partition: ``backfill`` events before its end.

    >>> start_offsets(0, 100, 30), start_offsets(50, 60, 30), start_offsets(0, 0, 30)
    (70, 50, 0)
    """
    return max(low, high - backfill)


class Retrainer:
    """Keep one model name current from the events of the input topic."""

    def __init__(
        self,
        *,
        settings: RetrainSettings,
        registry: ModelRegistry,
        client: redis.Redis,
        consumer: Consumer,
        metrics: RetrainerMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.client = client
        self.consumer = consumer
        self.metrics = metrics
        self.clock = clock
        self.owner = f"retrainer-{uuid.uuid4().hex[:8]}"
        self.lease = Lease(
            client, lease_key(settings.redis_prefix, settings.model_name), self.owner,
            settings.lease_ttl_s,
        )  # fmt: skip
        self.champion: Artifact | None = None
        champion = self.champion = self._load_champion()
        self.reservoir = Reservoir(
            champion.n_features, settings.window_size, settings.max_groups
        )
        self.rounds = 0
        self.rejected = 0
        self._throttle = Throttle(REJECT_LOG_S, clock=clock)
        self._last_round = clock()
        #: events that joined the window since the last round began
        self._fresh = 0
        #: the request taken for the round under way (put back if the round does not finish)
        self._request: dict[str, object] | None = None
        #: the metric label of the round ``due`` found
        self._kind = "interval"
        self._stop: threading.Event | None = None

    def assign(self) -> None:
        """Assign every partition of the input topic, ``backfill`` events before its end."""
        s = self.settings
        metadata = self.consumer.list_topics(s.input_topic, timeout=10)
        assignments = []
        for partition in sorted(metadata.topics[s.input_topic].partitions):
            tp = TopicPartition(s.input_topic, partition)
            low, high = self.consumer.get_watermark_offsets(tp, timeout=10)
            start = start_offsets(low, high, s.backfill_events)
            assignments.append(
                TopicPartition(s.input_topic, partition, start if start > 0 else OFFSET_BEGINNING)
            )
        self.consumer.assign(assignments)
        log.info("reading %s from offsets %s", s.input_topic,
                 {tp.partition: tp.offset for tp in assignments})

    def fill(self, max_s: float, idle_s: float | None = None) -> int:
        """Consume for at most ``max_s`` (or until nothing came for ``idle_s``); events added."""
        deadline = self.clock() + max_s
        idle_since = self.clock()
        added = 0
        while self.clock() < deadline:
            messages, errors = split_errors(self.consumer.consume(CONSUME_BATCH, timeout=0.2))
            if errors:
                log.warning("consume error: %s", errors[0].str())
            if messages:
                added += self._add(messages)
                idle_since = self.clock()
            elif idle_s is not None and self.clock() - idle_since >= idle_s:
                break
        self.metrics.window_events.set(len(self.reservoir))
        return added

    def _add(self, messages: list[Message]) -> int:
        now_ms = int(time.time() * 1000)
        stamps, _, _ = kafka_times(messages, now_ms)  # out-of-range stamps: the clock, as scored
        headers = [message_headers(m) for m in messages]  # unreadable: left out
        decoded = decode_batch(
            [m.value() for m in messages],
            kafka_timestamps=stamps,
            n_features=self.reservoir.n_features,
            max_bytes=self.settings.max_message_bytes,
            headers=headers,
            keys=[m.key() for m in messages] if any(headers) else None,
            channels=list(self.champion.feature_names) if self.champion is not None else None,
        )
        scaler = self.champion.detector.scaler if self.champion is not None else None
        if scaler is not None and len(decoded):
            ok = representable(decoded.values, scaler.mean, scaler.scale)
            decoded = decoded if ok.all() else decoded.reject(~ok, NOT_FINITE)
        if decoded.rejected:
            self._note_rejected(len(decoded.rejected), decoded.rejected[0].reason)
        if not len(decoded):
            return 0
        partitions = np.array([messages[i].partition() for i in decoded.rows], dtype=np.int64)
        offsets = np.array([messages[i].offset() for i in decoded.rows], dtype=np.int64)
        times = np.minimum(decoded.timestamps, now_ms)  # ahead of the clock: read now
        groups = np.array([group_of(d, self.settings.group_by) for d in decoded.device_ids])
        dropped = self.reservoir.dropped
        for group in dict.fromkeys(groups.tolist()):
            rows = groups == group
            self.reservoir.add(
                group, decoded.values[rows], times[rows], partitions[rows], offsets[rows]
            )
        self._note_dropped_groups(self.reservoir.dropped - dropped)
        self._fresh += len(decoded)
        return len(decoded)

    def _note_dropped_groups(self, count: int) -> None:
        """Log groups dropped from the window at most every :data:`REJECT_LOG_S`."""
        total = self._throttle.tally("dropped groups", count)
        if total is not None:
            log.warning("%d device group(s) dropped from the training window to stay under "
                        "--max-groups %d (the smallest go first): more device prefixes than "
                        "that, or events carry a new one each", total,
                        self.reservoir.max_groups)  # fmt: skip

    def _note_rejected(self, count: int, reason: str) -> None:
        """Count events left out of the window; log them at most every :data:`REJECT_LOG_S`."""
        self.rejected += count
        total = self._throttle.tally("rejected", count)
        if total is not None:
            log.warning("%d events left out of the training window since the last report"
                        " (cannot be decoded; e.g. %s)", total, reason)

    def due(self) -> str | None:
        """Why a round should start now (``"interval"``, a request's reason), or ``None``."""
        s = self.settings
        request = take_request(self.client, s.redis_prefix, s.model_name)
        self._request = request
        if request is not None and self._stale(request):
            self._request = None
            return None
        if request is not None:
            kind = request.get("kind")
            self._kind = kind if kind in ("drift", "request") else "request"
            return str(request.get("reason", "request"))
        if self.clock() - self._last_round < s.interval_s:
            return None
        if not self._fresh:  # the same window again: the same challenger, a needless swap
            self._last_round = self.clock()
            self.metrics.skipped.labels("no_new_events").inc()
            log.info("retrain (interval): skipped, no event joined the window since the last "
                     "round (%d events in it)", len(self.reservoir))  # fmt: skip
            return None
        self._kind = "interval"
        return "interval"

    def _stale(self, request: dict[str, Any]) -> bool:
        """Whether ``request`` reports the drift of a version that is no longer current:
        a scorer still on the old version until it swaps asks again after its cool-down,
        and a round on that request retrained the window the new version was just
        trained on (a slow test saw one rejected right after a promotion)."""
        drifted = request.get("version")
        if request.get("kind") != "drift" or not isinstance(drifted, str):
            return False
        try:
            current = self.registry.current(self.settings.model_name)
        except (redis.RedisError, SeismoError):
            return False  # unknown: the round's own champion check decides
        if current is None or current == drifted:
            return False
        self.metrics.skipped.labels("stale_drift").inc()
        log.info("retrain request skipped: drift of %s, but %s is current since", drifted,
                 current)  # fmt: skip
        return True

    def attempt(self, trigger: str, kind: str | None = None) -> RoundResult:
        """One round: train a challenger on the window, judge it, publish it if it wins.

        ``kind`` labels the round in the metrics (``interval``, ``drift``, ``request``;
        default: ``trigger`` itself, as ``once``); ``trigger`` says why in the log.
        """
        champion = self.champion = self._load_champion()  # none current: tried again soon
        self._last_round = self.clock()
        fresh, self._fresh = self._fresh, 0  # what joins the window from now on is new
        try:
            return self._round(champion, trigger, kind)
        except BaseException:
            self._fresh += fresh  # the round did not end: its events are still new to the next
            raise

    def _round(self, champion: Artifact, trigger: str, kind: str | None) -> RoundResult:
        """The round of :meth:`attempt`, once the champion is loaded."""
        s = self.settings
        self.rounds += 1
        self.metrics.attempted.labels(kind or trigger).inc()
        log.info("retrain (%s): window of %d events, champion %s", trigger,
                 len(self.reservoir), champion.version)
        options = RoundOptions(
            holdout_fraction=s.holdout_fraction, include_flagged=s.include_flagged, k=s.k,
            space=s.threshold_space, epochs=s.epochs, seed=self.rounds, device=s.device,
            should_stop=None if self._stop is None else self._stop.is_set,
        )  # fmt: skip
        self.metrics.health.round_started(trigger)
        try:
            result = run_round(
                champion, self.reservoir.window(), self._champion_threshold(champion),
                options=options, policy=s.policy, trigger=trigger,
            )  # fmt: skip
        except TrainingStopped:
            self.metrics.health.round_ended({"trigger": trigger, "abandoned": True})
            raise
        self.metrics.health.round_ended({"trigger": trigger, **result.summary()})
        self.metrics.seconds.observe(result.seconds)
        if result.decision.promote and result.challenger is not None:
            reference = reference_of(result.challenger)[0]  # the operator's: never pruned
            version = self.registry.publish(result.challenger, keep=s.keep, protect=[reference])
            self.champion = result.challenger
            self.metrics.promoted.inc()
            self.metrics.set_model(s.model_name, version)
            log.info("promoted %s version %s: %s", s.model_name, version, result.summary())
            if result.decision.metrics.get("regime_change"):
                log.warning("%s version %s was promoted as a new regime: the champion flagged "
                            "most of the held-back events, and the challenger learnt them as "
                            "normal. If they were anomalies, not a new normal, roll back: "
                            "seismo models rollback --store STORE --name %s", s.model_name,
                            version, s.model_name)  # fmt: skip
        else:
            self.metrics.rejected.labels(result.decision.reason).inc()
            log.info("challenger rejected (%s): %s", result.decision.reason, result.summary())
            if result.decision.reason == "calibration_out_of_bounds":
                reference = result.challenger.training["window"]["reference"]["version"] \
                    if result.challenger is not None else "?"
                log.warning("the challenger's calibrated threshold is %.3g times that of %s, "
                            "the version an operator published: the window looks crafted "
                            "(copies of one reading) or mixes two regimes, and %s stays as it "
                            "is. After a real change, publish a model trained on the new data "
                            "(seismo train, seismo models publish): it becomes the reference",
                            result.decision.metrics.get("calibration_ratio") or float("nan"),
                            reference, s.model_name)  # fmt: skip
        return result

    def run(self, stop: threading.Event) -> None:
        """Fill the window and run rounds when due, until ``stop`` is set.

        A stop during training abandons the round within one epoch.
        """
        self._stop = stop
        failures = 0
        try:
            while not stop.is_set():
                self.fill(max_s=1.0)
                try:
                    self._step()
                    failures = 0
                except redis.RedisError as exc:  # Redis away: keep the window, try again later
                    failures += 1
                    self._give_back_request()
                    delay = min(2.0 ** (failures - 1), MAX_REDIS_RETRY_S)
                    self.metrics.health.loop_alive(active=False)
                    log.warning("Redis call failed (%s: %s): no round until it answers; "
                                "retrying in %.0f s", type(exc).__name__, exc, delay)  # fmt: skip
                    stop.wait(delay)
                except NoCurrentVersion as exc:  # Redis came back empty: wait for a publish
                    failures += 1
                    delay = min(2.0 ** (failures - 1), MAX_REDIS_RETRY_S)
                    self.metrics.health.loop_alive(active=False)
                    log.warning("%s: no round until there is one; retrying in %.0f s",
                                exc, delay)  # fmt: skip
                    stop.wait(delay)
        finally:  # also when a round refuses the current version: a standby takes over
            try:
                self.lease.release()
            except redis.RedisError as exc:
                log.warning("could not release the retrainer lease (it expires by itself): %s",
                            exc)  # fmt: skip

    def _step(self) -> None:
        """Renew the lease and run a round when one is due (Redis errors propagate)."""
        active = self.lease.acquire()
        self.metrics.health.loop_alive(active=active)
        if not active:
            return  # another retrainer is active; keep the window warm
        trigger = self.due()
        if trigger is None:
            return
        try:
            self.attempt(trigger, self._kind)
        except TrainingStopped as exc:
            self._give_back_request()
            log.info("stopping: round abandoned (%s)", exc)
        except SeismoError:  # e.g. a current version it cannot retrain: the request stays
            self._give_back_request()
            raise
        self._request = None

    def _give_back_request(self) -> None:
        """A request taken for a round that did not finish goes back to Redis (unless a
        newer one is there), so a restarted retrainer runs it."""
        request, self._request = self._request, None
        if request is None:
            return
        s = self.settings
        try:
            if restore_request(self.client, s.redis_prefix, s.model_name, request):
                log.info("the retrain request (%s) is kept for the next round",
                         request.get("reason", "request"))  # fmt: skip
        except redis.RedisError as exc:
            log.warning("the retrain request (%s) of the unfinished round is lost: %s",
                        request.get("reason", "request"), exc)  # fmt: skip

    def _load_champion(self) -> Artifact:
        s = self.settings
        version = self.registry.current(s.model_name)
        if version is None:
            raise NoCurrentVersion(
                f"{s.model_name} has no current version in {self.registry.location}; publish "
                "one first (seismo models publish; again if Redis lost its keys)"
            )
        if self.champion is not None and self.champion.version == version:
            return self.champion
        champion = self.registry.verify(s.model_name, version)
        window = window_of(champion.feature_names)
        if window is not None:
            raise ConfigError(
                f"{s.model_name} version {version} scores windows of {window} readings; seismo "
                "retrain learns from single events and cannot retrain it: train window models "
                "with seismo train --window and publish them (seismo models publish)"
            )
        self.metrics.set_model(s.model_name, version)
        return champion

    def _champion_threshold(self, champion: Artifact) -> Threshold:
        """The threshold the scorers apply to the champion now (Redis, or its calibration)."""
        s = self.settings
        key = stats_key(s.redis_prefix, champion.name, champion.version, s.threshold_space)
        rule = ThresholdRule(k=s.k, min_samples=s.min_samples, space=s.threshold_space,
                             max_factor=s.max_threshold_factor)  # fmt: skip
        try:
            stats = RedisStats(self.client, key, None).read()
        except redis.RedisError as exc:
            log.warning("cannot read the champion's statistics, using its calibration: %s", exc)
            return rule.current(RunningStats(), champion.calibration)
        return rule.current(stats, champion.calibration)
