"""The autoencoder family: sparse, denoising and VAE units, and one contract for every arch.

The contract test at the bottom is parametrised over
`seismo.models.nets.architectures.ARCHITECTURES`
itself, so a newly registered architecture is tested (or, until it has an entry
in `EXAMPLES`, fails with a message saying so) without touching this file's logic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seismo.models.artifact import build_artifact, load_artifact, save_artifact
from seismo.models.config import DenseConfig, TrainConfig
from seismo.models.detector import AutoencoderDetector
from seismo.models.errors import SeismoError
from seismo.models.nets.architectures import ARCHITECTURES, ModelConfig, get_architecture
from seismo.models.nets.denoising import DenoisingAutoencoder, DenoisingConfig, corrupt
from seismo.models.nets.dense import DenseAutoencoder
from seismo.models.nets.sparse import SparseAutoencoder, SparseConfig, kl_sparsity, l1_activity
from seismo.models.nets.vae import LOGVAR_RANGE, VAEConfig, VariationalAutoencoder, gaussian_kl
from seismo.models.training import TrainResult, train_autoencoder

D = 8
"""Row width of every model here; sequence examples use window 4 x channels 2."""

# the architectures alone: scores are reconstruction errors (the neighbour term has its tests)
TRAIN = TrainConfig(epochs=20, batch_size=32, lr=1e-2, patience=20, seed=0, neighbours=0)


def normal_rows(n: int, *, seed: int) -> np.ndarray:
    """Rows near a 2-dimensional linear subspace of R^8."""
    basis = np.random.default_rng(99).normal(size=(2, D))
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)) @ basis + 0.05 * rng.normal(size=(n, D))


def outlier_rows(n: int, *, seed: int) -> np.ndarray:
    """Rows of a similar spread with no low-rank structure."""
    return 2.0 * np.random.default_rng(seed).normal(size=(n, D))


TRAIN_X = normal_rows(300, seed=0)

EXAMPLES: dict[str, dict[str, Any]] = {
    "dense": {"n_features": D, "hidden": (16, 3)},
    "sparse": {"n_features": D, "hidden": (16, 3)},
    "denoising": {"n_features": D, "hidden": (16, 3)},
    "vae": {"n_features": D, "hidden": (16, 3)},
    "conv1d": {"window": 4, "channels": 2, "filters": (8, 4), "kernel_size": 3, "latent": 3},
    "lstm": {"window": 4, "channels": 2, "hidden": 8, "latent": 3},
}
"""Small config kwargs per registered architecture, each with ``n_features == D``."""

VARIANTS: dict[str, ModelConfig] = {
    "sparse-l1": SparseConfig(n_features=D, hidden=(16, 3), penalty="l1"),
    "sparse-kl": SparseConfig(n_features=D, hidden=(16, 3), penalty="kl"),
    "denoising-gaussian": DenoisingConfig(n_features=D, hidden=(16, 3), noise="gaussian"),
    "denoising-mask": DenoisingConfig(n_features=D, hidden=(16, 3), noise="mask"),
    "vae-mse": VAEConfig(n_features=D, hidden=(16, 3), score="mse"),
    "vae-elbo": VAEConfig(n_features=D, hidden=(16, 3), score="elbo", kl_weight=0.5),
}
"""The family's configurations that the shared behaviour tests train."""


def example_config(arch: str) -> ModelConfig:
    if arch not in EXAMPLES:
        pytest.fail(
            f"architecture {arch!r} is registered but has no entry in EXAMPLES of "
            f"{Path(__file__).name}; add small config kwargs for it (n_features == {D})"
        )
    config = get_architecture(arch).config_cls(**EXAMPLES[arch])  # type: ignore[call-arg]
    assert config.n_features == D, f"EXAMPLES[{arch!r}] must give n_features == {D}"
    return config


@dataclass
class Fitted:
    result: TrainResult
    val_history: list[float] = field(default_factory=list)

    @property
    def detector(self) -> AutoencoderDetector:
        return self.result.detector


Fit = Callable[[ModelConfig], Fitted]


@pytest.fixture(scope="module")
def fit() -> Fit:
    """``fit(config)`` trains once per config on `TRAIN_X` and caches the result."""
    cache: dict[ModelConfig, Fitted] = {}

    def _fit(config: ModelConfig) -> Fitted:
        if config not in cache:
            history: list[float] = []
            result = train_autoencoder(
                TRAIN_X,
                config=config,
                train=TRAIN,
                device="cpu",
                progress=lambda _epoch, _train, val: history.append(val),
            )
            cache[config] = Fitted(result, history)
        return cache[config]

    return _fit


