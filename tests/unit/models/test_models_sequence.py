"""Sequence autoencoders (conv1d, lstm): configs, shapes, row layout, training and artifacts.

Rows are flattened windows, time-major: ``row[t * channels + c]`` is channel
``c`` at step ``t``. The trained tests use windows of three phase-locked sine
channels; anomalies are a spike at one ``(t, c)`` or a channel whose phase no
longer follows the others (a broken correlation).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from seismo.models.artifact import build_artifact, load_artifact, save_artifact
from seismo.models.config import TrainConfig
from seismo.models.errors import SeismoError
from seismo.models.nets.architectures import ARCHITECTURES, ModelConfig
from seismo.models.nets.conv1d import Conv1dAutoencoder, Conv1dConfig
from seismo.models.nets.lstm import LSTMAutoencoder, LSTMConfig
from seismo.models.nets.sequence import to_rows, to_windows
from seismo.models.training import TrainResult, train_autoencoder

WINDOW, CHANNELS = 16, 3
PERIOD = 8  # time steps per sine cycle
SPIKE = 4.0  # about 6 standard deviations of a sine channel
ARCHS = ("conv1d", "lstm")


def make_config(arch: str, window: int, channels: int, **kwargs: Any) -> ModelConfig:
    if arch == "conv1d":
        return Conv1dConfig(window=window, channels=channels, **kwargs)
    return LSTMConfig(window=window, channels=channels, **kwargs)


def sine_windows(n: int, *, seed: int, broken: bool = False) -> np.ndarray:
    """Rows ``(n, WINDOW * CHANNELS)``; channel c is ``sin(2 pi t / PERIOD + phase + 2 pi c / 3)``.

    The phase is random per window; with ``broken``, channel 1 is shifted by a
    further random quarter to three quarters of a cycle.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(WINDOW)[None, :, None]
    offsets = np.arange(CHANNELS)[None, None, :] * 2 * np.pi / 3
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    if broken:
        shift = rng.uniform(np.pi / 2, 3 * np.pi / 2, size=(n, 1, 1))
        offsets = offsets + np.where(np.arange(CHANNELS) == 1, shift, 0.0)
    x = np.sin(2 * np.pi * t / PERIOD + phase + offsets)
    x += 0.05 * rng.normal(size=x.shape)
    return x.reshape(n, WINDOW * CHANNELS)


# --- configs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_config_round_trips_through_json_with_derived_n_features(arch: str) -> None:
    cfg = make_config(arch, 12, 4, latent=5, score="mae")
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["n_features"] == cfg.n_features == 48
    restored = type(cfg).from_dict(data)
    assert restored == cfg
    assert type(cfg).from_dict({k: v for k, v in data.items() if k != "n_features"}) == cfg


def test_conv1d_config_defaults_and_list_filters() -> None:
    cfg = Conv1dConfig(window=16, channels=2, filters=[8, 4])  # type: ignore[arg-type]
    assert cfg.filters == (8, 4)
    assert (cfg.kernel_size, cfg.latent, cfg.activation, cfg.score) == (5, 8, "relu", "mse")
    assert isinstance(Conv1dConfig.from_dict(cfg.to_dict()).filters, tuple)
    assert hash(cfg) == hash(Conv1dConfig(window=16, channels=2, filters=(8, 4)))


def test_lstm_config_defaults() -> None:
    cfg = LSTMConfig(window=8, channels=2)
    assert (cfg.hidden, cfg.latent, cfg.layers, cfg.score) == (32, 8, 1, "mse")


@pytest.mark.parametrize("arch", ARCHS)
def test_from_dict_rejects_inconsistent_unknown_and_missing_fields(arch: str) -> None:
    cls = type(make_config(arch, 8, 2))
    name = cls.__name__
    with pytest.raises(SeismoError, match=r"n_features 17 != window x channels = 16"):
        cls.from_dict({"window": 8, "channels": 2, "n_features": 17})
    with pytest.raises(SeismoError, match=f"unknown {name} field"):
        cls.from_dict({"window": 8, "channels": 2, "dropout": 0.1})
    with pytest.raises(SeismoError, match=f"invalid {name}"):
        cls.from_dict({"window": 8})
    with pytest.raises(SeismoError, match="mapping"):
        cls.from_dict([8, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 0, "channels": 2}, "window must be a positive integer"),
        ({"window": 8.0, "channels": 2}, "window must be a positive integer"),
        ({"window": 8, "channels": True}, "channels must be a positive integer"),
        ({"window": 8, "channels": 2, "score": "elbo"}, "score 'elbo' is not one of"),
        ({"window": 8, "channels": 2, "filters": ()}, "filters must be a non-empty tuple"),
        ({"window": 8, "channels": 2, "filters": (8, 0)}, "filters width must be"),
        ({"window": 8, "channels": 2, "kernel_size": 4}, "kernel_size must be an odd integer"),
        ({"window": 8, "channels": 2, "kernel_size": 1}, "kernel_size must be an odd integer"),
        ({"window": 8, "channels": 2, "latent": 0}, "latent must be a positive integer"),
        ({"window": 8, "channels": 2, "activation": "swish"}, "activation 'swish'"),
        ({"window": 4, "channels": 2, "filters": (8, 8, 8)}, r"need window >= 5"),
    ],
)
def test_conv1d_config_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(SeismoError, match=match):
        Conv1dConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": -1, "channels": 2}, "window must be a positive integer"),
        ({"window": 8, "channels": 0}, "channels must be a positive integer"),
        ({"window": 8, "channels": 2, "hidden": 0}, "hidden must be a positive integer"),
        ({"window": 8, "channels": 2, "latent": 2.5}, "latent must be a positive integer"),
        ({"window": 8, "channels": 2, "layers": 0}, "layers must be a positive integer"),
        ({"window": 8, "channels": 2, "score": "rmse"}, "score 'rmse' is not one of"),
    ],
)
def test_lstm_config_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(SeismoError, match=match):
        LSTMConfig(**kwargs)


