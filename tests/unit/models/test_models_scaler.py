"""StandardScaler: math against numpy, immutability, serialisation, properties."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from seismo.models.errors import DataError, SeismoError
from seismo.models.scaler import StandardScaler

matrices = hnp.arrays(
    dtype=np.float64,
    shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
    elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


def test_fit_matches_numpy_population_std() -> None:
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(200, 5))
    scaler = StandardScaler.fit(x)
    np.testing.assert_allclose(scaler.mean, x.mean(axis=0))
    np.testing.assert_allclose(scaler.scale, x.std(axis=0, ddof=0))
    assert scaler.n_features == 5


def test_constant_column_gets_unit_scale_and_maps_to_zero() -> None:
    x = np.column_stack([np.arange(5.0), np.full(5, 0.1), np.zeros(5)])
    scaler = StandardScaler.fit(x)
    assert scaler.scale[1:].tolist() == [1.0, 1.0]
    z = scaler.transform(x)
    np.testing.assert_allclose(z[:, 1:], 0.0, atol=1e-7)


@given(matrices, st.floats(0.0, 0.5))
@settings(max_examples=200, deadline=None)
def test_floor_is_a_share_of_the_mean_and_never_lowers_the_std(
    x: np.ndarray, floor: float
) -> None:
    plain = StandardScaler.fit(x)
    floored = StandardScaler.fit(x, floor=floor)
    np.testing.assert_array_equal(floored.mean, plain.mean)
    std = np.where(np.ptp(x, axis=0) > 0, x.std(axis=0), 0.0)
    expected = np.maximum(std, floor * np.abs(x.mean(axis=0)))
    # a column that does not move (or only by rounding noise) falls back to 1.0
    expected[expected == 0] = 1.0
    np.testing.assert_allclose(floored.scale, expected)
    assert np.all(floored.scale >= np.where(plain.scale == 1.0, 0.0, plain.scale))


@pytest.mark.parametrize("floor", [-0.1, float("nan"), float("inf")])
def test_floor_must_be_a_finite_share(floor: float) -> None:
    with pytest.raises(DataError, match="floor"):
        StandardScaler.fit(np.ones((3, 2)), floor=floor)


def test_training_with_a_scale_floor_stores_the_floored_scale() -> None:
    from seismo.models.config import DenseConfig, TrainConfig
    from seismo.models.training import train_autoencoder

    rng = np.random.default_rng(3)
    x = np.column_stack([rng.normal(0, 1, 300), 50 + rng.normal(0, 0.01, 300)])
    train = TrainConfig(epochs=1, scale_floor=0.01)
    scaler = train_autoencoder(x, config=DenseConfig(n_features=2, hidden=(2,)), train=train,
                               device="cpu").detector.scaler
    assert scaler.scale[1] == pytest.approx(0.5, rel=0.01)  # 1 % of 50, not the 0.01 std
    assert scaler.scale[0] == pytest.approx(1.0, rel=0.15)
    with pytest.raises(SeismoError, match="scale_floor"):
        TrainConfig(scale_floor=1.5)


def test_transform_returns_new_float32_and_leaves_input_alone() -> None:
    x = np.random.default_rng(1).normal(size=(10, 3))
    before = x.copy()
    scaler = StandardScaler.fit(x)
    z = scaler.transform(x)
    assert z.dtype == np.float32
    assert z.shape == x.shape
    assert not np.shares_memory(z, x)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(z, (x - x.mean(0)) / x.std(0), rtol=1e-5, atol=1e-6)


def test_vectors_are_read_only_copies() -> None:
    mean = np.array([1.0, 2.0])
    scaler = StandardScaler(mean=mean, scale=np.array([1.0, 1.0]))
    mean[0] = 99.0
    assert scaler.mean[0] == 1.0
    with pytest.raises(ValueError):
        scaler.mean[0] = 5.0


@pytest.mark.parametrize(
    "x",
    [np.zeros(4), np.zeros((2, 2, 2)), np.zeros((0, 3)), np.array([[1.0, np.nan]])],
    ids=["1-D", "3-D", "empty", "nan"],
)
def test_fit_rejects_bad_input(x: np.ndarray) -> None:
    with pytest.raises(DataError):
        StandardScaler.fit(x)


def test_transform_rejects_wrong_width() -> None:
    scaler = StandardScaler.fit(np.ones((3, 2)))
    with pytest.raises(SeismoError, match="expected 2 features"):
        scaler.transform(np.ones((3, 4)))


@pytest.mark.parametrize(
    ("mean", "scale"),
    [([0.0], [0.0]), ([0.0, 1.0], [1.0]), ([np.nan], [1.0]), ([], [])],
)
def test_constructor_validates(mean: list[float], scale: list[float]) -> None:
    with pytest.raises(DataError):
        StandardScaler(mean=np.array(mean), scale=np.array(scale))


def test_dict_round_trip_through_json() -> None:
    scaler = StandardScaler.fit(np.random.default_rng(2).normal(size=(20, 4)))
    restored = StandardScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(restored.mean, scaler.mean)
    np.testing.assert_array_equal(restored.scale, scaler.scale)


def test_from_dict_missing_key() -> None:
    with pytest.raises(DataError, match="scale"):
        StandardScaler.from_dict({"mean": [1.0]})


@settings(max_examples=60, deadline=None)
@given(matrices)
def test_inverse_transform_round_trips(x: np.ndarray) -> None:
    scaler = StandardScaler.fit(x)
    back = scaler.inverse_transform(scaler.transform(x))
    np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(matrices)
def test_standardised_columns_have_zero_mean_unit_std(x: np.ndarray) -> None:
    spread = np.ptp(x, axis=0)
    assume(np.all((spread == 0) | (spread > 1e-2)))
    z = StandardScaler.fit(x).transform(x).astype(np.float64)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-4)
    varying = spread > 0
    np.testing.assert_allclose(z[:, varying].std(axis=0), 1.0, rtol=1e-4)


@settings(max_examples=30, deadline=None)
@given(matrices)
def test_dict_round_trip_is_exact(x: np.ndarray) -> None:
    scaler = StandardScaler.fit(x)
    restored = StandardScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(restored.transform(x), scaler.transform(x))