def assert_round_trip(fitted: Fitted, tmp_path: Path) -> None:
    """Save and load the artifact; the rebuilt detector scores exactly as the original."""
    saved = save_artifact(build_artifact(fitted.result, name="family"), tmp_path / "model")
    loaded = load_artifact(saved, device="cpu").detector
    original = fitted.detector
    assert type(loaded.module) is type(original.module)
    assert loaded.config == original.config
    x = np.vstack([normal_rows(20, seed=5), outlier_rows(20, seed=6)])
    np.testing.assert_array_equal(loaded.score_batch(x), original.score_batch(x))
    np.testing.assert_array_equal(loaded.feature_errors(x), original.feature_errors(x))


# --- configs ---------------------------------------------------------------------------


@pytest.mark.parametrize("config", VARIANTS.values(), ids=list(VARIANTS))
def test_config_round_trips_through_json(config: ModelConfig) -> None:
    data = json.loads(json.dumps(config.to_dict()))
    assert isinstance(data["hidden"], list)
    restored = type(config).from_dict(data)
    assert restored == config
    assert isinstance(restored.hidden, tuple)  # type: ignore[attr-defined]


def test_sparse_weight_defaults_depend_on_the_penalty() -> None:
    assert SparseConfig(n_features=4, hidden=(2,)).weight == 1e-3
    assert SparseConfig(n_features=4, hidden=(2,), penalty="kl").weight == 0.1
    assert SparseConfig(n_features=4, hidden=(2,), penalty="kl", weight=0.5).weight == 0.5
    restored = SparseConfig.from_dict({"n_features": 4, "hidden": [2], "weight": None})
    assert restored.weight == 1e-3


