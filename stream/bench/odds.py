"""``seismo benchmark-odds``: seismo's default model against PyOD on ODDS outlier sets.

The protocol and the tables are `seismo.models.eval.odds_bench`; this module finds and
reads the ``.npz`` files, reports progress, and writes the results: a
markdown section ``## ODDS outlier benchmarks`` in ``--out`` (replaced on
every run, the rest of the file kept; one section per part of the protocol,
e.g. ``## ODDS outlier benchmarks, --split eval --fold 0``) and, with
``--json``, every run and summary as JSON. The parts are those of
`seismo.stream.bench.protocol.select_sets` (``docs/protocol.md``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from seismo.models.data import shared_data_dir
from seismo.models.eval.odds_bench import (
    DATASETS,
    Run,
    Summary,
    markdown_tables,
    run_benchmark,
    summarise,
)
from seismo.models.eval.odds_detectors import SEISMO, build_detectors, pyod_version
from seismo.stream.bench.protocol import Split, select_sets
from seismo.stream.errors import ConfigError

SECTION = "## ODDS outlier benchmarks"
"""Heading of the section this command owns in the markdown file."""

DOC_TITLE = "# Benchmarks\n\nOne section per benchmark, each rewritten by the command it names.\n"


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$SEISMO_DATA/odds``, else ``<repo root>/../shared/data/odds``."""
    return shared_data_dir("odds", env)


def dataset_file(data_dir: Path, name: str) -> Path:
    """The ``.npz`` of a data set: its `DATASETS` stem, ``<name>.npz`` or ``<id>_<name>.npz``."""
    candidates = [data_dir / f"{DATASETS.get(name, name)}.npz", data_dir / f"{name}.npz"]
    candidates += sorted(data_dir.glob(f"*_{name}.npz"))
    for path in candidates:
        if path.is_file():
            return path
    expected = candidates[0].name
    raise ConfigError(f"no data file for {name!r} in {data_dir} (expected e.g. {expected})")


def load_dataset(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (n, d) as float64 and ``y`` (n,) as int64 from an ``.npz``; checked for shape."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            x = np.asarray(archive["X"], dtype=np.float64)
            y = np.asarray(archive["y"]).astype(np.int64).ravel()
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} (need keys X and y): {exc}") from exc
    if x.ndim != 2 or len(x) != len(y) or not np.isin(y, (0, 1)).all():
        raise ConfigError(f"{path}: need X (n, d) and 0/1 labels y (n,), got {x.shape}, {y.shape}")
    return x, y


def environment(device: str) -> dict[str, Any]:
    """Machine, date and library versions recorded with the results."""
    import torch

    versions = {"python": platform.python_version(), "numpy": np.__version__}
    versions["torch"] = torch.__version__
    versions["seismo"] = metadata.version("seismo")
    versions["pyod"] = pyod_version() or "not installed"
    cuda = device != "cpu" and torch.cuda.is_available()
    machine = torch.cuda.get_device_name(0) if cuda else f"{os.cpu_count()}-core CPU"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "machine": f"{machine} ({platform.machine()}, {platform.system()})",
        "versions": versions,
    }


def section_heading(split: Split, fold: int) -> str:
    """The heading of one part's section; `SECTION` itself for ``--split all``.

    >>> section_heading("eval", 1)
    '## ODDS outlier benchmarks, --split eval --fold 1'
    >>> section_heading("all", 0) == SECTION
    True
    """
    return SECTION if split == "all" else f"{SECTION}, --split {split} --fold {fold}"


def part_note(names: Sequence[str], split: Split, fold: int) -> str:
    """One sentence saying which part of the protocol the sets are (``docs/protocol.md``).

    >>> part_note(["b", "d"], "eval", 0)
    'Part: the evaluation half of fold 0 (b, d), not used to choose any default.'
    """
    if split == "all":
        return "Part: every set (`--split all`), tuning and evaluation halves together."
    if split == "tune":
        return f"Part: the tuning half of fold {fold} ({', '.join(names)})."
    return (
        f"Part: the evaluation half of fold {fold} ({', '.join(names)}), "
        "not used to choose any default."
    )


