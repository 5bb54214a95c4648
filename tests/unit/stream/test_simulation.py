"""The simulated fleet: the normal process, the injected anomalies and their labels."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from seismo.stream.sim.anomalies import KINDS, Injector
from seismo.stream.sim.plant import CHANNELS, NOISE, SPREAD, Plant, channel_values
from seismo.stream.sim.simulation import NEW_REGIME, Simulation, SimulationConfig, event_tick


def test_equal_seeds_give_equal_streams_and_other_seeds_do_not() -> None:
    a, b, c = (Plant(5, seed=s).normal_data(50) for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_channels_follow_the_load_and_stay_plausible() -> None:
    x = Plant(20, seed=0).normal_data(3000)
    assert x.shape == (60_000, len(CHANNELS))
    # The load drives current, flow, vibration and pressure together.
    corr = np.corrcoef(x.T)
    current, flow = CHANNELS.index("current"), CHANNELS.index("flow")
    assert corr[current, flow] > 0.95
    assert corr[current, CHANNELS.index("vibration_rms")] > 0.9
    assert x.min(axis=0)[current] > 0 and x.max(axis=0)[flow] < 80
    # SPREAD is the normal spread of each channel (documented as measured).
    np.testing.assert_allclose(x.std(axis=0), SPREAD, rtol=0.1)


def test_daily_cycle_moves_temperature_at_constant_load() -> None:
    plant = Plant(1, day_ticks=100, seed=0)
    temps = []
    for _ in range(100):
        plant.step()
        temps.append(channel_values(np.array([0.5]), plant.ambient(), np.zeros((1, 5)))[0, 0])
    assert max(temps) - min(temps) == pytest.approx(12.0, abs=0.1)  # 20 °C ± 6


def test_regime_shift_scales_the_chosen_channels_only() -> None:
    before, after = Plant(10, seed=3), Plant(10, seed=3)
    after.shift_regime({"flow": 1.25})
    x, y = before.normal_data(200), after.normal_data(200)
    flow = CHANNELS.index("flow")
    others = [i for i in range(len(CHANNELS)) if i != flow]
    np.testing.assert_allclose(x[:, others], y[:, others])
    assert (y[:, flow] - x[:, flow]).mean() > 5


def run_injector(kinds: tuple[str, ...] = KINDS, ticks: int = 6000, seed: int = 0):
    plant = Plant(6, seed=seed)
    injector = Injector(6, rate=0.05, seed=seed, kinds=kinds)
    clean, dirty, labels = [], [], []
    for _ in range(ticks):
        x = plant.step()
        out, label, _ = injector.apply(plant, x)
        clean.append(x)
        dirty.append(out)
        labels.append(label)
    episodes = [*injector.finished, *injector.active.values()]
    return np.stack(clean), np.stack(dirty), np.stack(labels), episodes


def test_anomalies_are_exactly_where_the_labels_say() -> None:
    clean, dirty, labels, episodes = run_injector(ticks=12_000)
    changed = clean != dirty  # (ticks, devices, channels)
    assert changed.any()
    expected = np.zeros_like(changed)
    for e in episodes:
        for c in e.channels:
            expected[e.start : e.end, e.device, c] = True
    assert not (changed & ~expected).any(), "a reading changed outside its episode"
    np.testing.assert_array_equal(labels, expected.any(axis=2))
    for e in episodes:
        touched = changed[e.start : e.end, e.device][:, list(e.channels)]
        assert touched.any(), f"episode {e.anomaly_id} ({e.kind}) changed nothing"
        assert labels[e.start : e.end, e.device].all()
    assert {e.kind for e in episodes} == set(KINDS)


def test_episodes_of_one_device_never_overlap_and_keep_their_gap() -> None:
    _, _, _, episodes = run_injector(ticks=8000)
    for device in {e.device for e in episodes}:
        mine = sorted((e for e in episodes if e.device == device), key=lambda e: e.start)
        for first, second in zip(mine, mine[1:], strict=False):
            assert second.start >= first.end + 100


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_far_from_normal_for_the_channel(kind: str) -> None:
    clean, dirty, _, episodes = run_injector(kinds=(kind,), ticks=3000, seed=4)
    assert episodes
    for e in episodes:
        c = list(e.channels)
        span = slice(e.start, e.end)
        worst = np.abs(dirty[span, e.device][:, c] - clean[span, e.device][:, c])
        # at its worst point, every kind is beyond ten times the sensor noise
        assert worst.max() > 10 * NOISE[c].min(), (kind, e)


def test_stuck_sensor_repeats_one_value() -> None:
    _, dirty, _, episodes = run_injector(kinds=("stuck",), ticks=3000, seed=5)
    for e in episodes:
        values = dirty[e.start : e.end, e.device, e.channels[0]]
        assert np.unique(values).size == 1


def test_rate_sets_the_share_of_anomalous_readings() -> None:
    _, _, labels, _ = run_injector(ticks=20_000)
    assert 0.025 < labels.mean() < 0.08


def test_simulation_events_follow_the_contract_and_labels_name_their_ticks() -> None:
    sim = Simulation(SimulationConfig(devices=3, seed=2, anomaly_rate=0.1, first_anomaly_tick=5))
    labels, anomalous = [], {}
    for i in range(1500):
        tick = sim.tick(ts_ms=1_000 + i)
        for (key, value), flag in zip(tick.events, tick.anomalous, strict=True):
            event = orjson.loads(value)
            assert key.decode() == event["device_id"]
            assert len(event["values"]) == len(CHANNELS) and event["ts"] == 1_000 + i
            assert event_tick(event["id"]) == i
            anomalous[(event["device_id"], i)] = bool(flag)
        labels.extend(tick.labels)
    labels.extend(sim.open_labels())
    assert labels
    labelled = {(r["device_id"], t) for r in labels
                for t in range(r["first_tick"], r["last_tick"] + 1)}  # fmt: skip
    assert labelled == {k for k, v in anomalous.items() if v}
    for r in labels:
        assert r["start_ts"] == 1_000 + r["first_tick"]
        assert r["kind"] in KINDS and set(r["channels"]) <= set(CHANNELS)


def test_drift_scenario_changes_the_regime_at_its_tick() -> None:
    sim = Simulation(SimulationConfig(devices=2, drift_at_tick=10))
    for i in range(12):
        sim.tick(ts_ms=i)
    assert sim.regime_changed_at == 10
    assert sim.plant.gain[CHANNELS.index("flow")] == NEW_REGIME["flow"]


def test_warmup_data_is_normal_and_not_the_live_stream() -> None:
    sim = Simulation(SimulationConfig(devices=4, day_ticks=100))
    x = sim.warmup_data(days=2)
    assert x.shape == (800, len(CHANNELS))
    live = np.stack([orjson.loads(v)["values"] for _, v in sim.tick(0).events])
    assert not np.allclose(x[:4], live, atol=1e-3)