def test_defaults() -> None:
    sparse = SparseConfig(n_features=4, hidden=(2,))
    assert (sparse.penalty, sparse.target, sparse.score) == ("l1", 0.05, "mse")
    noisy = DenoisingConfig(n_features=4, hidden=(2,))
    assert (noisy.noise, noisy.noise_level, noisy.score) == ("gaussian", 0.2, "mse")
    vae = VAEConfig(n_features=4, hidden=(2,))
    assert (vae.kl_weight, vae.score) == (0.25, "mse")  # docs/protocol.md
    assert (SparseConfig.arch, DenoisingConfig.arch, VAEConfig.arch) == (
        "sparse",
        "denoising",
        "vae",
    )


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (SparseConfig, {"penalty": "l2"}, "penalty 'l2' is not one of: l1, kl"),
        (SparseConfig, {"weight": -0.1}, "weight must be a finite number >= 0"),
        (SparseConfig, {"weight": float("nan")}, "weight must be a finite number >= 0"),
        (SparseConfig, {"weight": True}, "weight must be a finite number >= 0"),
        (SparseConfig, {"penalty": "kl", "target": 0.0}, r"target must be in \(0, 1\)"),
        (SparseConfig, {"target": 1.5}, r"target must be in \(0, 1\)"),
        (SparseConfig, {"score": "elbo"}, "score 'elbo' is not one of: mse, mae"),
        (SparseConfig, {"hidden": ()}, "hidden must be a non-empty tuple"),
        (DenoisingConfig, {"noise": "salt"}, "noise 'salt' is not one of: gaussian, mask"),
        (DenoisingConfig, {"noise_level": -1.0}, "noise_level must be a finite number >= 0"),
        (DenoisingConfig, {"noise": "mask", "noise_level": 1.0}, r"mask noise_level .* \[0, 1\)"),
        (DenoisingConfig, {"score": "elbo"}, "score 'elbo' is not one of: mse, mae"),
        (VAEConfig, {"kl_weight": -1.0}, "kl_weight must be a finite number >= 0"),
        (VAEConfig, {"kl_weight": float("inf")}, "kl_weight must be a finite number >= 0"),
        (VAEConfig, {"score": "nll"}, "score 'nll' is not one of: mse, mae, elbo"),
        (VAEConfig, {"activation": "swish"}, "activation 'swish' is not one of"),
    ],
)
def test_invalid_configs_raise_seismo_error(
    cls: type[DenseConfig], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(SeismoError, match=message):
        cls(**{"n_features": 4, "hidden": (2,), **kwargs})


@pytest.mark.parametrize("cls", [SparseConfig, DenoisingConfig, VAEConfig])
def test_from_dict_rejects_unknown_and_missing_fields(cls: type[DenseConfig]) -> None:
    with pytest.raises(SeismoError, match=f"unknown {cls.__name__} field"):
        cls.from_dict({"n_features": 4, "hidden": [2], "dropout": 0.1})
    with pytest.raises(SeismoError, match=f"invalid {cls.__name__}"):
        cls.from_dict({"n_features": 4})


@pytest.mark.parametrize(
    ("arch", "module_cls"),
    [
        ("sparse", SparseAutoencoder),
        ("denoising", DenoisingAutoencoder),
        ("vae", VariationalAutoencoder),
    ],
)
def test_registry_builds_the_module_and_rejects_a_foreign_config(
    arch: str, module_cls: type[torch.nn.Module]
) -> None:
    spec = get_architecture(arch)
    config = spec.config_cls.from_dict({"n_features": 4, "hidden": [2]})
    assert type(spec.build(config)) is module_cls
    with pytest.raises(SeismoError, match=f"needs a {spec.config_cls.__name__}"):
        spec.build(DenseConfig(n_features=4, hidden=(2,)))


# --- sparse ----------------------------------------------------------------------------


@pytest.mark.parametrize("penalty", ["l1", "kl"])
def test_sparse_shapes_and_dense_layout(penalty: str) -> None:
    torch.manual_seed(0)
    model = SparseAutoencoder(SparseConfig(n_features=D, hidden=(6, 3), penalty=penalty))
    x = torch.randn(5, D)
    assert model(x).shape == (5, D)
    assert model.encode(x).shape == (5, 3)
    dense = DenseAutoencoder(DenseConfig(n_features=D, hidden=(6, 3)))
    assert list(model.state_dict()) == list(dense.state_dict())


def test_sparse_kl_code_is_a_sigmoid_activation() -> None:
    model = SparseAutoencoder(SparseConfig(n_features=D, hidden=(3,), penalty="kl"))
    code = model.encode(100 * torch.randn(50, D))
    assert torch.all((code >= 0) & (code <= 1))


def test_l1_penalty_is_positive_and_grows_with_weight() -> None:
    torch.manual_seed(0)
    x = torch.randn(16, D)
    penalties = {}
    for weight in (0.0, 1e-3, 1e-1):
        torch.manual_seed(1)
        model = SparseAutoencoder(SparseConfig(n_features=D, hidden=(6, 3), weight=weight))
        with torch.no_grad():
            code = model.encode(x)
            penalties[weight] = float(model.sparsity_penalty(code))
            expected = F.mse_loss(model(x), x) + weight * code.abs().mean()
            torch.testing.assert_close(model.training_loss(x, F.mse_loss), expected)
    assert penalties[0.0] == 0.0
    assert 0 < penalties[1e-3] < penalties[1e-1]
    assert penalties[1e-1] == pytest.approx(100 * penalties[1e-3], rel=1e-5)


def test_l1_activity_is_the_mean_absolute_code() -> None:
    code = torch.tensor([[1.0, -2.0], [0.0, 5.0]])
    assert float(l1_activity(code)) == 2.0


def test_kl_sparsity_is_zero_at_the_target_and_positive_elsewhere() -> None:
    at_target = torch.tensor([[0.1, 0.0, 0.05], [0.0, 0.1, 0.05]])
    assert float(kl_sparsity(at_target, 0.05)) == pytest.approx(0.0, abs=1e-7)
    assert float(kl_sparsity(torch.full((4, 3), 0.5), 0.05)) > 0
    assert float(kl_sparsity(torch.full((4, 3), 0.01), 0.05)) > 0
    expected = 0.05 * np.log(0.05 / 0.5) + 0.95 * np.log(0.95 / 0.5)
    assert float(kl_sparsity(torch.full((4, 1), 0.5), 0.05)) == pytest.approx(expected, rel=1e-5)
    assert torch.isfinite(kl_sparsity(torch.zeros(4, 3), 0.05))
    assert torch.isfinite(kl_sparsity(torch.ones(4, 3), 0.05))


def test_sparse_kl_training_loss_adds_the_weighted_divergence() -> None:
    torch.manual_seed(0)
    config = SparseConfig(n_features=D, hidden=(6, 3), penalty="kl", weight=0.3, target=0.1)
    model = SparseAutoencoder(config)
    x = torch.randn(16, D)
    code = model.encode(x)
    expected = F.mse_loss(model(x), x) + 0.3 * kl_sparsity(code, 0.1)
    torch.testing.assert_close(model.training_loss(x, F.mse_loss), expected)


def test_kl_training_moves_mean_activations_towards_the_target(fit: Fit) -> None:
    def divergence(config: ModelConfig) -> float:
        detector = fit(config).detector
        x = torch.from_numpy(detector.scaler.transform(TRAIN_X)).float()
        with torch.inference_mode():
            return float(kl_sparsity(detector.module.encode(x), 0.05))

    penalised = VARIANTS["sparse-kl"]
    unpenalised = replace(penalised, weight=0.0)
    assert divergence(penalised) < 0.5 * divergence(unpenalised)


# --- denoising -------------------------------------------------------------------------


@pytest.mark.parametrize("noise", ["gaussian", "mask"])
def test_denoising_is_stochastic_in_training_and_deterministic_in_eval(noise: str) -> None:
    torch.manual_seed(0)
    model = DenoisingAutoencoder(DenoisingConfig(n_features=D, hidden=(6, 3), noise=noise))
    x = torch.randn(32, D)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
    dense = DenseAutoencoder(DenseConfig(n_features=D, hidden=(6, 3)))
    dense.load_state_dict(model.state_dict())
    assert torch.equal(model(x), dense.eval()(x))
    assert model(x).shape == (32, D)
    assert model.encode(x).shape == (32, 3)


def test_denoising_without_noise_is_deterministic_in_training() -> None:
    model = DenoisingAutoencoder(DenoisingConfig(n_features=D, hidden=(3,), noise_level=0.0))
    x = torch.randn(8, D)
    assert torch.equal(model.train()(x), model(x))


@pytest.mark.parametrize("noise", ["gaussian", "mask"])
def test_denoising_loss_reconstructs_the_clean_input(noise: str) -> None:
    model = DenoisingAutoencoder(DenoisingConfig(n_features=D, hidden=(3,), noise=noise)).train()
    x = torch.randn(8, D)
    original = x.clone()
    targets: list[torch.Tensor] = []

    def recording_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        targets.append(target)
        return F.mse_loss(reconstruction, target)

    model.training_loss(x, recording_loss)
    assert targets[0] is x
    assert torch.equal(x, original)


def test_corrupt_noise_statistics_and_no_mutation() -> None:
    torch.manual_seed(0)
    x = torch.ones(400, 50)
    masked = corrupt(x, "mask", 0.2)
    assert float((masked == 0).float().mean()) == pytest.approx(0.2, abs=0.02)
    assert set(masked.unique().tolist()) == {0.0, 1.0}
    noisy = corrupt(x, "gaussian", 0.2)
    assert float((noisy - x).std()) == pytest.approx(0.2, rel=0.05)
    assert torch.equal(x, torch.ones(400, 50))


def test_denoising_noise_follows_the_torch_seed() -> None:
    x = torch.randn(8, D)
    model = DenoisingAutoencoder(DenoisingConfig(n_features=D, hidden=(3,))).train()
    torch.manual_seed(7)
    first = model(x)
    torch.manual_seed(7)
    assert torch.equal(first, model(x))


# --- VAE -------------------------------------------------------------------------------


def test_vae_shapes_and_determinism() -> None:
    torch.manual_seed(0)
    model = VariationalAutoencoder(VAEConfig(n_features=D, hidden=(6, 3)))
    x = torch.randn(10, D)
    mu, logvar = model.posterior(x)
    assert mu.shape == logvar.shape == (10, 3)
    assert torch.equal(model.encode(x), mu)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
    assert torch.equal(model(x), model.decoder(mu))
    assert model(x).shape == (10, D)
    assert model.row_penalty(x).shape == (10,)


def test_vae_with_the_latent_as_only_hidden_width() -> None:
    model = VariationalAutoencoder(VAEConfig(n_features=D, hidden=(2,))).eval()
    assert model.encode(torch.randn(4, D)).shape == (4, 2)
    assert model(torch.randn(4, D)).shape == (4, D)


def test_gaussian_kl_matches_torch_distributions_and_is_non_negative() -> None:
    torch.manual_seed(0)
    mu, logvar = torch.randn(20, 3), torch.randn(20, 3)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    expected = torch.distributions.kl_divergence(q, p).sum(dim=1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)
    assert torch.all(gaussian_kl(mu, logvar) >= 0)
    assert torch.equal(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))


