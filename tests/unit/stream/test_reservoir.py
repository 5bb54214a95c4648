"""The training window: per-group ring buffers against a naive list implementation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.stream.retrain.reservoir import Reservoir, device_group, group_of

D = 2


def naive(events, capacity: int, max_groups: int) -> list[tuple[int, int, int]]:
    """(ts, partition, offset) of what should survive: the newest per group; beyond
    ``max_groups``, the smallest other group goes (the least recently updated of them)."""
    per_group: dict[str, list[tuple[int, int, int]]] = {}
    order: list[str] = []
    for group, rows in events:
        if not rows:
            continue  # adding nothing changes nothing
        if group not in order:
            per_group[group] = []  # new, or dropped earlier: starts empty
        per_group[group] = (per_group[group] + rows)[-capacity:]
        if group in order:
            order.remove(group)
        order.append(group)
        while len(order) > max_groups:
            others = [g for g in order if g != group]  # least recently updated first
            order.remove(min(others, key=lambda g: len(per_group[g])))
    kept = [row for g in order for row in per_group[g]]
    return sorted(kept)


batches = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(min_value=0, max_value=12)),
    max_size=30,
)


@given(batches, st.integers(min_value=1, max_value=9), st.integers(min_value=1, max_value=4))
@settings(max_examples=200, deadline=None)
def test_window_matches_the_naive_reservoir(plan, capacity, max_groups):
    reservoir = Reservoir(n_features=D, capacity=capacity, max_groups=max_groups)
    events, offset = [], 0
    for group, n in plan:
        rows = [(offset + i, offset % 3, offset + i) for i in range(n)]
        offset += n
        values = np.array([[r[0], -r[0]] for r in rows], dtype=np.float32).reshape(n, D)
        if n:
            reservoir.add(group, values, *zip(*rows, strict=True))
        events.append((group, rows))
    window = reservoir.window()
    expected = naive(events, capacity, max_groups)
    got = list(zip(window.timestamps.tolist(), window.partitions.tolist(),
                   window.offsets.tolist(), strict=True))
    assert got == expected
    assert window.values[:, 0].tolist() == [float(ts) for ts, _, _ in expected]
    assert len(reservoir) == len(expected) <= capacity * max_groups


def test_rejects_rows_of_another_width_and_mismatched_lengths():
    reservoir = Reservoir(n_features=3, capacity=5)
    with pytest.raises(ValueError, match="3 values"):
        reservoir.add("g", np.zeros((2, 2)), [0, 1], [0, 0], [0, 1])
    with pytest.raises(ValueError, match="differ in length"):
        reservoir.add("g", np.zeros((2, 3)), [0], [0], [0])


def test_empty_window_has_the_right_shape():
    window = Reservoir(n_features=4, capacity=2).window()
    assert window.values.shape == (0, 4) and len(window) == 0


@pytest.mark.parametrize(
    ("device", "group"),
    [("pump-7", "pump"), ("pump_12", "pump"), ("site1.fan.3", "site1.fan"), ("42", "42"),
     ("compressor", "compressor")],
)
def test_device_group_strips_the_trailing_number(device, group):
    assert device_group(device) == group
    assert group_of(device, "device") == device


def test_a_flood_of_one_off_groups_drops_its_own_groups_not_the_fleet():
    """The red-team's flood: 1 000 one-event prefixes against a window of 3 000 pump
    events, with max_groups 1 000 (least-recently-updated eviction kept none of them)."""
    reservoir = Reservoir(n_features=D, capacity=10_000, max_groups=1000)
    reservoir.add("pump", np.zeros((3000, D), np.float32), range(3000), [0] * 3000, range(3000))
    for i in range(1000):
        reservoir.add(f"d{i}x", np.ones((1, D), np.float32), [3000 + i], [0], [3000 + i])
    assert "pump" in reservoir.groups and len(reservoir) == 3000 + 999
    assert reservoir.dropped == 1
    reservoir.add("fan", np.ones((2, D), np.float32), [5000, 5001], [1, 1], [0, 1])
    assert "fan" in reservoir.groups, "a group that joins still gets in"
