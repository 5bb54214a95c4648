"""Training an autoencoder on normal rows, with early stopping on held-out rows.

Examples
--------
>>> import numpy as np
>>> from seismo.models.config import TrainConfig
>>> x = np.random.default_rng(0).normal(size=(64, 6))
>>> result = train_autoencoder(x, train=TrainConfig(epochs=2), device="cpu")
>>> result.summary["epochs_run"], result.summary["n_train"], result.summary["n_val"]
(2, 58, 6)
>>> result.val_scores.shape
(6,)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seismo.models.config import TrainConfig, default_hidden
from seismo.models.detector import CHUNK_ROWS, AutoencoderDetector
from seismo.models.device import select_device, to_device
from seismo.models.errors import DataError, SeismoError
from seismo.models.nets.architectures import ModelConfig, get_architecture
from seismo.models.nets.base import Autoencoder, LossFn
from seismo.models.nets.vae import VAEConfig
from seismo.models.scaler import fit_scaler
from seismo.models.terms.neighbours import fit_neighbours
from seismo.models.terms.training_range import TrainingRange

MIN_ROWS = 10
"""Fewest rows `train_autoencoder` accepts (at least one goes to validation)."""

ProgressFn = Callable[[int, float, float], None]

_LOSS_FNS: dict[str, Callable[..., torch.Tensor]] = {
    "mse": F.mse_loss,
    "mae": F.l1_loss,
    "huber": F.huber_loss,
    "bce": F.binary_cross_entropy,
}


def trimmed_loss(loss: str, trim_share: float) -> LossFn:
    """The loss ``loss`` (a `seismo.models.config.LOSSES` name) over the best-fitting rows only.

    Each row's loss is the mean over its elements; the ``ceil(trim_share * n)``
    rows of a batch ``(n, ...)`` with the highest loss are left out and the
    rest averaged (at least one row is kept). ``trim_share=0`` is the plain
    mean loss.

    >>> target = torch.zeros(4, 2)
    >>> recon = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [9.0, 9.0]])
    >>> float(trimmed_loss("mse", 0.0)(recon, target))
    21.0
    >>> float(trimmed_loss("mse", 0.25)(recon, target))
    1.0
    """
    fn = _LOSS_FNS[loss]
    if trim_share == 0:
        return lambda reconstruction, target: fn(reconstruction, target)

    def trimmed(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        rows = fn(reconstruction, target, reduction="none").reshape(len(target), -1).mean(dim=1)
        keep = max(1, len(rows) - math.ceil(trim_share * len(rows)))
        return torch.topk(rows, keep, largest=False).values.mean()

    return trimmed


@dataclass
class TrainResult:
    """What `train_autoencoder` returns.

    Attributes
    ----------
    detector : AutoencoderDetector
        The model with its best-validation weights, in eval mode.
    summary : dict
        ``epochs_run``, ``best_epoch``, ``train_loss`` and ``val_loss`` (both at
        the best epoch), ``n_train``, ``n_val``, ``seconds``, ``device`` and
        ``train_config`` (the `TrainConfig` as a dict).
    val_scores : numpy.ndarray
        Shape ``(n_val,)``: anomaly scores of the held-out rows, for calibration.
    train_scores : numpy.ndarray
        Shape ``(n_train,)``: anomaly scores of the training rows (for a
        threshold from a known contamination ratio).
    """

    detector: AutoencoderDetector
    summary: dict[str, Any]
    val_scores: np.ndarray
    train_scores: np.ndarray


@dataclass
class _Fit:
    epochs_run: int = 0
    best_epoch: int = 0
    best_train: float = math.inf
    best_val: float = math.inf
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)


def _check_training_data(x: np.ndarray) -> np.ndarray:
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"training data must be numeric: {exc}") from exc
    if array.ndim != 2 or array.shape[1] == 0:
        raise DataError(f"training data must have shape (n, d) with d >= 1, got {array.shape}")
    if array.shape[0] < MIN_ROWS:
        raise DataError(f"need at least {MIN_ROWS} rows to train, got {array.shape[0]}")
    bad_rows = int(np.count_nonzero(~np.isfinite(array).all(axis=1)))
    if bad_rows:
        raise DataError(f"training data has {bad_rows} row(s) with NaN or Inf; clean them first")
    return array


def default_config(n_features: int) -> ModelConfig:
    """The model `train_autoencoder` and ``seismo train`` build when none is given.

    A variational autoencoder of `default_hidden` widths scored by the
    reconstruction error of its posterior mean. With the `TrainConfig`
    defaults (20 epochs, a trimmed loss) it was chosen on the ODDS protocol
    (``docs/protocol.md``): the KL term regularises the code while training,
    the trimmed loss keeps the anomalies in the training rows from being
    learnt.

    >>> default_config(8)
    VAEConfig(n_features=8, hidden=(16, 4), activation='relu', output_activation=None, \
kl_weight=0.25, score='mse')
    """
    return VAEConfig(n_features=n_features, hidden=default_hidden(n_features))


def _resolve_config(config: ModelConfig | None, n_features: int) -> ModelConfig:
    if config is None:
        return default_config(n_features)
    if config.n_features != n_features:
        raise DataError(f"model config expects {config.n_features} features, data has {n_features}")
    return config


def _split(n: int, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle ``range(n)`` and cut it into (train, validation) index arrays."""
    order = rng.permutation(n)
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _train_epoch(
    module: Autoencoder,
    optimiser: torch.optim.Optimizer,
    loss_fn: LossFn,
    x: torch.Tensor,
    batch_size: int,
    rng: np.random.Generator,
) -> float:
    """One pass over ``x`` in shuffled minibatches; returns the row-weighted mean loss."""
    module.train()
    order = torch.from_numpy(rng.permutation(len(x))).to(x.device)
    total = torch.zeros((), device=x.device)
    for start in range(0, len(x), batch_size):
        batch = x[order[start : start + batch_size]]
        optimiser.zero_grad(set_to_none=True)
        loss = module.training_loss(batch, loss_fn)
        loss.backward()
        optimiser.step()
        total += loss.detach() * len(batch)
    return float(total) / len(x)