def render_section(
    summaries: Sequence[Summary], env: Mapping[str, Any], command: str, seeds: Sequence[int],
    heading: str = SECTION, part: str = "", inliers_only: bool = False,
) -> str:  # fmt: skip
    """The markdown section: protocol, environment, tables."""
    trained = (
        "trained on the training split's **inliers only** (the clean setting: the labels "
        "drop its outliers before standardisation; the test split is scored whole)"
        if inliers_only
        else "trained **unsupervised on the whole training split, outliers included**"
    )
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    seed_note = ""
    if len(seeds) < 10:
        seed_note = (
            f" PyOD's own benchmark averages 10 splits; this run used {len(seeds)} to keep "
            "the run short on this machine, so the std is a rough guide."
        )
    lines = [
        heading,
        "",
        "PyOD's benchmark protocol: per data set and seed, a stratified 60/40 train/test "
        "split; standardisation with the training split's statistics; every detector "
        f"{trained}; the test split ranked by ROC-AUC and average precision (PR-AUC). "
        f"All detectors see the same splits. `{SEISMO}` is exactly what `seismo train --seed "
        "SEED` builds with every other option at its default; the PyOD detectors use PyOD's "
        f"defaults (only `random_state` = seed and `verbose=0` set).{seed_note} Seconds are the "
        "wall-clock time of one split's fit and score, as rough as the machine is busy."
        + (f" {part}" if part else ""),
        "",
        f"- command: `{command}`",
        f"- date: {env['date']}; machine: {env['machine']}",
        f"- versions: {versions}",
        f"- seeds: {', '.join(str(s) for s in seeds)}",
        "",
        markdown_tables(summaries),
        "",
    ]
    return "\n".join(lines)


def replace_section(document: str, section: str, heading: str = SECTION) -> str:
    """Put ``section`` in place of the one under ``heading`` (up to the next ``## ``), or append.

    >>> replace_section("# B\\n\\n## Other\\nx\\n", "## ODDS outlier benchmarks\\nnew\\n")
    '# B\\n\\n## Other\\nx\\n\\n## ODDS outlier benchmarks\\nnew\\n'
    >>> old = "# B\\n## ODDS outlier benchmarks\\nold\\n## Z\\nz\\n"
    >>> replace_section(old, SECTION + "\\nnew\\n")
    '# B\\n## ODDS outlier benchmarks\\nnew\\n\\n## Z\\nz\\n'
    """
    lines = document.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        return document.rstrip("\n") + "\n\n" + section
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
    )
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


def rewrite_section(out: Path, section: str, heading: str = SECTION) -> None:
    """Replace the section under ``heading`` in the markdown file ``out`` (created if new)."""
    document = out.read_text(encoding="utf-8") if out.exists() else DOC_TITLE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(replace_section(document, section, heading), encoding="utf-8")


def emit_report(
    report: Mapping[str, Any], *, as_json: bool, text: str, echo: Callable[[str], None],
    out: Path | None, section: str, heading: str,
) -> None:  # fmt: skip
    """Print a benchmark's JSON (``as_json``) or its text; with ``out``, rewrite its section."""
    echo(json.dumps(report, sort_keys=True) if as_json else text)
    if out is not None:
        rewrite_section(out, section, heading)


