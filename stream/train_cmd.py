"""``seismo train``: fit a dense autoencoder on a file and write its artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from models.artifact import build_artifact, save_artifact
from models.config import DenseConfig, TrainConfig, default_hidden
from models.data import load_table
from models.training import TrainResult, train_autoencoder
from stream.errors import ArtifactError, ConfigError


def parse_hidden(text: str | None, n_features: int) -> tuple[int, ...]:
    """Hidden layer sizes from ``"64,16"``, or the default for ``n_features``.

    >>> parse_hidden("250,10", 784)
    (250, 10)
    >>> parse_hidden(None, 16)
    (32, 8)
    >>> parse_hidden("a,b", 16)
    Traceback (most recent call last):
    ...
    stream.errors.ConfigError: --hidden expects comma-separated integers, got 'a,b'
    """
    if text is None:
        return default_hidden(n_features)
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--hidden expects comma-separated integers, got {text!r}") from None


def check_out_dir(out: Path) -> None:
    """Refuse, before any training, an ``--out`` that exists and is not an empty directory.

    >>> check_out_dir(Path("/nonexistent/seismo-model"))
    >>> check_out_dir(Path("/"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    models.errors.ArtifactError: --out / already exists; choose a new directory ...
    """
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise ArtifactError(
            f"--out {out} already exists; choose a new directory "
            "(seismo train never overwrites an artifact)"
        )


def fit_with_progress(
    x: np.ndarray, config: DenseConfig, train_cfg: TrainConfig, device: str, console: Console
) -> TrainResult:
    """Train on ``x`` (n, d) with a progress bar of epochs and losses on ``console``."""
    with Progress(
        TextColumn("epoch {task.completed:>3.0f}/{task.total:.0f}"),
        BarColumn(),
        TextColumn("{task.fields[losses]}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("train", total=train_cfg.epochs, losses="")

        def progress(epoch: int, train_loss: float, val_loss: float) -> None:
            losses = f"train {train_loss:.4f}  val {val_loss:.4f}"
            bar.update(task, completed=epoch, losses=losses)

        return train_autoencoder(
            x, config=config, train=train_cfg, device=device, progress=progress
        )


def run_train(
    *,
    data: Path,
    out: Path,
    epochs: int,
    seed: int,
    hidden: str | None,
    name: str,
    exclude_labelled: bool,
    label_column: str | None,
    batch_size: int,
    patience: int,
    device: str,
) -> Path:
    """Load, train with a progress bar, calibrate, and save; return the artifact dir.

    The artifact's training window records the source file, the rows trained
    on (``rows``, training plus validation split) and the labelled rows left
    out by ``exclude_labelled`` (``rows_excluded``).
    """
    check_out_dir(out)
    console = Console(stderr=True)
    table = load_table(data, label_column=label_column, exclude_labelled=exclude_labelled)
    n, d = table.x.shape
    config = DenseConfig(n_features=d, hidden=parse_hidden(hidden, d))
    train_cfg = TrainConfig(epochs=epochs, seed=seed, batch_size=batch_size, patience=patience)
    shape = "-".join(str(w) for w in (d, *config.hidden, *reversed(config.hidden[:-1]), d))
    console.print(f"training dense autoencoder {shape} on {n} rows of {data}")
    result = fit_with_progress(table.x, config, train_cfg, device, console)
    artifact = build_artifact(
        result,
        name=name,
        feature_names=table.feature_names,
        training_window={"source": str(data), "rows": n, "rows_excluded": table.n_excluded},
    )
    path = save_artifact(artifact, out)
    cal = artifact.calibration
    console.print(
        f"wrote {path} version {artifact.version}: "
        f"{result.summary.get('epochs_run')} epochs, validation error "
        f"mean {cal.mean:.4g} std {cal.std:.4g} p99 {cal.quantiles.get('0.99', float('nan')):.4g}"
    )
    return path
