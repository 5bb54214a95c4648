"""The ``seismo`` command line.

Every command turns a :class:`~seismo.stream.errors.SeismoError` into one line on
stderr and exit status 1; a usage error exits 2 (click's convention).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from seismo.stream.cli.bench import bench, bench_devices
from seismo.stream.cli.columns import (
    DeviceColumn,
    DropColumns,
    FeatureColumns,
    TimestampColumn,
    column_spec,
)
from seismo.stream.cli.common import (
    install_stop_handlers,
    kafka_config_error,
    kafka_config_or_env,
    parse_pairs,
    setup_logging,
    unwind_on_sigterm,
)
from seismo.stream.cli.demo import demo, simulate
from seismo.stream.cli.dev import dev_app
from seismo.stream.cli.help_text import SeismoGroup, SettingsCommand
from seismo.stream.cli.incidents import incidents, notify, silence_app
from seismo.stream.cli.models import models_app
from seismo.stream.cli.tail import tail
from seismo.stream.errors import ConfigError, SeismoError

app = typer.Typer(
    name="seismo",
    help="Streaming anomaly detection for sensor events on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    cls=SeismoGroup,
)

Opt = typer.Option


def _version(value: bool) -> None:
    if value:
        from seismo import __version__

        typer.echo(f"seismo {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, Opt("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Streaming anomaly detection for sensor events on Kafka."""