def test_vae_logvar_is_clamped_so_losses_stay_finite() -> None:
    model = VariationalAutoencoder(VAEConfig(n_features=D, hidden=(4, 2)))
    x = 1e4 * torch.randn(6, D)
    with torch.no_grad():
        _, logvar = model.posterior(x)
    assert float(logvar.min()) >= LOGVAR_RANGE[0] and float(logvar.max()) <= LOGVAR_RANGE[1]
    assert torch.isfinite(model.train().training_loss(x, F.mse_loss))


def test_vae_training_loss_is_reconstruction_plus_scaled_kl() -> None:
    torch.manual_seed(0)
    model = VariationalAutoencoder(VAEConfig(n_features=D, hidden=(6, 3), kl_weight=0.25)).eval()
    x = torch.randn(12, D)
    expected = F.mse_loss(model(x), x) + 0.25 * model.row_penalty(x).mean()
    torch.testing.assert_close(model.training_loss(x, F.mse_loss), expected)
    torch.testing.assert_close(model.row_penalty(x), gaussian_kl(*model.posterior(x)) / D)


def test_vae_elbo_score_is_mse_plus_row_penalty(fit: Fit) -> None:
    mse_detector = fit(VARIANTS["vae-mse"]).detector
    elbo_config = replace(mse_detector.config, score="elbo")
    elbo_detector = AutoencoderDetector(
        mse_detector.module, mse_detector.scaler, config=elbo_config, device="cpu"
    )
    x = np.vstack([normal_rows(30, seed=3), outlier_rows(30, seed=4)])
    mse, elbo = mse_detector.score_batch(x), elbo_detector.score_batch(x)
    assert np.all(elbo >= mse)
    scaled = torch.from_numpy(mse_detector.scaler.transform(x)).float()
    with torch.inference_mode():
        penalty = mse_detector.module.row_penalty(scaled).numpy()
    np.testing.assert_allclose(elbo - mse, penalty, rtol=1e-4, atol=1e-6)