def _evaluate(module: Autoencoder, loss_fn: LossFn, x: torch.Tensor) -> float:
    """Row-weighted mean training objective of ``x`` in eval mode, without gradients."""
    module.eval()
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(x), CHUNK_ROWS):
            batch = x[start : start + CHUNK_ROWS]
            total += float(module.training_loss(batch, loss_fn)) * len(batch)
    return total / len(x)


def _fit(
    module: Autoencoder,
    x_train: torch.Tensor,
    x_val: torch.Tensor,
    train: TrainConfig,
    rng: np.random.Generator,
    progress: ProgressFn | None,
) -> _Fit:
    """Run epochs until ``train.epochs`` or ``train.patience`` epochs without improvement."""
    optimiser = torch.optim.Adam(module.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    loss_fn = trimmed_loss(train.loss, train.trim_share)
    fit = _Fit()
    for epoch in range(1, train.epochs + 1):
        train_loss = _train_epoch(module, optimiser, loss_fn, x_train, train.batch_size, rng)
        val_loss = _evaluate(module, loss_fn, x_val)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise SeismoError(f"training diverged at epoch {epoch} (loss is not finite); lower lr")
        fit.epochs_run = epoch
        if progress is not None:
            progress(epoch, train_loss, val_loss)
        if val_loss < fit.best_val:
            fit.best_epoch, fit.best_train, fit.best_val = epoch, train_loss, val_loss
            fit.best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        elif epoch - fit.best_epoch >= train.patience:
            break
    return fit


def _build_and_fit(
    model_config: ModelConfig,
    x_train: torch.Tensor,
    x_val: torch.Tensor,
    train: TrainConfig,
    rng: np.random.Generator,
    progress: ProgressFn | None,
) -> tuple[Autoencoder, _Fit]:
    """A fresh module of ``model_config``, trained, with its best-validation weights loaded."""
    module = get_architecture(model_config.arch).build(model_config).to(x_train.device)
    fit = _fit(module, x_train, x_val, train, rng, progress)
    module.load_state_dict(fit.best_state)
    return module, fit


def _drop_top_scored(scores: np.ndarray, share: float) -> tuple[np.ndarray, int]:
    """Indexes (sorted) of ``scores`` without its ``floor(share * n)`` highest, and that count.

    >>> _drop_top_scored(np.array([0.1, 5.0, 0.2, 0.3]), 0.25)
    (array([0, 2, 3]), 1)
    """
    n_drop = min(math.floor(share * len(scores)), len(scores) - 1)
    order = np.argsort(scores, kind="stable")
    return np.sort(order[: len(scores) - n_drop]), n_drop


def _with_left_out_range(
    detector: AutoencoderDetector, own: torch.Tensor, fitted: np.ndarray, scores: np.ndarray,
    cover: tuple[np.ndarray, np.ndarray] | None,
) -> np.ndarray:  # fmt: skip
    """Training rows' ``scores`` with the range term each of the ``fitted`` ones (a mask
    over them; ``own``: those rows standardised on the device, the range's rows) would get
    were it left out of them
    (:meth:`~seismo.models.terms.training_range.TrainingRange.left_out_excess`)."""
    span, scaler = detector.training_range, detector.scaler
    if span is None:
        return scores
    extra = np.zeros(len(fitted), dtype=np.float32)
    at = np.flatnonzero(fitted)
    with torch.inference_mode():
        left_out = span.leaving_one_out(own)
        if cover is not None:
            left_out = left_out.covering(*cover, scaler.mean, scaler.scale)
        for start in range(0, len(own), CHUNK_ROWS):  # bounded device memory
            scaled = own[start : start + CHUNK_ROWS]
            inside, out = span.excess(scaled), span.left_out_excess(scaled, left_out)
            if detector.score_kind != "mae":
                inside, out = inside.square(), out.square()
            extra[at[start : start + CHUNK_ROWS]] = (out - inside).mean(dim=1).cpu().numpy()
    if detector.neighbours is not None:
        extra /= detector.neighbours.error_median
    return (scores + extra).astype(np.float32)


def _with_neighbours(
    detector: AutoencoderDetector, rows: np.ndarray, train: TrainConfig, rng: np.random.Generator
) -> tuple[AutoencoderDetector, np.ndarray | None]:
    """``detector`` plus the k-nearest-neighbour term fitted on its training rows, and those
    rows' scores (``None``: too few rows, the detector is returned as it was)."""
    errors = torch.from_numpy(detector.score_batch(rows)).to(detector.device)
    with torch.inference_mode():
        scaled = to_device(detector.scaler.transform(rows), detector.device).float()
        fitted = fit_neighbours(scaled, errors, train.neighbours, train.neighbour_k, rng)
    if fitted is None:
        return detector, None
    near, scores = fitted
    with_term = AutoencoderDetector(detector.module, detector.scaler, config=detector.config,
                                    device=detector.device, neighbours=near,
                                    training_range=detector.training_range)  # fmt: skip
    return with_term, scores.float().cpu().numpy()


def train_autoencoder(
    x: np.ndarray,
    *,
    config: ModelConfig | None = None,
    train: TrainConfig = TrainConfig(),
    device: str = "auto",
    progress: ProgressFn | None = None,
    cover: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainResult:
    """Fit a scaler and an autoencoder to rows assumed (mostly) normal.

    Steps: seed torch and a numpy generator with ``train.seed``; shuffle and
    hold out ``train.val_fraction`` of the rows; fit the scaler on the training
    part only; train with Adam in minibatches; stop early when the validation
    loss has not improved for ``train.patience`` epochs and restore the best
    weights; with ``train.refit_share``, drop the highest-scored training rows
    and train a fresh model on the rest; with ``train.range_term``, keep each
    feature's range over the rows it trained on
    (:mod:`seismo.models.terms.training_range`); score the held-out rows for
    calibration.

    Parameters
    ----------
    x : numpy.ndarray
        Shape ``(n, d)``, ``n >= MIN_ROWS``, finite; not modified.
    config : ModelConfig, optional
        Architecture; defaults to `default_config` (a VAE scored by its ELBO).
    train : TrainConfig
        Optimisation hyperparameters.
    device : str
        Passed to `seismo.models.device.select_device`.
    progress : callable, optional
        Called after every epoch as ``progress(epoch, train_loss, val_loss)``,
        ``epoch`` counting from 1.
    cover : (low, high), optional
        With ``train.range_term``: raw bounds, shape ``(d,)`` each, that the range
        must cover besides the training rows' (a challenger's: its reference
        version's range, by default its champion's; see `train_challenger`).

    Returns
    -------
    TrainResult

    Raises
    ------
    DataError
        Non-numeric, non-2-D, too few rows, NaN/Inf, or a config for another width.
    SeismoError
        Unknown device, or the loss diverged.
    """
    started = time.perf_counter()
    data = _check_training_data(x)
    model_config = _resolve_config(config, data.shape[1])
    target = select_device(device)
    torch.manual_seed(train.seed)
    rng = np.random.default_rng(train.seed)
    train_idx, val_idx = _split(len(data), train.val_fraction, rng)
    scaler = fit_scaler(data[train_idx], train.scaling, train.scale_floor)
    x_train = to_device(scaler.transform(data[train_idx]), target)
    x_val = to_device(scaler.transform(data[val_idx]), target)
    module, fit = _build_and_fit(model_config, x_train, x_val, train, rng, progress)
    detector = AutoencoderDetector(module, scaler, config=model_config, device=target)
    n_dropped = 0
    fitted = np.ones(len(train_idx), dtype=bool)  # the training rows the model learnt
    if train.refit_share > 0:
        kept, n_dropped = _drop_top_scored(detector.score_batch(data[train_idx]), train.refit_share)
        fitted[:] = False
        fitted[kept] = True
        torch.manual_seed(train.seed)
        x_train = x_train[torch.from_numpy(kept).to(target)]
        module, fit = _build_and_fit(model_config, x_train, x_val, train, rng, progress)
        detector = AutoencoderDetector(module, scaler, config=model_config, device=target)
    if train.range_term:
        span = TrainingRange.fit(x_train)
        if cover is not None:
            span = span.covering(*cover, scaler.mean, scaler.scale)
        detector = AutoencoderDetector(module, scaler, config=model_config, device=target,
                                       training_range=span)  # fmt: skip
    train_scores = None
    if train.neighbours > 0:
        detector, train_scores = _with_neighbours(detector, data[train_idx], train, rng)
    if train_scores is None:
        train_scores = detector.score_batch(data[train_idx])
    train_scores = _with_left_out_range(detector, x_train, fitted, train_scores, cover)
    val_scores = detector.score_batch(data[val_idx])
    summary: dict[str, Any] = {
        "epochs_run": fit.epochs_run,
        "best_epoch": fit.best_epoch,
        "train_loss": fit.best_train,
        "val_loss": fit.best_val,
        "n_train": len(train_idx) - n_dropped,
        "n_val": len(val_idx),
        "n_refit_dropped": n_dropped,
        "seconds": round(time.perf_counter() - started, 3),
        "device": str(target),
        "train_config": train.to_dict(),
    }
    return TrainResult(
        detector=detector,
        summary=summary,
        val_scores=val_scores,
        train_scores=train_scores,
    )
