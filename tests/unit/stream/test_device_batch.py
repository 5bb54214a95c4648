"""The batch path of the per-device rule against the row-by-row reference, bit for bit."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from seismo.models.calibration import Calibration
from seismo.stream.scoring.devices import batch as batch_module
from seismo.stream.scoring.devices.batch import judge_grouped
from seismo.stream.scoring.devices.rule import DeviceRule, DeviceState, judge_batch
from seismo.stream.scoring.stats import RunningStats

CAL = Calibration(count=300, mean=1.0, std=0.2, quantiles={}, log_mean=-0.5, log_std=0.3)
RULES = [
    DeviceRule(k=2.5, smooth=3, history=50, level_history=40, level_warmup=5),
    DeviceRule(k=2.0, smooth=1, history=20, level_history=30, level_warmup=3,
               level_mode="range", level_tolerance=0.02),
    DeviceRule(k=2.0, smooth=6, history=10, level_history=8, level_warmup=8,
               learn_anomalies=True, level_k=1.5),
    DeviceRule(k=3.0, smooth=2, level_history=0),
    DeviceRule(k=2.0, smooth=2, history=30, level_history=40, level_warmup=4, level_clip=0.5),
    # learnt clipped before the check is warm (LEVEL_CLIP_FROM below the warm-up)
    DeviceRule(k=2.0, smooth=2, history=30, level_history=40, level_warmup=12, level_clip=0.5,
               level_clip_from=3),
]


def _batches(seed: int, devices: int, channels: int, batches: int, size: int):
    rng = np.random.default_rng(seed)
    ids = [f"dev-{i}" for i in range(devices)]
    offset = 0
    for _ in range(batches):
        which = rng.integers(0, devices, size)
        errors = rng.normal(-0.5, 0.4, size)
        errors[rng.random(size) < 0.05] += 3.0  # some windows far above the rest
        readings = rng.normal(10.0, 1.0, (size, channels)) * (1 + (which % 3))[:, None]
        readings[rng.random(size) < 0.03] *= 4.0  # some readings far out of range
        positions = [(int(w % 4), offset + i) for i, w in enumerate(which)]
        offset += size
        yield [ids[w] for w in which], errors, readings, positions


def _same(a, b):
    for name in ("flags", "window_flags", "level_flags", "window_z", "level_z", "mean", "std",
                 "smoothed"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("rule", RULES,
                         ids=["std", "range", "learn", "no-level", "clip", "clip-warming"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_batch_path_gives_the_reference_verdicts_and_states(rule, seed):
    reference: dict[str, DeviceState | None] = {}
    fast: dict[str, DeviceState | None] = {}
    flagged = 0
    for n, (ids, errors, readings, positions) in enumerate(_batches(seed, 37, 5, 12, 300)):
        version = "v1" if n < 8 else "v2"  # a model change mid-stream
        want = judge_batch(reference, ids, errors, readings, positions, version, CAL, rule)
        got = judge_grouped(fast, ids, errors, readings, positions, version, CAL, rule)
        _same(got, want)
        assert fast == reference
        assert {d: s.to_bytes() for d, s in fast.items() if s} == {
            d: s.to_bytes() for d, s in reference.items() if s}
        flagged += int(want.flags.sum())
    assert 0 < flagged < 12 * 300  # the comparison saw both verdicts


def test_states_loaded_from_redis_continue_the_same_way():
    rule = RULES[1]
    reference: dict[str, DeviceState | None] = {}
    for ids, errors, readings, positions in _batches(5, 9, 3, 3, 200):
        judge_batch(reference, ids, errors, readings, positions, "v1", CAL, rule)
    fast = {d: DeviceState.from_bytes(s.to_bytes()) for d, s in reference.items() if s}
    reference = copy.deepcopy(fast)
    for ids, errors, readings, positions in _batches(6, 12, 3, 3, 200):  # 3 new devices
        want = judge_batch(reference, ids, errors, readings, positions, "v1", CAL, rule)
        got = judge_grouped(fast, ids, errors, readings, positions, "v1", CAL, rule)
        _same(got, want)
        assert fast == reference


def test_batches_the_fast_path_does_not_cover_go_to_the_reference():
    rule = DeviceRule(level_smooth=3, level_history=20, level_warmup=2)
    ids, errors, readings, positions = next(_batches(3, 4, 2, 1, 50))
    reference: dict[str, DeviceState | None] = {}
    fast: dict[str, DeviceState | None] = {}
    _same(judge_grouped(fast, ids, errors, readings, positions, "v", CAL, rule),
          judge_batch(reference, ids, errors, readings, positions, "v", CAL, rule))
    assert fast == reference
    bad = errors.copy()
    bad[7] = np.inf  # an infinite error: flagged by the reference, never learnt
    reference, fast = {}, {}
    _same(judge_grouped(fast, ids, bad, readings, positions, "v", CAL, RULES[0]),
          judge_batch(reference, ids, bad, readings, positions, "v", CAL, RULES[0]))
    assert fast == reference


def test_an_empty_batch_judges_nothing():
    v = judge_grouped({}, [], np.zeros(0), np.zeros((0, 3)), [], "v", CAL, RULES[0])
    assert v.flags.shape == (0,)


@pytest.mark.parametrize("seed", range(6))
def test_random_rules_and_batches_give_the_reference_bit_for_bit(seed):
    """Short histories reach their caps within a batch, so every branch of the statistics
    update (empty, growing, capped, mixed) and both learning modes are compared."""
    rng = np.random.default_rng(100 + seed)
    for _ in range(8):
        level_history = int(rng.choice([0, int(rng.integers(9, 40))]))
        rule = DeviceRule(
            k=float(rng.uniform(1.5, 3.0)), smooth=int(rng.integers(1, 7)),
            history=int(rng.integers(5, 60)), level_history=level_history,
            level_warmup=int(rng.integers(1, 9)) if level_history else 1,
            learn_anomalies=bool(rng.random() < 0.3),
            level_mode=str(rng.choice(["std", "range"])),
            level_clip=float(rng.choice([0.0, 0.5, 2.0, 10.0])),  # 0.5: most readings clipped
            level_clip_from=int(rng.integers(1, 9)),  # before the warm-up ends, or after
        )  # fmt: skip
        devices, size, channels = int(rng.integers(1, 60)), int(rng.integers(1, 400)), 3
        reference: dict[str, DeviceState | None] = {}
        fast: dict[str, DeviceState | None] = {}
        for n, (ids, errors, readings, positions) in enumerate(
            _batches(int(rng.integers(0, 2**31)), devices, channels, 3, size)
        ):
            # any device on any partition: the order a state learns its partitions in is
            # part of what Redis stores
            positions = [(int(rng.integers(0, 5)), o) for _, o in positions]
            want = judge_batch(reference, ids, errors, readings, positions, "v1", CAL, rule)
            got = judge_grouped(fast, ids, errors, readings, np.array(positions), "v1", CAL, rule)
            _same(got, want)
            assert list(fast) == list(reference), n
            assert [s.to_bytes() for s in fast.values() if s] == [
                s.to_bytes() for s in reference.values() if s], n


@pytest.mark.parametrize("history", [60, 2000])
@pytest.mark.parametrize("clip", [0.0, 0.5, 10.0])
@pytest.mark.parametrize("learn", [False, True])
def test_the_steady_paths_give_the_reference_bit_for_bit(monkeypatch, clip, learn, history):
    """Batches whose devices are all warm, then all at their caps, take the steady paths
    (``_merge_steady`` without its checks): they must still give the reference's bits.
    Then the caps are lowered (``history`` and ``level_history`` changed, states kept,
    as after a restart with new settings): counts above the cap take the general path."""
    taken: set[tuple[float, str | None]] = set()
    steady = batch_module._merge_steady

    def spy(count, mean, m2, x, window, regime):
        taken.add((window, regime))
        return steady(count, mean, m2, x, window, regime)

    monkeypatch.setattr(batch_module, "_merge_steady", spy)
    rule = DeviceRule(k=2.5, smooth=4, history=history, level_history=90, level_warmup=6,
                      learn_anomalies=learn, level_clip=clip)  # fmt: skip
    lowered = DeviceRule(k=2.5, smooth=4, history=40, level_history=50, level_warmup=6,
                         learn_anomalies=learn, level_clip=clip)  # fmt: skip
    reference: dict[str, DeviceState | None] = {}
    fast: dict[str, DeviceState | None] = {}
    for n, (ids, errors, readings, positions) in enumerate(_batches(11, 6, 4, 46, 24)):
        if n == 40:
            rule = lowered
        # one channel of one device constant, then another value: a warm channel whose
        # std is 0 learns its reading unclipped
        readings[[i for i, d in enumerate(ids) if d == "dev-0"], 0] = 7.0 if n < 20 else 9.0
        want = judge_batch(reference, ids, errors, readings, positions, "v1", CAL, rule)
        got = judge_grouped(fast, ids, errors, readings, positions, "v1", CAL, rule)
        _same(got, want)
        assert [s.to_bytes() for s in fast.values() if s] == [
            s.to_bytes() for s in reference.values() if s]
    # history 60: the window statistics start at their cap (the calibration's 300 > 60);
    # history 2000: they stay below it. The level statistics grow, warm up, cross their
    # cap (general path) and stay there; after the caps are lowered, the first batch
    # (counts above the new caps) takes the general path, the next ones the cap's.
    window = batch_module.AT_CAP if history == 60 else batch_module.BELOW_CAP
    assert {(float(history), window), (90.0, batch_module.BELOW_CAP),
            (90.0, batch_module.AT_CAP), (40.0, batch_module.AT_CAP),
            (50.0, batch_module.AT_CAP)} <= taken, taken
    assert (40.0, None) in taken, "the window check's counts above its new cap"


def test_a_device_warm_on_one_channel_and_empty_on_another_takes_the_general_path():
    """The level check warms up on channel 0's count; a stored state whose other channel
    has no readings (count 0) must not take the steady path (it divides by the count)."""
    rule = DeviceRule(k=2.5, smooth=2, history=50, level_history=40, level_warmup=3)
    state = DeviceState("v1", RunningStats(50.0, -0.5, 4.5), [-0.5],
                        [RunningStats(10.0, 10.0, 9.0), RunningStats()])  # fmt: skip
    ids, errors = ["a"] * 4, np.array([-0.4, -0.6, -0.5, 2.0])
    readings = np.array([[10.0, 3.0], [11.0, 3.5], [9.0, 2.5], [10.0, 40.0]])
    positions = [(0, i) for i in range(4)]
    reference, fast = {"a": state}, {"a": copy.deepcopy(state)}
    want = judge_batch(reference, ids, errors, readings, positions, "v1", CAL, rule)
    got = judge_grouped(fast, ids, errors, readings, positions, "v1", CAL, rule)
    _same(got, want)
    assert fast == reference


@pytest.mark.parametrize("judge", [judge_grouped, judge_batch], ids=["batch", "reference"])
def test_reading_statistics_start_again_when_the_models_channels_change_order(judge):
    """A new model version with the same channels in another order: its readings come in
    its order, so the level statistics learnt in the old order judged pressure against
    temperature's (625 level alerts on normal data in a stranger helper's run, then a
    corrupted state that saw nothing). Now they start again; with the same order, they
    go on."""
    from seismo.stream.scoring.devices.rule import channels_key

    rule = DeviceRule(k=3.0, smooth=1, level_history=100, level_warmup=20)
    rng = np.random.default_rng(0)
    old_order = np.column_stack([rng.normal(20.0, 1.0, 60), rng.normal(101.0, 0.1, 60)])
    new_order = old_order[:, ::-1]  # the same readings, channels swapped
    errors, ids = np.full(60, -0.5), ["pump"] * 60
    positions = [(0, i) for i in range(60)]
    states: dict[str, DeviceState | None] = {}
    judge(states, ids, errors, old_order, positions, "v1", CAL, rule,
          channels_key(["temp", "pressure"]))  # fmt: skip
    state = states["pump"]
    assert state is not None and state.level[0].count == 60
    later = [(0, 60 + i) for i in range(60)]
    same = copy.deepcopy(states)
    kept = judge(same, ids, errors, old_order, later, "v2", CAL, rule,
                 channels_key(["temp", "pressure"]))  # fmt: skip
    assert not kept.level_flags.any() and same["pump"].level[0].count == 100  # capped memory
    swapped = judge(states, ids, errors, new_order, later, "v2", CAL, rule,
                    channels_key(["pressure", "temp"]))  # fmt: skip
    assert not swapped.level_flags.any(), "levels judged against the other channel's"
    assert states["pump"].level[0].mean == pytest.approx(new_order[:, 0].mean())
    assert states["pump"].channels == channels_key(["pressure", "temp"])
    # without a key (the old behaviour), the swapped channels are judged far off
    legacy = copy.deepcopy(same)
    blind = judge(legacy, ids, errors, new_order, [(0, 120 + i) for i in range(60)], "v3", CAL,
                  rule)  # fmt: skip
    assert blind.level_flags[:10].all()  # until the clipped learning drags them over


def test_the_batch_path_gives_the_reference_across_a_change_of_channels():
    """Both paths adopt a model's channels before a device's first row: a change of order
    mid-stream, of width, and states of before keys (no ``channels``) give the same
    verdicts and states on both."""
    from seismo.stream.scoring.devices.rule import channels_key

    rule = RULES[0]
    plan = [("v1", ["a", "b"]), ("v1", ["a", "b"]), ("v2", ["b", "a"]), ("v3", ["b", "a", "c"])]
    ref: dict[str, DeviceState | None] = {}
    fast: dict[str, DeviceState | None] = {}
    batches = _batches(seed=7, devices=5, channels=3, batches=len(plan), size=80)
    for (version, names), (ids, errors, readings, positions) in zip(plan, batches, strict=True):
        part = readings[:, : len(names)]
        key = channels_key(names)
        expected = judge_batch(ref, ids, errors, part, positions, version, CAL, rule, key)
        got = judge_grouped(fast, ids, errors, part, positions, version, CAL, rule, key)
        _same(got, expected)
        assert fast == ref
        if version == "v1":  # as states written before keys were recorded
            for state in (*ref.values(), *fast.values()):
                assert state is not None
                state.channels = ""