@app.command(cls=SettingsCommand)
def score(
    model: Annotated[Path | None, Opt(help="Model artifact directory [env SEISMO_MODEL].")] = None,
    model_store: Annotated[
        str | None, Opt(help="Or a registry store (directory or fsspec URL): serve, hot-swap.")
    ] = None,
    model_name: Annotated[str | None, Opt(help="Model name in the registry.")] = None,
    model_cache_dir: Annotated[
        Path | None, Opt(help="Local copies of a URL store's versions.")
    ] = None,
    model_poll_s: Annotated[
        float | None, Opt(help="Registry pointer poll period (bounded staleness, s).")
    ] = None,
    drift_m: Annotated[
        float | None, Opt(help="Drift trigger: rolling median > calibration mean + m*std.")
    ] = None,
    drift_window: Annotated[int | None, Opt(help="Drift trigger: scores in the median.")] = None,
    drift_cooldown_s: Annotated[
        float | None, Opt(help="Drift trigger: seconds before asking again.")
    ] = None,
    bootstrap_servers: Annotated[str | None, Opt(help="Kafka bootstrap servers.")] = None,
    input_topic: Annotated[str | None, Opt("--input-topic", "--topic", help="Event topic.")] = None,
    alerts_topic: Annotated[str | None, Opt(help="Alerts topic.")] = None,
    scores_topic: Annotated[str | None, Opt(help="Optional per-event scores topic.")] = None,
    dlq_topic: Annotated[str | None, Opt(help="Dead-letter topic.")] = None,
    group_id: Annotated[str | None, Opt(help="Consumer group id.")] = None,
    redis_url: Annotated[str | None, Opt(help="Redis URL (password allowed).")] = None,
    redis_prefix: Annotated[str | None, Opt(help="Prefix of Redis keys.")] = None,
    device: Annotated[str | None, Opt(help="auto, cpu or cuda.")] = None,
    max_batch: Annotated[int | None, Opt(help="Most events per micro-batch.")] = None,
    linger_ms: Annotated[int | None, Opt(help="Longest wait for a batch to fill (ms).")] = None,
    prefetch: Annotated[
        bool | None, Opt("--prefetch/--no-prefetch", help="Consume the next batch while scoring.")
    ] = None,
    width_check: Annotated[
        bool | None,
        Opt("--width-check/--no-width-check", help="Refuse a model no recent event fits."),
    ] = None,
    k: Annotated[float | None, Opt("--k", help="Threshold = mean + k*std.")] = None,
    window: Annotated[
        int | None, Opt(help="Score each device's last W readings with a window model.")
    ] = None,
    window_stride: Annotated[
        int | None, Opt(help="With --window: readings between two scored windows.")
    ] = None,
    window_step: Annotated[
        int | None, Opt(help="With --window: readings between two readings of a window.")
    ] = None,
    window_tail: Annotated[
        int | None, Opt(help="With --window: messages re-read to rebuild a new partition's.")
    ] = None,
    threshold_scope: Annotated[
        str | None, Opt(help="model (one shared threshold) or device (each device its own).")
    ] = None,
    smooth: Annotated[int | None, Opt(help="Device scope: scores averaged before judging.")] = None,
    device_history: Annotated[
        int | None, Opt(help="Device scope: memory of a device's statistics (scores).")
    ] = None,
    level_history: Annotated[
        int | None, Opt(help="Device scope: memory of the level check (readings; 0 = off).")
    ] = None,
    level_warmup: Annotated[
        int | None, Opt(help="Device scope: readings before the level check judges.")
    ] = None,
    level_mode: Annotated[
        str | None, Opt(help="Device scope: std (k std off the mean) or range (beyond it).")
    ] = None,
    level_smooth: Annotated[
        int | None, Opt(help="Device scope, level mode std: readings averaged first.")
    ] = None,
    level_k: Annotated[
        float | None, Opt(help="Device scope, level mode std: threshold in std [default k].")
    ] = None,
    level_tolerance: Annotated[
        float | None, Opt(help="Device scope, level mode range: excess allowed (share).")
    ] = None,
    level_clip: Annotated[
        float | None, Opt(help="Device scope: readings learnt clipped to mean -/+ this many "
                          "std (0 = unclipped) [default 10].")
    ] = None,
    device_state_ttl_s: Annotated[
        int | None, Opt(help="Device scope: unwritten device states expire after (s).")
    ] = None,
    max_devices: Annotated[
        int | None, Opt(help="Most device states/windows held in memory (LRU beyond).")
    ] = None,
    threshold_space: Annotated[
        str | None, Opt(help="log (default) or linear: where mean/std are computed.")
    ] = None,
    min_samples: Annotated[
        int | None, Opt(help="Warm-up scores before the rolling threshold.")
    ] = None,
    learn_anomalies: Annotated[
        bool | None, Opt("--learn-anomalies/--no-learn-anomalies", help="Fold flagged scores in.")
    ] = None,
    stats_window: Annotated[int | None, Opt(help="Memory of the rolling statistics.")] = None,
    max_threshold_factor: Annotated[
        float | None, Opt(help="Threshold at most this many times the calibration's (0 = "
                          "unbounded) [default 10].")
    ] = None,
    redis_timeout_s: Annotated[
        float | None, Opt(help="Longest wait for one Redis call (s).")
    ] = None,
    redis_retry_s: Annotated[
        float | None, Opt(help="After a Redis failure, judge locally this long (s).")
    ] = None,
    max_message_bytes: Annotated[int | None, Opt(help="Larger events are dead-lettered.")] = None,
    flush_timeout_s: Annotated[float | None, Opt(help="Delivery confirmation timeout.")] = None,
    metrics_port: Annotated[int | None, Opt(help="Prometheus port (0 = off).")] = None,
    metrics_host: Annotated[str | None, Opt(help="Metrics bind address.")] = None,
    kafka_config: Annotated[
        list[str] | None, Opt(help="librdkafka KEY=VALUE, repeatable (SASL/TLS...).")
    ] = None,
    log_level: Annotated[str | None, Opt(help="DEBUG, INFO, WARNING or ERROR.")] = None,
    config: Annotated[Path | None, Opt(help="TOML config file (flags and env win).")] = None,
) -> None:
    """Score events from Kafka and publish alerts (runs until SIGTERM/SIGINT).

    Each option is also the environment variable SEISMO_<OPTION> and a key of
    the --config file (docs/settings.md); a flag wins over both.
    """
    given = dict(locals())  # first statement: exactly the options
    given.pop("config")
    from seismo.stream.config.loader import load_settings
    from seismo.stream.scoring.service import run_scorer

    given["kafka_config"] = parse_pairs(kafka_config)
    settings = load_settings(given, config_file=config)
    setup_logging(settings.log_level)
    run_scorer(settings, install_stop_handlers())