def test_conv1d_min_window_is_accepted() -> None:
    for filters in [(4,), (4, 4), (4, 4, 4)]:
        cfg = Conv1dConfig(window=2 ** (len(filters) - 1) + 1, channels=1, filters=filters)
        assert cfg.window == cfg.min_window
        out = Conv1dAutoencoder(cfg)(torch.randn(2, cfg.n_features))
        assert out.shape == (2, cfg.n_features)


def test_registry_builds_sequence_modules() -> None:
    assert ARCHITECTURES["conv1d"].config_cls is Conv1dConfig
    assert ARCHITECTURES["lstm"].config_cls is LSTMConfig
    conv = ARCHITECTURES["conv1d"].build(Conv1dConfig(window=8, channels=2))
    lstm = ARCHITECTURES["lstm"].build(LSTMConfig(window=8, channels=2))
    assert isinstance(conv, Conv1dAutoencoder) and isinstance(lstm, LSTMAutoencoder)


# --- modules -------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("window", [3, 7, 8, 15, 16, 33])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_for_even_and_odd_windows(arch: str, window: int, channels: int) -> None:
    cfg = make_config(arch, window, channels, latent=5)
    model = ARCHITECTURES[arch].build(cfg).eval()
    x = torch.randn(4, window * channels)
    assert model(x).shape == (4, window * channels)
    assert model.encode(x).shape == (4, 5)


def test_rows_are_time_major_windows() -> None:
    rows = torch.randn(5, WINDOW * CHANNELS)
    windows = to_windows(rows, WINDOW, CHANNELS)
    for t, c in [(0, 0), (0, 2), (7, 1), (15, 2)]:
        assert torch.equal(windows[:, t, c], rows[:, t * CHANNELS + c])
    assert torch.equal(to_rows(windows), rows)


def _first_and_last_layers(model: nn.Module) -> tuple[nn.Module, nn.Module, bool]:
    """The layer reading windows, the one writing them, and whether they are channels-first."""
    if isinstance(model, Conv1dAutoencoder):
        return model.encoder[0], model.decoder[-1], True
    assert isinstance(model, LSTMAutoencoder)
    return model.encoder, model.output, False


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("window", [7, 16])
def test_module_reads_and_writes_time_major_rows(arch: str, window: int) -> None:
    """Whatever the first layer sees at (t, c) is row[t * channels + c]; same for the output.

    (A trained model cannot prove this: through a bottleneck it would learn any fixed
    permutation of its outputs just as well.)
    """
    model = ARCHITECTURES[arch].build(make_config(arch, window, CHANNELS)).eval()
    first, last, channels_first = _first_and_last_layers(model)
    seen: dict[str, torch.Tensor] = {}
    first.register_forward_hook(lambda _m, args, _out: seen.update(read=args[0]))
    last.register_forward_hook(lambda _m, _args, out: seen.update(wrote=out))
    rows = torch.randn(3, window * CHANNELS)
    with torch.inference_mode():
        out = model(rows)
    read, wrote = seen["read"], seen["wrote"]
    if channels_first:  # Conv1d layers hold (n, channels, window)
        read, wrote = read.transpose(1, 2), wrote.transpose(1, 2)
    assert read.shape == wrote.shape == (3, window, CHANNELS)
    for t, c in [(0, 0), (0, CHANNELS - 1), (3, 1), (window - 1, 2)]:
        assert torch.equal(read[:, t, c], rows[:, t * CHANNELS + c])
        assert torch.equal(wrote[:, t, c], out[:, t * CHANNELS + c])


@pytest.mark.parametrize("arch", ARCHS)
def test_module_rejects_rows_of_the_wrong_width(arch: str) -> None:
    model = ARCHITECTURES[arch].build(make_config(arch, 8, 2))
    with pytest.raises(SeismoError, match=r"expected rows of shape \(n, 16\)"):
        model(torch.randn(3, 15))


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_is_deterministic_in_eval_and_leaves_input_alone(arch: str) -> None:
    model = ARCHITECTURES[arch].build(make_config(arch, 9, 2)).eval()
    x = torch.randn(6, 18)
    before = x.clone()
    with torch.inference_mode():
        assert torch.equal(model(x), model(x))
    assert torch.equal(x, before)


