"""`seismo train` option handling: CLI options -> architecture config, pure."""

from __future__ import annotations

import pytest

from seismo.models.config import DenseConfig, default_hidden
from seismo.stream.errors import ConfigError
from seismo.stream.offline.train import build_config, describe


def test_dense_defaults_come_from_the_dimension() -> None:
    config = build_config("dense", 21, {})
    assert config == DenseConfig(n_features=21, hidden=default_hidden(21))


def test_options_map_onto_config_fields() -> None:
    config = build_config(
        "dense", 784, {"hidden": "250,10", "activation": "tanh", "output_activation": "sigmoid"}
    )
    assert config == DenseConfig(
        n_features=784, hidden=(250, 10), activation="tanh", output_activation="sigmoid"
    )
    assert describe(config) == "dense autoencoder 784-250-10-250-784"


@pytest.mark.parametrize(
    ("arch", "options", "message"),
    [
        ("dense", {"kl_weight": 0.5}, "--kl-weight does not apply to --arch dense"),
        ("dense", {"hidden": "64,x"}, "--hidden expects comma-separated integers"),
        ("dense", {"activation": "swish"}, "--arch dense: activation 'swish' is not one of"),
        ("nope", {}, "unknown architecture 'nope'"),
    ],
)
def test_bad_options_are_one_line_config_errors(arch, options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(arch, 8, options)


def test_none_means_not_given() -> None:
    assert build_config("dense", 8, {"kl_weight": None, "window": None}).n_features == 8


@pytest.mark.parametrize(
    ("arch", "options", "expected"),
    [
        ("sparse", {"penalty": "kl", "penalty_weight": 0.1, "sparsity_target": 0.05}, {}),
        ("denoising", {"noise": "mask", "noise_level": 0.3}, {}),
        ("vae", {"hidden": "16,2", "kl_weight": 0.5, "score": "elbo"}, {"hidden": (16, 2)}),
        ("conv1d", {"window": 4, "filters": "8,4", "kernel_size": 3}, {"channels": 2}),
        ("lstm", {"window": 2, "hidden": "32", "latent": 4}, {"channels": 4, "hidden": 32}),
    ],
)
def test_every_family_member_is_reachable_from_the_cli(arch, options, expected) -> None:
    config = build_config(arch, 8, options)
    assert config.arch == arch and config.n_features == 8
    data = config.to_dict()
    for key, value in expected.items():
        assert getattr(config, key) == value, key
    for option, value in options.items():
        if option not in ("hidden", "filters"):
            field = {"penalty_weight": "weight", "sparsity_target": "target"}.get(option, option)
            assert data[field] == value, option


def test_sequence_shape_must_divide_the_features() -> None:
    with pytest.raises(ConfigError, match="--window 3 x --channels 2 must equal the 8 features"):
        build_config("lstm", 8, {"window": 3})
    with pytest.raises(ConfigError, match="--window is required"):
        build_config("conv1d", 8, {})


def test_train_warns_of_a_constant_column_and_of_too_few_validation_rows(tmp_path, capsys):
    """Both trained a model that scores, silently: a constant pressure of 101.3 whose later
    102.3 no threshold found, and a threshold calibrated on 2 rows (a stranger helper)."""
    import numpy as np

    from seismo.stream.offline.train import run_train

    rng = np.random.default_rng(0)
    lines = ["temp,pressure"] + [f"{t:.3f},101.3" for t in rng.normal(20, 1, 20)]
    data = tmp_path / "tiny.csv"
    data.write_text("\n".join(lines) + "\n")
    run_train(data=data, out=tmp_path / "m", arch="dense", arch_options={},
              train_options={"epochs": 2}, name="tiny", exclude_labelled=False,
              label_column=None, device="cpu", clean=True)  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert ("warning: column 'pressure' is constant in the training data (101.3): its scale "
            "falls back to 1 in its own units") in err, err  # fmt: skip
    assert "warning: the threshold starts from the scores of only 2 validation rows" in err, err
    assert (tmp_path / "m").is_dir()  # warnings, not errors: the model is written


def test_an_unknown_device_is_refused_before_the_data_is_read(tmp_path) -> None:
    """A stranger's ``--device gpu`` loaded the data and started training first."""
    from seismo.stream.offline.train import run_train

    with pytest.raises(ConfigError, match="--device: unknown device 'gpu'"):
        run_train(data=tmp_path / "not-read.csv", out=tmp_path / "m", arch="dense",
                  arch_options={}, train_options={}, name="x", exclude_labelled=False,
                  label_column=None, device="gpu")  # fmt: skip


def test_window_without_a_time_column_names_the_column_not_the_architecture(tmp_path) -> None:
    """A CSV of readings without a ``timestamp`` column and ``--window 3`` (the default
    VAE) said "--window does not apply to --arch vae", which sent a user to change the
    architecture; the window needs the readings' order (found writing a start-up test)."""
    from seismo.stream.offline.train import run_train

    data = tmp_path / "readings.csv"
    data.write_text("rpm,temp\n" + "1.0,2.0\n" * 20)
    with pytest.raises(ConfigError) as caught:
        run_train(data=data, out=tmp_path / "m", arch="vae", arch_options={"window": 3},
                  train_options={}, name="x", exclude_labelled=False, label_column=None,
                  device="cpu")  # fmt: skip
    assert str(caught.value) == (
        f"--window 3 builds windows of readings from a time series: a CSV file with a "
        f"'timestamp' column, which {data} is not (name your time column with "
        "--timestamp-column); for rows that already are flattened windows, use --arch "
        "conv1d or lstm"
    )
    assert not (tmp_path / "m").exists()


def test_window_step_trains_spaced_windows_and_says_so_in_the_feature_names(tmp_path) -> None:
    """`seismo score --window 3 --window-step 2` scores windows of readings 2 apart, but
    `seismo train --window` could only learn consecutive readings: a model trained so and
    served under the scorer's step read windows twice as long as it had learnt, without a
    sign. `--window-step` trains the scorer's windows, and the names record the step."""
    import numpy as np

    from seismo.models.artifact import load_artifact
    from seismo.models.columns import window_of, window_step_of
    from seismo.stream.offline.train import run_train

    data = tmp_path / "series.csv"
    data.write_text("timestamp,rpm\n" + "".join(f"{1000 * i},{np.sin(i / 5):.4f}\n"
                                                  for i in range(200)))  # fmt: skip
    out = run_train(data=data, out=tmp_path / "m", arch="dense", arch_options={"window": 3},
                    train_options={"epochs": 1}, name="x", exclude_labelled=False,
                    label_column=None, device="cpu", train_share=1.0,
                    window_step=2)  # fmt: skip
    names = load_artifact(out).feature_names
    assert names == ["rpm@t-4", "rpm@t-2", "rpm@t-0"]
    assert (window_of(names), window_step_of(names)) == (3, 2)
    with pytest.raises(ConfigError, match="--window-step 2: give --window 2 or more too"):
        run_train(data=data, out=tmp_path / "n", arch="dense", arch_options={},
                  train_options={"epochs": 1}, name="x", exclude_labelled=False,
                  label_column=None, device="cpu", window_step=2)  # fmt: skip
    with pytest.raises(ConfigError, match="--window-step 3: give --window 2 or more too"):
        run_train(data=data, out=tmp_path / "n", arch="dense", arch_options={"window": 1},
                  train_options={"epochs": 1}, name="x", exclude_labelled=False,
                  label_column=None, device="cpu", window_step=3)  # fmt: skip


def test_series_windows_are_the_scorers_windows_for_any_step() -> None:
    """The training windows are those a scorer's WindowBuffer yields for the same
    readings, window and step: one layout on both sides."""
    import numpy as np

    from seismo.models.data import series_windows
    from seismo.stream.scoring.window_buffer import WindowBuffer

    readings = np.arange(40.0).reshape(20, 2)
    for window, step in ((3, 1), (3, 2), (4, 5)):
        buffer = WindowBuffer(window=window, stride=1, channels=2, step=step)
        scored = [w.values for i, r in enumerate(readings)
                  if (w := buffer.push("d", r, ts=i, partition=0, offset=i)) is not None]
        np.testing.assert_array_equal(np.stack(scored),
                                      series_windows(readings, window, step=step))  # fmt: skip