# --- shared behaviour of the family ----------------------------------------------------


@pytest.mark.parametrize("name", list(VARIANTS))
def test_training_lowers_the_validation_loss(name: str, fit: Fit) -> None:
    fitted = fit(VARIANTS[name])
    first, best = fitted.val_history[0], fitted.result.summary["val_loss"]
    assert best < 0.8 * first, fitted.val_history


@pytest.mark.parametrize("name", list(VARIANTS))
def test_rows_off_the_manifold_score_higher(name: str, fit: Fit) -> None:
    detector = fit(VARIANTS[name]).detector
    normal = detector.score_batch(normal_rows(200, seed=11))
    outliers = detector.score_batch(outlier_rows(200, seed=12))
    assert outliers.mean() > 3 * normal.mean()
    assert np.median(outliers) > np.quantile(normal, 0.9)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_artifact_round_trip_scores_exactly_alike(name: str, fit: Fit, tmp_path: Path) -> None:
    assert_round_trip(fit(VARIANTS[name]), tmp_path)


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scoring_does_not_mutate_the_input(name: str, dtype: type, fit: Fit) -> None:
    detector = fit(VARIANTS[name]).detector
    x = np.vstack([normal_rows(10, seed=8), outlier_rows(5, seed=9)]).astype(dtype)
    before = x.copy()
    first = detector.score_batch(x)
    detector.score_with_features(x)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(detector.score_batch(x), first)


# --- the contract every registered architecture meets ----------------------------------


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_meets_the_detector_contract(
    arch: str, fit: Fit, tmp_path: Path
) -> None:
    config = example_config(arch)
    fitted = fit(config)
    detector = fitted.detector
    assert detector.arch == arch
    normal, outliers = normal_rows(60, seed=21), outlier_rows(60, seed=22)
    x = np.vstack([normal, outliers])
    scores, errors = detector.score_with_features(x)
    assert scores.shape == (120,) and scores.dtype == np.float32
    assert errors.shape == (120, D) and errors.dtype == np.float32
    assert np.all(np.isfinite(scores)) and np.all(scores >= 0)
    assert np.all(np.isfinite(errors)) and np.all(errors >= 0)
    np.testing.assert_array_equal(detector.score_batch(x), scores)
    np.testing.assert_array_equal(detector.feature_errors(x), errors)
    if getattr(config, "score", "mse") == "mse":
        np.testing.assert_allclose(scores, errors.mean(axis=1), rtol=1e-5, atol=1e-7)
    assert scores[60:].mean() > 2 * scores[:60].mean()
    assert errors[60:].mean() > errors[:60].mean()
    assert detector.score_batch(np.empty((0, D))).shape == (0,)
    assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert_round_trip(fitted, tmp_path)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_module_is_deterministic_in_eval_mode(arch: str) -> None:
    spec = get_architecture(arch)
    torch.manual_seed(0)
    module = spec.build(example_config(arch)).eval()
    x = torch.randn(7, D)
    with torch.inference_mode():
        assert module(x).shape == (7, D)
        assert torch.equal(module(x), module(x))
        assert module.encode(x).shape[0] == 7
        assert torch.isfinite(module.training_loss(x, F.mse_loss))
