"""``seismo train``: fit an autoencoder on a file and write its artifact.

The architecture (``--arch``) is any name in `seismo.models.nets.architectures.ARCHITECTURES`;
the command-line options that shape it map onto fields of that
architecture's config (see `ARCH_FLAGS`). An option that the chosen
architecture does not have is an error, never silently ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from seismo.models.artifact import build_artifact, save_artifact
from seismo.models.columns import DEFAULT_TIMESTAMP, ColumnSpec
from seismo.models.config import TrainConfig, default_hidden
from seismo.models.data import (
    STEP_MARK,
    Table,
    is_series_csv,
    load_table,
    read_series,
    series_windows,
    window_feature_names,
)
from seismo.models.device import select_device
from seismo.models.errors import DataError, SeismoError, TrainingStopped
from seismo.models.nets.architectures import ModelConfig, get_architecture
from seismo.models.training import TrainResult, train_autoencoder
from seismo.stream.errors import ArtifactError, ConfigError
from seismo.stream.offline.training_checks import training_warnings

log = logging.getLogger(__name__)

#: Command-line option -> config field, for options that shape an architecture.
ARCH_FLAGS: dict[str, str] = {
    "hidden": "hidden",
    "activation": "activation",
    "output_activation": "output_activation",
    "score": "score",
    "penalty": "penalty",
    "penalty_weight": "weight",
    "sparsity_target": "target",
    "noise": "noise",
    "noise_level": "noise_level",
    "kl_weight": "kl_weight",
    "window": "window",
    "channels": "channels",
    "filters": "filters",
    "kernel_size": "kernel_size",
    "latent": "latent",
    "layers": "layers",
}


#: ``trim_share`` of ``seismo train --window`` or ``--clean`` unless ``--trim-share`` is given.
WINDOW_TRIM_SHARE = 0.0
#: ``neighbours`` of ``seismo train --window`` or ``--clean`` unless ``--neighbours`` is
#: given: the neighbour term was chosen on tabular sets and not tried on series.
WINDOW_NEIGHBOURS = 0
#: ``range_term`` of ``seismo train --clean`` (not of ``--window``) unless ``--range-term`` or
#: ``--no-range-term`` is given: chosen on the ODDS protocol's clean setting
#: (docs/protocol.md), not tried on series.
CLEAN_RANGE_TERM = True


def train_options_for(given: dict[str, Any], *, window: bool, clean: bool) -> dict[str, Any]:
    """``TrainConfig`` fields: those given, then the defaults of windows and of clean rows.

    The trimmed loss and the neighbour term (`TrainConfig`'s defaults) were chosen for
    training rows that hold anomalies (ODDS). On rows known to be normal they only
    widen the spread of normal scores, which a k-sigma threshold pays for in false
    alarms (docs/protocol.md), and on series they cost detections: windows and
    ``--clean`` learn every row and score by the reconstruction error alone.
    ``--clean`` rows (not windows) add the range term: a reading beyond what its
    channel did in training counts even where the model carries it through.

    >>> train_options_for({"epochs": 5}, window=False, clean=True)
    {'epochs': 5, 'trim_share': 0.0, 'neighbours': 0, 'range_term': True}
    >>> train_options_for({"trim_share": 0.1}, window=True, clean=True)
    {'trim_share': 0.1, 'neighbours': 0}
    >>> train_options_for({}, window=False, clean=False)
    {}
    """
    out = dict(given)
    if window or clean:
        out.setdefault("trim_share", WINDOW_TRIM_SHARE)
        out.setdefault("neighbours", WINDOW_NEIGHBOURS)
    if clean and not window:
        out.setdefault("range_term", CLEAN_RANGE_TERM)
    return out

def parse_widths(flag: str, text: str) -> tuple[int, ...]:
    """Comma-separated positive integers, e.g. ``"64,16"``.

    >>> parse_widths("--filters", "16,8")
    (16, 8)
    """
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"{flag} expects comma-separated integers, got {text!r}") from None


def takes_window(arch: str) -> bool:
    """Whether ``arch`` is a sequence architecture, whose config holds the window.

    >>> takes_window("conv1d"), takes_window("vae")
    (True, False)
    """
    try:
        spec = get_architecture(arch)
    except SeismoError as exc:
        raise ConfigError(str(exc)) from None
    return "window" in {f.name for f in fields(spec.config_cls)}  # type: ignore[arg-type]


def build_config(arch: str, n_features: int, options: dict[str, Any]) -> ModelConfig:
    """The config of ``arch`` for ``n_features`` inputs from the given CLI options.

    ``options`` maps `ARCH_FLAGS` keys to values (``None`` = not given).
    Dense-like architectures get `default_hidden` unless ``hidden`` is given;
    sequence architectures need ``window`` and derive ``channels`` from it.

    >>> build_config("dense", 16, {"hidden": "8,2"}).hidden
    (8, 2)
    >>> build_config("dense", 16, {"window": 4})
    Traceback (most recent call last):
    ...
    seismo.stream.errors.ConfigError: --window does not apply to --arch dense
    """
    try:
        spec = get_architecture(arch)
    except SeismoError as exc:
        raise ConfigError(str(exc)) from None
    types = {f.name: str(f.type) for f in fields(spec.config_cls)}  # type: ignore[arg-type]
    names = set(types)
    values: dict[str, Any] = {}
    for option, value in options.items():
        if value is None:
            continue
        field = ARCH_FLAGS[option]
        if field not in names:
            flag = "--" + option.replace("_", "-")
            raise ConfigError(f"{flag} does not apply to --arch {arch}")
        values[field] = _parse_option(option, value, types[field])
    if "window" in names:
        _sequence_shape(values, n_features)
    else:
        values.setdefault("hidden", default_hidden(n_features))
    if "n_features" in names:
        values["n_features"] = n_features
    try:
        return spec.config_cls.from_dict(values)
    except SeismoError as exc:
        raise ConfigError(f"--arch {arch}: {exc}") from None


WIDTHS = ("hidden", "filters")


def _parse_option(option: str, value: Any, field_type: str) -> Any:
    """``--hidden``/``--filters`` text as a tuple of widths, or one int where the field is one.

    >>> _parse_option("hidden", "64,16", "tuple[int, ...]"), _parse_option("hidden", "32", "int")
    ((64, 16), 32)
    """
    if option not in WIDTHS or not isinstance(value, str):
        return value
    widths = parse_widths(f"--{option}", value)
    if field_type.startswith("tuple"):
        return widths
    if len(widths) != 1:
        raise ConfigError(f"--{option} takes one integer for this architecture, got {value!r}")
    return widths[0]


def _sequence_shape(values: dict[str, Any], n_features: int) -> None:
    """Fill ``channels`` from ``window`` (rows are flattened windows, time-major)."""
    window = values.get("window")
    if window is None:
        raise ConfigError("--window is required for sequence architectures")
    channels = values.setdefault("channels", n_features // window if window else 0)
    if window * channels != n_features:
        raise ConfigError(
            f"--window {window} x --channels {channels} must equal the {n_features} features"
        )


def check_out_dir(out: Path) -> None:
    """Refuse, before any training, an ``--out`` that exists and is not an empty directory.

    >>> check_out_dir(Path("/nonexistent/seismo-model"))
    >>> check_out_dir(Path("/"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    seismo.models.errors.ArtifactError: --out / already exists; choose a new directory ...
    """
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise ArtifactError(
            f"--out {out} already exists; choose a new directory "
            "(seismo train never overwrites an artifact)"
        )


def fit_with_progress(
    x: np.ndarray,
    config: ModelConfig,
    train_cfg: TrainConfig,
    device: str,
    console: Console,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train on ``x`` (n, d) with a progress bar of epochs and losses on ``console``.

    ``should_stop`` is asked after every epoch; true raises `TrainingStopped`.
    """
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
            if should_stop is not None and should_stop():
                raise TrainingStopped(f"training stopped after epoch {epoch}")

        return train_autoencoder(
            x, config=config, train=train_cfg, device=device, progress=progress
        )


def describe(config: ModelConfig) -> str:
    """A one-line description of a model config, for the console.

    >>> from seismo.models.config import DenseConfig
    >>> describe(DenseConfig(n_features=784, hidden=(64, 16)))
    'dense autoencoder 784-64-16-64-784'
    """
    hidden = getattr(config, "hidden", None)
    if isinstance(hidden, tuple):
        d = config.n_features
        shape = "-".join(str(w) for w in (d, *hidden, *reversed(hidden[:-1]), d))
        return f"{config.arch} autoencoder {shape}"
    return f"{config.arch} autoencoder {config.to_dict()}"


def run_train(
    *,
    data: Path,
    out: Path,
    arch: str,
    arch_options: dict[str, Any],
    train_options: dict[str, Any],
    name: str,
    exclude_labelled: bool,
    label_column: str | None,
    device: str,
    contamination: float | None = None,
    timestamp_column: str | None = None,
    train_share: float = 0.5,
    columns: ColumnSpec | None = None,
    clean: bool = False,
    window_step: int = 1,
) -> Path:
    """Load, train with a progress bar, calibrate, and save; return the artifact dir.

    ``arch_options`` are `ARCH_FLAGS` values, ``train_options`` `TrainConfig`
    fields (``None`` = default). The artifact's training window records the
    source file, the rows trained on (``rows``, training plus validation
    split) and the labelled rows left out by ``exclude_labelled``
    (``rows_excluded``).

    With ``window`` and a CSV that has ``timestamp_column``, the data is a
    time series (one or more value columns): the model learns the sliding
    windows of its first ``train_share``, of readings ``window_step`` apart
    (time-major, features named ``{channel}@t-{k}``, ``k`` the readings back),
    the rows a scorer run with ``--window`` and ``--window-step`` builds.

    ``columns`` says which columns are time, device, features and dropped
    (:class:`~seismo.models.columns.ColumnSpec`); by default every column but
    ``timestamp``, ``device_id`` and the label is a channel.
    """
    check_out_dir(out)
    try:
        select_device(device)  # an unknown or missing device, before the data is read
    except SeismoError as exc:
        raise ConfigError(f"--device: {exc}") from None
    console = Console(stderr=True)
    window = arch_options.get("window")
    spec = columns or ColumnSpec(timestamp_column=timestamp_column)
    series = bool(window) and is_series_csv(data, spec.timestamp_column)
    if window_step < 1 or (window_step > 1 and (not series or (window or 0) < 2)):
        raise ConfigError(
            f"--window-step {window_step}: give --window 2 or more too, on a time series CSV "
            f"(a {spec.timestamp_column or DEFAULT_TIMESTAMP!r} column), with a step of 1 or "
            "more"
        )
    if window and not series and not takes_window(arch):
        raise ConfigError(
            f"--window {window} builds windows of readings from a time series: a CSV file "
            f"with a {spec.timestamp_column or DEFAULT_TIMESTAMP!r} column, which {data} is "
            "not (name your time column with --timestamp-column); for rows that already are "
            "flattened windows, use --arch conv1d or lstm"
        )
    if window and series:
        table = series_table(data, spec, window, train_share, window_step)
        if not takes_window(arch):
            arch_options = {**arch_options, "window": None}  # dense: the flattened window
        apart = f" {window_step} apart" if window_step > 1 else ""
        console.print(f"time series: {len(table.x)} windows of {window} readings{apart} from "
                      f"the first {train_share:.0%} of {data}")  # fmt: skip
    else:
        table = load_table(data, label_column=label_column, exclude_labelled=exclude_labelled,
                           columns=spec)  # fmt: skip
    n, d = table.x.shape
    config = build_config(arch, d, arch_options)
    given = train_options_for({k: v for k, v in train_options.items() if v is not None},
                              window=bool(window), clean=clean)  # fmt: skip
    try:
        train_cfg = TrainConfig(**given)
    except SeismoError as exc:
        raise ConfigError(str(exc)) from None
    console.print(f"training {describe(config)} on {n} rows of {data}", markup=False)
    console.print(f"channels: {', '.join(channel_list(table.feature_names, window))}",
                  markup=False, highlight=False)  # fmt: skip
    result = fit_with_progress(table.x, config, train_cfg, device, console)
    artifact = build_artifact(
        result,
        name=name,
        feature_names=table.feature_names,
        training_window={"source": str(data), "rows": n, "rows_excluded": table.n_excluded},
        contamination=contamination,
    )
    path = save_artifact(artifact, out)
    cal = artifact.calibration
    for line in training_warnings(table.x, table.feature_names, cal.count):
        console.print(f"warning: {line}", markup=False, highlight=False, style="yellow",
                      soft_wrap=True)  # fmt: skip
    ran, best = result.summary.get("epochs_run"), result.summary.get("best_epoch")
    still = (f" (the validation loss was still falling at epoch {ran}: --epochs "
             f"{2 * ran} trains longer)" if ran and ran == best == train_cfg.epochs else "")
    console.print(  # one line, never wrapped: it is read by scripts and grep
        f"wrote {path} version {artifact.version}: {ran} epochs{still}, validation score "
        f"mean {cal.mean:.4g} std {cal.std:.4g} p99 {cal.quantiles.get('0.99', float('nan')):.4g}",
        soft_wrap=True,
    )
    return path


def channel_list(feature_names: list[str], window: int | None) -> list[str]:
    """The channels a model learns: its feature names, or a window model's channel names.

    >>> channel_list(["a@t-1", "b@t-1", "a@t-0", "b@t-0"], 2), channel_list(["a", "b"], None)
    (['a', 'b'], ['a', 'b'])
    """
    if not window or STEP_MARK not in feature_names[0]:
        return feature_names
    return [name.split(STEP_MARK)[0] for name in feature_names[-(len(feature_names) // window):]]


def series_table(
    data: Path, timestamp_column: str | ColumnSpec, window: int, train_share: float,
    step: int = 1,
) -> Table:  # fmt: skip
    """The sliding windows of a time-series CSV's first ``train_share``, as a table: each
    of ``window`` readings ``step`` apart, spanning ``(window - 1) * step + 1`` readings.

    With a device column the windows are each device's, over the first
    ``train_share`` of its own readings, as the scorer builds them (per
    device key): a window never mixes two devices' readings. A device with
    fewer readings than a window spans there gives none.
    """
    if not 0 < train_share <= 1:
        raise ConfigError(f"--train-share must be in (0, 1], got {train_share}")
    series = read_series(data, timestamp_column)
    span = (window - 1) * step + 1
    parts = [values[: max(span, int(len(values) * train_share))]
             for values in series.by_device()]  # fmt: skip
    if series.devices is None:  # one series: too short is the window's own error
        windows = [series_windows(parts[0], window, step=step)]
    else:
        windows = [series_windows(part, window, step=step) for part in parts if len(part) >= span]
        if not windows:
            raise DataError(f"{data}: no device has {span} readings for a window of {window}")
        if len(windows) < len(parts):
            log.warning("%d of %d devices have fewer than %d readings in the training share "
                        "of %s and give no window", len(parts) - len(windows), len(parts),
                        span, data)  # fmt: skip
    x = np.concatenate(windows).astype(np.float32)
    names = window_feature_names(series.channels, window, step)
    return Table(x=x, y=None, feature_names=names)