def write_results(
    out: Path | None,
    json_path: Path | None,
    section: str,
    runs: Sequence[Run],
    summaries: Sequence[Summary],
    env: Mapping[str, Any],
    heading: str = SECTION,
) -> None:
    """Write the section (under ``heading``) into ``out`` and the JSON record to ``json_path``.

    ``env`` is recorded as is (the environment, and the protocol's part).
    """
    if out is not None:
        rewrite_section(out, section, heading)
    if json_path is not None:
        record = {
            **env,
            "summaries": [s.to_dict() for s in summaries],
            "runs": [vars(r) for r in runs],
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def command_line(
    data_dir: Path | None,
    seeds: int,
    datasets: str | None,
    out: Path | None,
    json_path: Path | None,
    with_pyod: bool,
    device: str,
    split: Split = "all",
    fold: int = 0,
    detectors: str | None = None,
) -> str:
    """The ``seismo benchmark-odds`` call that reproduces a run (defaults left out).

    >>> command_line(None, 3, "cardio", Path("docs/benchmarks.md"), None, True, "auto")
    'seismo benchmark-odds --seeds 3 --datasets cardio --out docs/benchmarks.md'
    >>> command_line(None, 3, None, None, None, True, "cpu", "eval", 1, "seismo,knn")
    'seismo benchmark-odds --split eval --fold 1 --seeds 3 --detectors seismo,knn --device cpu'
    """
    words = ["seismo", "benchmark-odds"]
    if split != "all":
        words += ["--split", split, "--fold", str(fold)]
    words += ["--seeds", str(seeds)]
    options = {
        "--data-dir": data_dir, "--datasets": datasets, "--detectors": detectors,
        "--out": out, "--json": json_path,
    }  # fmt: skip
    for flag, value in options.items():
        if value is not None:
            words += [flag, str(value)]
    if not with_pyod:
        words.append("--no-pyod")
    if device != "auto":
        words += ["--device", device]
    return " ".join(words)


def variant_flags(overrides: Mapping[str, Any]) -> str:
    """The ``seismo train`` fields of a protocol variant as flags, for command and heading.

    >>> variant_flags({"trim_share": 0.2, "neighbours": 0}), variant_flags({})
    (' --trim-share 0.2 --neighbours 0', '')
    >>> variant_flags({"range_term": True}), variant_flags({"range_term": False})
    (' --range-term', ' --no-range-term')
    """

    def flag(key: str, value: Any) -> str:
        name = key.replace("_", "-")
        if isinstance(value, bool):
            return f" --{name}" if value else f" --no-{name}"
        return f" --{name} {value}"

    return "".join(flag(k, v) for k, v in overrides.items())


def _print_run(run: Run) -> None:
    print(
        f"{run.dataset:>12} seed {run.seed:<2} {run.detector:<17} "
        f"ROC-AUC {run.roc_auc:.3f}  PR-AUC {run.pr_auc:.3f}  {run.seconds:6.1f} s",
        file=sys.stderr,
        flush=True,
    )


def _detector_keys(detectors: str | None) -> list[str] | None:
    return [k.strip() for k in detectors.split(",") if k.strip()] if detectors else None


def run_benchmark_odds(
    *,
    data_dir: Path | None,
    seeds: int,
    datasets: str | None,
    out: Path | None,
    json_path: Path | None,
    with_pyod: bool,
    device: str,
    split: Split = "all",
    fold: int = 0,
    detectors: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    inliers_only: bool = False,
) -> list[Summary]:
    """Load the sets of one part, run every detector on ``seeds`` splits, write the tables.

    The sets are ``datasets`` (default: every set of `DATASETS`), cut to one
    part of the protocol by `seismo.stream.bench.protocol.select_sets`
    (``split``, ``fold``); ``detectors`` is a comma-separated list of
    `seismo.models.eval.odds_detectors.DETECTOR_KEYS` (default: all);
    ``overrides`` replace fields of seismo's `TrainConfig` (a protocol variant);
    ``inliers_only`` trains every detector on the training split's inliers (the
    clean setting, a section of its own).
    """
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    names = [n.strip() for n in datasets.split(",") if n.strip()] if datasets else list(DATASETS)
    names = select_sets(names, split, fold)
    directory = data_dir if data_dir is not None else default_data_dir()
    # fails fast, before any training, without PyOD or with an unknown key
    fits = build_detectors(with_pyod, device, _detector_keys(detectors), overrides)
    if not fits:
        raise ConfigError("no detector to run (check --detectors and --no-pyod)")
    data = {name: load_dataset(dataset_file(directory, name)) for name in names}
    seed_list = list(range(seeds))
    runs = run_benchmark(data, fits, seed_list, progress=_print_run, inliers_only=inliers_only)
    summaries = summarise(runs)
    env = environment(device)
    record = {**env, "protocol": {"split": split, "fold": fold, "datasets": names,
                                  "inliers_only": inliers_only},
              "seismo_train_overrides": dict(overrides or {})}
    command = command_line(
        data_dir, seeds, datasets, out, json_path, with_pyod, device, split, fold, detectors
    ) + variant_flags(overrides or {}) + (" --inliers-only" if inliers_only else "")
    # a variant never replaces the default's section: its flags are part of the heading
    heading = section_heading(split, fold) + variant_flags(overrides or {}) + (
        " --inliers-only" if inliers_only else "")
    section = render_section(
        summaries, env, command, seed_list, heading, part_note(names, split, fold), inliers_only
    )
    write_results(out, json_path, section, runs, summaries, record, heading)
    print(markdown_tables(summaries))
    return summaries