def test_conv1d_layer_layout() -> None:
    cfg = Conv1dConfig(window=13, channels=3, filters=(8, 4), kernel_size=3, latent=2)
    model = Conv1dAutoencoder(cfg)
    convs = [m for m in model.encoder if isinstance(m, nn.Conv1d)]
    assert [(m.in_channels, m.out_channels, m.stride) for m in convs] == [
        (3, 8, (2,)),
        (8, 4, (2,)),
    ]
    deconvs = [m for m in model.decoder if isinstance(m, nn.ConvTranspose1d)]
    assert [(m.in_channels, m.out_channels) for m in deconvs] == [(4, 8), (8, 3)]
    assert isinstance(model.decoder[-1], nn.ConvTranspose1d)  # linear reconstruction
    assert model.to_latent[-1].in_features == 4 * 4  # 13 -> 7 -> 4 steps, 4 filters


def test_state_dict_keys_are_stable() -> None:
    conv = Conv1dAutoencoder(Conv1dConfig(window=8, channels=2, filters=(4,)))
    assert list(conv.state_dict()) == [
        "encoder.0.weight",
        "encoder.0.bias",
        "to_latent.1.weight",
        "to_latent.1.bias",
        "from_latent.0.weight",
        "from_latent.0.bias",
        "decoder.0.weight",
        "decoder.0.bias",
    ]
    lstm = LSTMAutoencoder(LSTMConfig(window=8, channels=2))
    assert [k.split(".")[0] for k in lstm.state_dict()] == ["encoder"] * 4 + ["to_latent"] * 2 + [
        "decoder"
    ] * 4 + ["output"] * 2


# --- trained on phase-locked sines ---------------------------------------------------------------


@pytest.fixture(scope="module", params=ARCHS)
def fitted(request: pytest.FixtureRequest) -> tuple[TrainResult, list[float]]:
    """One model per architecture and the validation loss after every epoch."""
    arch: str = request.param
    cfg = (
        Conv1dConfig(window=WINDOW, channels=CHANNELS, filters=(16, 8), latent=4)
        if arch == "conv1d"
        else LSTMConfig(window=WINDOW, channels=CHANNELS, hidden=16, latent=4)
    )
    losses: list[float] = []
    result = train_autoencoder(
        sine_windows(400, seed=0),
        config=cfg,
        train=TrainConfig(epochs=15, batch_size=32, lr=1e-2, patience=5, seed=0),
        device="cpu",
        progress=lambda _epoch, _train, val: losses.append(val),
    )
    return result, losses


def test_training_lowers_the_loss(fitted: tuple[TrainResult, list[float]]) -> None:
    result, losses = fitted
    assert result.summary["val_loss"] == min(losses)
    assert result.summary["val_loss"] < 0.2 * losses[0]


@pytest.mark.parametrize(("t", "c"), [(0, 0), (5, 1), (8, 0), (15, 2)])
def test_detector_localises_a_spike_at_its_flattened_index(
    fitted: tuple[TrainResult, list[float]], t: int, c: int
) -> None:
    detector = fitted[0].detector
    x = sine_windows(50, seed=5)
    x[:, t * CHANNELS + c] += SPIKE
    errors = detector.feature_errors(x)
    assert np.mean(errors.argmax(axis=1) == t * CHANNELS + c) >= 0.9


def test_anomalous_windows_score_higher(fitted: tuple[TrainResult, list[float]]) -> None:
    detector = fitted[0].detector
    normal = detector.score_batch(sine_windows(100, seed=6))
    spiked_rows = sine_windows(100, seed=7)
    spiked_rows[np.arange(100), np.arange(100) % (WINDOW * CHANNELS)] += SPIKE
    spiked = detector.score_batch(spiked_rows)
    broken = detector.score_batch(sine_windows(100, seed=8, broken=True))
    assert spiked.mean() > 3 * normal.mean()
    assert broken.mean() > 3 * normal.mean()


def test_scoring_does_not_mutate_input(fitted: tuple[TrainResult, list[float]]) -> None:
    x = sine_windows(20, seed=9)
    before = x.copy()
    fitted[0].detector.score_with_features(x)
    np.testing.assert_array_equal(x, before)


def test_artifact_round_trip_rebuilds_identical_scores(
    fitted: tuple[TrainResult, list[float]], tmp_path: Path
) -> None:
    result = fitted[0]
    artifact = build_artifact(result, name="windows")
    saved = save_artifact(artifact, tmp_path / "model")
    document = json.loads((saved / "config.json").read_text())
    config = result.detector.config
    assert document["arch"] == config.arch
    assert document["model"] == config.to_dict()
    assert document["model"]["n_features"] == WINDOW * CHANNELS
    loaded = load_artifact(saved, device="cpu")
    assert loaded.detector.config == config
    assert artifact.version.startswith(f"{config.arch}-")
    x = np.vstack([sine_windows(20, seed=10), sine_windows(20, seed=11, broken=True)])
    np.testing.assert_allclose(
        loaded.detector.score_batch(x), artifact.detector.score_batch(x), rtol=0, atol=1e-6
    )