@app.command()
def train(
    data: Annotated[Path, Opt(help="Training data: .npz (key X), .csv or .parquet.")],
    out: Annotated[Path, Opt(help="Artifact directory to write.")],
    arch: Annotated[str, Opt(help="vae, dense, sparse, denoising, conv1d or lstm.")] = "vae",
    epochs: Annotated[int | None, Opt(help="Most training epochs [default 20].")] = None,
    seed: Annotated[int, Opt(help="Random seed.")] = 0,
    hidden: Annotated[str | None, Opt(help="Hidden sizes, e.g. 64,16 (default from d).")] = None,
    activation: Annotated[str | None, Opt(help="relu, tanh, sigmoid, gelu, ...")] = None,
    output_activation: Annotated[
        str | None, Opt(help="Output activation, e.g. sigmoid for [0,1] data.")
    ] = None,
    loss: Annotated[str | None, Opt(help="Training loss: mse, mae, huber or bce.")] = None,
    score: Annotated[str | None, Opt(help="Row score: mse, mae (vae: also elbo).")] = None,
    scaling: Annotated[str | None, Opt(help="standard, minmax or none.")] = None,
    scale_floor: Annotated[
        float | None, Opt(help="standard: smallest scale as a share of the mean, e.g. 0.01.")
    ] = None,
    penalty: Annotated[str | None, Opt(help="sparse: l1 or kl.")] = None,
    penalty_weight: Annotated[float | None, Opt(help="sparse: weight of the penalty.")] = None,
    sparsity_target: Annotated[float | None, Opt(help="sparse kl: target activation.")] = None,
    noise: Annotated[str | None, Opt(help="denoising: gaussian or mask.")] = None,
    noise_level: Annotated[float | None, Opt(help="denoising: std or mask share.")] = None,
    kl_weight: Annotated[float | None, Opt(help="vae: weight of the KL term.")] = None,
    window: Annotated[
        int | None, Opt(help="Time steps per row (conv1d/lstm); on a series CSV, any arch.")
    ] = None,
    window_step: Annotated[
        int, Opt(help="With --window on a series CSV: a window's readings are this many "
                 "readings apart (the scorer's --window-step).", min=1)
    ] = 1,
    timestamp_column: TimestampColumn = None,
    device_column: DeviceColumn = None,
    feature_columns: FeatureColumns = None,
    drop_columns: DropColumns = None,
    train_share: Annotated[
        float, Opt(help="Series: the first share of the readings is the training stretch.")
    ] = 0.5,
    channels: Annotated[int | None, Opt(help="conv1d/lstm: channels (default d/window).")] = None,
    filters: Annotated[str | None, Opt(help="conv1d: filters per layer, e.g. 16,8.")] = None,
    kernel_size: Annotated[int | None, Opt(help="conv1d: kernel size (odd).")] = None,
    latent: Annotated[int | None, Opt(help="conv1d/lstm: latent size.")] = None,
    layers: Annotated[int | None, Opt(help="lstm: stacked layers.")] = None,
    lr: Annotated[float | None, Opt(help="Adam learning rate.")] = None,
    weight_decay: Annotated[float | None, Opt(help="Adam weight decay.")] = None,
    batch_size: Annotated[int | None, Opt(help="Minibatch size.")] = None,
    patience: Annotated[int | None, Opt(help="Early-stopping patience (epochs).")] = None,
    trim_share: Annotated[
        float | None,
        Opt(help="Share of each batch with the highest loss left out (0..0.5) [default 0.3; "
            "0 with --window]."),
    ] = None,
    refit_share: Annotated[
        float | None, Opt(help="Refit without this share of top-scored training rows (0..0.5).")
    ] = None,
    neighbours: Annotated[
        int | None,
        Opt(help="Training rows kept for the k-nearest-neighbour term of the score (0 = the "
            "reconstruction error alone) [default 2048; 0 with --window or --clean]."),
    ] = None,
    neighbour_k: Annotated[
        int | None, Opt(help="The neighbour term's distance is to the k-th nearest [default 5].")
    ] = None,
    range_term: Annotated[
        bool | None,
        Opt("--range-term/--no-range-term",
            help="Add each value's distance beyond its channel's training range to the score "
            "[default: on with --clean unless --window, off otherwise]."),
    ] = None,
    contamination: Annotated[
        float | None, Opt(help="Known anomaly share of the data: also store that threshold.")
    ] = None,
    clean: Annotated[
        bool, Opt(help="The rows are known to be normal: learn every row; score by the "
                  "reconstruction error and, without --window, the range term (--trim-share 0 "
                  "--neighbours 0 --range-term unless given).")
    ] = False,
    name: Annotated[str, Opt(help="Model name (namespaces Redis statistics).")] = "seismo",
    exclude_labelled: Annotated[bool, Opt(help="Drop rows whose label y is 1.")] = False,
    label_column: Annotated[str | None, Opt(help="CSV/parquet label column.")] = None,
    device: Annotated[str, Opt(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Train an autoencoder and write a self-describing artifact."""
    setup_logging("WARNING")  # e.g. a column that looks like a time, about to be a channel
    from seismo.stream.offline.train import run_train

    run_train(
        data=data,
        out=out,
        arch=arch,
        arch_options=dict(
            hidden=hidden, activation=activation, output_activation=output_activation,
            score=score, penalty=penalty, penalty_weight=penalty_weight,
            sparsity_target=sparsity_target, noise=noise, noise_level=noise_level,
            kl_weight=kl_weight, window=window, channels=channels, filters=filters,
            kernel_size=kernel_size, latent=latent, layers=layers,
        ),  # fmt: skip
        train_options=dict(
            epochs=epochs, seed=seed, lr=lr, weight_decay=weight_decay, batch_size=batch_size,
            patience=patience, loss=loss, scaling=scaling, scale_floor=scale_floor,
            trim_share=trim_share, refit_share=refit_share, neighbours=neighbours,
            neighbour_k=neighbour_k, range_term=range_term,
        ),  # fmt: skip
        name=name,
        exclude_labelled=exclude_labelled,
        label_column=label_column,
        device=device,
        contamination=contamination,
        train_share=train_share,
        window_step=window_step,
        columns=column_spec(timestamp_column, device_column, feature_columns, drop_columns),
        clean=clean,
    )


@app.command()
def produce(
    topic: Annotated[str, Opt(envvar="SEISMO_INPUT_TOPIC", help="Topic to publish to.")],
    data: Annotated[Path, Opt(help="Rows to publish: .npz, .csv or .parquet.")],
    bootstrap_servers: Annotated[
        str, Opt(envvar="SEISMO_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers.")
    ] = "127.0.0.1:9092",
    rate: Annotated[float, Opt(help="Events per second (0 = as fast as possible).")] = 0.0,
    timestamp_column: TimestampColumn = None,
    device_column: DeviceColumn = None,
    feature_columns: FeatureColumns = None,
    drop_columns: DropColumns = None,
    positional: Annotated[
        bool, Opt("--positional", help="Send values as a list in file order, not named.")
    ] = False,
    devices: Annotated[int, Opt(help="Without a device column: spread rows over N devices.")] = 1,
    label_column: Annotated[str | None, Opt(help="Column to leave out of the values.")] = None,
    limit: Annotated[int | None, Opt(help="Publish at most N rows.")] = None,
    kafka_config: Annotated[list[str] | None, Opt(help="librdkafka KEY=VALUE, repeatable.")] = None,
    encoding: Annotated[
        str,
        Opt(help="json (the event contract) or f32 (application/x-seismo-f32: little-endian "
            "float32 values, the key is the device id)."),
    ] = "json",
) -> None:
    """Publish the rows of a file as events following the contract (id = row index)."""
    setup_logging("WARNING")  # e.g. a column that looks like a time, about to be a channel
    from seismo.stream.offline.produce import run_produce

    run_produce(
        topic=topic,
        data=data,
        bootstrap_servers=bootstrap_servers,
        rate=rate,
        device_column=device_column,
        devices=devices,
        label_column=label_column,
        limit=limit,
        kafka_config=kafka_config_or_env(kafka_config),
        encoding=encoding,
        columns=column_spec(timestamp_column, device_column, feature_columns, drop_columns,
                            label_column),
        positional=positional,
    )


@app.command(cls=SettingsCommand)
def evaluate(
    model: Annotated[Path, Opt(help="Model artifact directory.")],
    data: Annotated[Path, Opt(help="Labelled rows: .npz (X, y), .csv or .parquet.")],
    report: Annotated[Path | None, Opt(help="Write index.html + PNG plots here.")] = None,
    as_json: Annotated[bool, Opt("--json", help="Print one JSON object on stdout.")] = False,
    label_column: Annotated[str | None, Opt(help="Label column (.npz key, default y).")] = None,
    timestamp_column: TimestampColumn = None,
    device_column: DeviceColumn = None,
    feature_columns: FeatureColumns = None,
    drop_columns: DropColumns = None,
    k: Annotated[float, Opt("--k", help="Calibration threshold = mean + k*std.")] = 3.0,
    threshold_space: Annotated[str, Opt(help="log or linear: where mean/std apply.")] = "log",
    threshold: Annotated[str, Opt(help="calibration or contamination.")] = "calibration",
    image_shape: Annotated[
        str | None, Opt(help="HxW of image rows for the report (784 -> 28x28).")
    ] = None,
    device: Annotated[str, Opt(help="auto, cpu or cuda.")] = "auto",
    streaming: Annotated[
        bool, Opt("--streaming", help="Also judge the rows in order by the scorer's rolling "
                  "threshold (its k, min samples, window) and report both.")
    ] = False,
    min_samples: Annotated[
        int | None, Opt(help="With --streaming: warm-up scores, as the scorer's.")
    ] = None,
    stats_window: Annotated[
        int | None, Opt(help="With --streaming: memory of the statistics (0 = unbounded).")
    ] = None,
    learn_anomalies: Annotated[
        bool | None, Opt("--learn-anomalies/--no-learn-anomalies",
                         help="With --streaming: fold flagged scores in.")
    ] = None,
    stream_batch: Annotated[
        int, Opt(help="With --streaming: rows judged against one threshold (a micro-batch).")
    ] = 1,
    max_threshold_factor: Annotated[
        float | None, Opt(help="With --streaming: the scorers' bound on the threshold, "
                          "times the calibration's (0 = unbounded) [default 10].")
    ] = None,
) -> None:
    """Score a labelled file and report ROC-AUC, PR-AUC, precision, recall, F1."""
    setup_logging("WARNING")  # e.g. a column that looks like a time, about to be a channel
    from seismo.stream.offline.evaluate import run_evaluate, streaming_settings

    run_evaluate(
        model=model,
        data=data,
        report=report,
        as_json=as_json,
        label_column=label_column,
        k=k,
        threshold_space=threshold_space,
        threshold=threshold,
        image_shape_text=image_shape,
        device=device,
        streaming=streaming_settings(min_samples, stats_window, learn_anomalies, stream_batch,
                                     max_threshold_factor)
        if streaming else None,
        columns=column_spec(timestamp_column, device_column, feature_columns, drop_columns),
    )


@app.command("benchmark-odds")
def benchmark_odds(
    data_dir: Annotated[
        Path | None, Opt(help="Folder of ODDS .npz files [default $SEISMO_DATA/odds].")
    ] = None,
    seeds: Annotated[int, Opt(help="Splits per data set (seeds 0..N-1).")] = 10,
    datasets: Annotated[
        str | None, Opt(help="Comma-separated, e.g. cardio,shuttle [default: all 14 sets].")
    ] = None,
    split: Annotated[
        str, Opt(help="Protocol part: tune, eval or all (docs/protocol.md).")
    ] = "all",
    fold: Annotated[
        int, Opt(help="0: tune on the first half of the sets, eval on the second; 1 swaps.")
    ] = 0,
    detectors: Annotated[
        str | None,
        Opt(help="Comma-separated: seismo, autoencoder, vae, iforest, ecod, knn [default: all]."),
    ] = None,
    out: Annotated[Path | None, Opt(help="Markdown file whose section is rewritten.")] = Path(
        "docs/benchmarks.md"
    ),
    json_path: Annotated[Path | None, Opt("--json", help="Also write runs as JSON.")] = None,
    no_pyod: Annotated[bool, Opt("--no-pyod", help="Only seismo (no PyOD baselines).")] = False,
    device: Annotated[str, Opt(help="auto, cpu or cuda (seismo's model).")] = "auto",
    trim_share: Annotated[
        float | None, Opt(help="A protocol variant: seismo trained with this --trim-share.")
    ] = None,
    neighbours: Annotated[
        int | None, Opt(help="A protocol variant: seismo trained with this --neighbours.")
    ] = None,
    neighbour_k: Annotated[
        int | None,
        Opt(help="A protocol variant: the neighbour term's distance to the k-th nearest."),
    ] = None,
    refit_share: Annotated[
        float | None, Opt(help="A protocol variant: seismo trained with this --refit-share.")
    ] = None,
    epochs: Annotated[
        int | None, Opt(help="A protocol variant: seismo trained for this many epochs.")
    ] = None,
    vae_score: Annotated[
        str | None, Opt(help="A protocol variant: the default VAE scored by elbo or mse.")
    ] = None,
    range_term: Annotated[
        bool | None,
        Opt("--range-term/--no-range-term",
            help="A protocol variant: seismo with or without the range term."),
    ] = None,
    inliers_only: Annotated[
        bool,
        Opt(help="The clean setting: every detector trains on the training split's inliers "
            "(labels used to drop the outliers) and scores the whole test split."),
    ] = False,
) -> None:
    """Benchmark seismo's default model against PyOD on ODDS outlier sets."""
    from seismo.stream.bench.odds import run_benchmark_odds

    run_benchmark_odds(
        data_dir=data_dir,
        seeds=seeds,
        datasets=datasets,
        out=out,
        json_path=json_path,
        with_pyod=not no_pyod,
        device=device,
        split=split,  # type: ignore[arg-type]  # checked by select_sets
        fold=fold,
        detectors=detectors,
        overrides={k: v for k, v in (("trim_share", trim_share), ("neighbours", neighbours),
                                     ("neighbour_k", neighbour_k), ("refit_share", refit_share),
                                     ("epochs", epochs), ("vae_score", vae_score),
                                     ("range_term", range_term))
                   if v is not None},  # fmt: skip
        inliers_only=inliers_only,
    )


@app.command("benchmark-nab")
def benchmark_nab(
    data_dir: Annotated[
        Path | None, Opt(help="NAB folder (data/, labels/) [default $SEISMO_DATA/nab].")
    ] = None,
    results_dir: Annotated[
        Path, Opt(help="Where result files are written (NAB's format).")
    ] = Path("nab-results"),
    as_json: Annotated[bool, Opt("--json", help="Print one JSON object on stdout.")] = False,
    out: Annotated[Path | None, Opt(help="Markdown file whose NAB section is rewritten.")] = None,
    k: Annotated[
        float, Opt(help="Threshold: mean + k std of the smoothed log error, and of the reading.")
    ] = 3.0,
    level: Annotated[
        bool, Opt(help="Also flag a reading k std off the mean of its last 6400 (level check).")
    ] = True,
    smooth: Annotated[int, Opt(help="Windows whose log errors are averaged before judging.")] = 6,
    level_smooth: Annotated[
        int, Opt(help="Readings averaged before the level check judges them.")
    ] = 1,
    level_k: Annotated[
        float | None, Opt(help="The level check's threshold in std [default: k].")
    ] = None,
    learn_anomalies: Annotated[
        bool, Opt(help="Fold flagged windows into the window statistics too.")
    ] = False,
    level_mode: Annotated[
        str, Opt(help="std: k std off the readings' mean; range: beyond every reading so far.")
    ] = "std",
    level_tolerance: Annotated[
        float, Opt(help="level-mode range: the share of the range a reading may exceed it by.")
    ] = 0.05,
    level_clip: Annotated[
        float, Opt(help="Readings learnt clipped to mean -/+ this many std (0 = unclipped).")
    ] = 10.0,
    relative_entropy: Annotated[
        bool, Opt(help="Variant: also flag a change of the value distribution (not the scorer's).")
    ] = False,
    likelihood_tail: Annotated[
        float, Opt(help="Variant: flag instead where the HTM-style likelihood's tail is below "
                   "this (0 = off; not the scorer's).")
    ] = 0.0,
    likelihood_short: Annotated[
        int, Opt(help="With --likelihood-tail: rows whose severity is averaged.")
    ] = 10,
    seed: Annotated[int, Opt(help="Seeds the window model's training (spread over seeds).")] = 0,
    through_kafka: Annotated[
        bool, Opt(help="Replay every series through Kafka, Redis and the scorer.")
    ] = False,
    bootstrap_servers: Annotated[
        str | None, Opt(help="With --through-kafka: a broker [default: start one].")
    ] = None,
    redis_url: Annotated[
        str | None, Opt(help="With --through-kafka: a Redis [default: start one].")
    ] = None,
    split: Annotated[
        str, Opt(help="tune, eval or all: the part of the protocol (docs/protocol.md).")
    ] = "all",
    holdout: Annotated[
        str | None, Opt(help="With --split tune|eval: the category evaluated on.")
    ] = None,
) -> None:
    """Stream the NAB series through the window detector; NAB's scores, P/R and delay."""
    from seismo.stream.bench.nab import run_benchmark_nab, through_services, write_report
    from seismo.stream.bench.series_detector import SeriesRules

    rules = SeriesRules(k=k, level=level, seed=seed, smooth=smooth, level_smooth=level_smooth,
                        level_k=level_k, learn_anomalies=learn_anomalies,
                        level_mode=level_mode,  # type: ignore[arg-type]
                        level_tolerance=level_tolerance, level_clip=level_clip,
                        relative_entropy=relative_entropy, likelihood_tail=likelihood_tail,
                        likelihood_short=likelihood_short)  # fmt: skip
    try:
        rules.device_rule()  # a bad --level-* or --k: one line, before any work
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not 0.0 <= likelihood_tail < 1.0 or likelihood_short < 1:
        raise ConfigError("--likelihood-tail must be in [0, 1) and --likelihood-short at least 1")
    if (relative_entropy or likelihood_tail) and through_kafka:
        raise ConfigError("--relative-entropy and --likelihood-tail are variants of the "
                          "in-process benchmark only")
    if relative_entropy and likelihood_tail:
        raise ConfigError("--relative-entropy and --likelihood-tail are separate variants: "
                          "give one")
    progress = lambda line: typer.echo(line, err=True)  # noqa: E731
    with through_services(through_kafka, bootstrap_servers, redis_url, results_dir) as through:
        report = run_benchmark_nab(data_dir, results_dir, rules, progress, through,
                                   split=split, holdout=holdout)  # type: ignore[arg-type]
    write_report(report, as_json=as_json, out=out, echo=typer.echo)


@app.command("benchmark-skab")
def benchmark_skab(
    data_dir: Annotated[
        Path | None, Opt(help="SKAB folder (anomaly-free/, ...) [default $SEISMO_DATA/skab].")
    ] = None,
    as_json: Annotated[bool, Opt("--json", help="Print one JSON object on stdout.")] = False,
    out: Annotated[Path | None, Opt(help="Markdown file whose SKAB section is rewritten.")] = None,
    k: Annotated[float, Opt(help="Threshold: mean + k std of the log error.")] = 3.0,
    seed: Annotated[int, Opt(help="Seeds the model's training (the spread over seeds).")] = 0,
    scale_floor: Annotated[
        float, Opt(help="Smallest channel scale as a share of its level (0: plain std).")
    ] = 0.01,
    split: Annotated[
        str, Opt(help="tune, eval or all: the part of the protocol (docs/protocol.md).")
    ] = "all",
    holdout: Annotated[
        str | None, Opt(help="With --split tune|eval: the experiment folder evaluated on.")
    ] = None,
) -> None:
    """Outlier F1/FAR/MAR and changepoint NAB score of a conv1d window model on SKAB."""
    from seismo.stream.bench.skab import SkabRules, run_benchmark_skab, write_report

    report = run_benchmark_skab(data_dir, SkabRules(k=k, seed=seed, scale_floor=scale_floor),
                                progress=lambda line: typer.echo(line, err=True),
                                split=split, holdout=holdout)  # type: ignore[arg-type]
    write_report(report, as_json=as_json, out=out, echo=typer.echo)


@app.command(cls=SettingsCommand)
def retrain(
    model_store: Annotated[
        str | None, Opt(help="Model registry store: a directory or an fsspec URL.")
    ] = None,
    model_name: Annotated[str | None, Opt(help="Model name to keep current.")] = None,
    model_cache_dir: Annotated[
        Path | None, Opt(help="Local copies of a URL store's versions.")
    ] = None,
    bootstrap_servers: Annotated[str | None, Opt(help="Kafka bootstrap servers.")] = None,
    input_topic: Annotated[str | None, Opt("--input-topic", "--topic", help="Event topic.")] = None,
    redis_url: Annotated[str | None, Opt(help="Redis URL (password allowed).")] = None,
    redis_prefix: Annotated[str | None, Opt(help="Prefix of Redis keys.")] = None,
    interval_s: Annotated[
        float | None, Opt("--interval", "--interval-s", help="Seconds between retrains.")
    ] = None,
    window_size: Annotated[int | None, Opt(help="Newest events kept per device group.")] = None,
    max_groups: Annotated[int | None, Opt(help="Device groups kept in the window.")] = None,
    group_by: Annotated[str | None, Opt(help="prefix (pump-7 -> pump), device or none.")] = None,
    backfill: Annotated[int | None, Opt(help="Events per partition read back at start.")] = None,
    min_train_size: Annotated[int | None, Opt(help="Fewest events to train on.")] = None,
    holdout_fraction: Annotated[float | None, Opt(help="Newest share held back.")] = None,
    include_flagged: Annotated[
        bool | None, Opt("--include-flagged/--exclude-flagged", help="Train on flagged events.")
    ] = None,
    k: Annotated[float | None, Opt("--k", help="The scorers' k.")] = None,
    threshold_space: Annotated[str | None, Opt(help="The scorers' space: log or linear.")] = None,
    min_samples: Annotated[int | None, Opt(help="The scorers' warm-up length.")] = None,
    max_threshold_factor: Annotated[
        float | None, Opt(help="The scorers' bound on the threshold (0 = unbounded).")
    ] = None,
    max_alert_rate: Annotated[float | None, Opt(help="Gate: most false-alert rate.")] = None,
    p99_margin: Annotated[float | None, Opt(help="Gate: p99 z-score margin.")] = None,
    regime_share: Annotated[float | None, Opt(help="Flagged share meaning a new regime.")] = None,
    min_agreement: Annotated[float | None, Opt(help="Gate: share of anomalies kept.")] = None,
    max_calibration_change: Annotated[
        float | None, Opt(help="Gate: calibrated threshold within this factor of the champion's.")
    ] = None,
    epochs: Annotated[int | None, Opt(help="Override the champion's epochs.")] = None,
    keep: Annotated[int | None, Opt(help="Versions kept in the store.")] = None,
    device: Annotated[str | None, Opt(help="auto, cpu or cuda.")] = None,
    lease_ttl_s: Annotated[float | None, Opt(help="Lease expiry (s).")] = None,
    max_message_bytes: Annotated[
        int | None, Opt(help="Larger events are left out of the window.")
    ] = None,
    metrics_port: Annotated[int | None, Opt(help="Prometheus port (0 = off).")] = None,
    metrics_host: Annotated[str | None, Opt(help="Metrics bind address.")] = None,
    kafka_config: Annotated[list[str] | None, Opt(help="librdkafka KEY=VALUE, repeatable.")] = None,
    log_level: Annotated[str | None, Opt(help="DEBUG, INFO, WARNING or ERROR.")] = None,
    once: Annotated[bool, Opt("--once", help="One round now; print its result as JSON.")] = False,
    config: Annotated[Path | None, Opt(help="TOML config file (flags and env win).")] = None,
) -> None:
    """Retrain on recent events and promote challengers that pass the gate (sidecar)."""
    given = dict(locals())  # first statement: exactly the options
    given.pop("config")
    given.pop("once")
    from seismo.stream.config.loader import load_retrain_settings
    from seismo.stream.retrain.command import run_retrain

    given["kafka_config"] = parse_pairs(kafka_config)
    settings = load_retrain_settings(given, config_file=config)
    setup_logging(settings.log_level)
    run_retrain(settings, install_stop_handlers(), once=once, echo=typer.echo)


app.command()(simulate)
app.command()(demo)
app.command()(bench)
app.command(name="bench-devices")(bench_devices)
app.add_typer(models_app, name="models")
app.command(cls=SettingsCommand)(incidents)
app.command(cls=SettingsCommand)(notify)
app.add_typer(silence_app, name="silence")
app.add_typer(dev_app, name="dev")
app.command()(tail)


def main() -> None:
    """Console-script entry point: one-line errors, no tracebacks for known failures."""
    unwind_on_sigterm()
    try:
        app()
    except KeyboardInterrupt:  # a Ctrl-C before a command's own handling: no traceback
        sys.exit(130)
    except SeismoError as exc:
        print(f"seismo: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        line = kafka_config_error(exc)
        if line is None:
            raise
        print(f"seismo: error: {line}", file=sys.stderr)
        sys.exit(1)
