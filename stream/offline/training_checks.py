"""What ``seismo train`` warns about: training data that trains a model, but a poor one.

Neither is an error: the model is written and scores. But nothing downstream
would say why it misses or over-alerts, so the trainer says it once, at the
moment it can be fixed (found by a stranger helper on their own data).

- A **constant column**: the scaler gives it scale 1 in its own units, or
  its ``--scale-floor`` share of its value
  (:meth:`~seismo.models.scaler.StandardScaler.fit`), so a later change of
  less than a few units of it barely moves the score (a pressure of 101.3
  that becomes 102.3 is found by no threshold).
- **A label learnt as a channel**: a column named like a label (``label``,
  ``is_anomaly``, ...) holding only 0 and 1, given without ``--label-column``,
  is a channel of the model: events must then carry it, and the anomalies it
  marks were learnt as normal.
- **Few validation rows**: the scorer's threshold starts from the mean and
  std of the validation rows' scores (the calibration) until enough live
  scores are in; a handful of rows gives a mean and std that can be far off.

Pure: arrays in, sentences out.

Examples
--------
>>> x = np.array([[1.0, 101.3], [2.0, 101.3], [3.0, 101.3]])
>>> for line in training_warnings(x, ["temp", "pressure"], calibration_rows=500):
...     print(line)
column 'pressure' is constant in the training data (101.3): its scale falls back to 1 in its \
own units (or --scale-floor times its value), so a change of less than a few units will barely \
move the score; train on data where it moves, or leave it out (--drop-columns pressure)
>>> training_warnings(np.zeros((2, 7)), list("abcdefg"), 500)[0][:74]
"7 columns are constant in the training data ('a', 'b', 'c', 'd', 'e' and 2"
>>> training_warnings(np.array([[1.5, 0.0], [2.5, 1.0]]), ["temp", "label"], 500)[0][:70]
"column 'label' looks like labels (only 0 and 1) and was learnt as a ch"
>>> training_warnings(x[:, :1], ["temp"], calibration_rows=2)
['the threshold starts from the scores of only 2 validation rows (fewer than 50): its mean \
and std may be far off until the scorer has its own; train on more rows']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seismo.models.columns import STEP_MARK, label_like_columns

#: Fewer validation rows than this make the starting threshold a guess.
MIN_CALIBRATION_ROWS = 50


def constant_channels(x: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Each channel whose every training value is the same, with that value.

    A window model's columns ``temp@t-3 ... temp@t-0`` count as one channel,
    constant when all of them are.

    >>> constant_channels(np.array([[1.0, 5.0], [2.0, 5.0]]), ["a", "b"])
    {'b': 5.0}
    >>> constant_channels(np.array([[7.0, 1.0, 7.0, 2.0]]).repeat(2, 0),
    ...                   ["p@t-1", "q@t-1", "p@t-0", "q@t-0"])
    {'p': 7.0}
    """
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] != len(names):
        return {}
    flat = np.ptp(x, axis=0) == 0
    channels: dict[str, list[int]] = {}
    for j, name in enumerate(names):
        channels.setdefault(name.split(STEP_MARK)[0], []).append(j)
    out: dict[str, float] = {}
    for channel, columns in channels.items():
        values = x[0, columns]
        if flat[columns].all() and (values == values[0]).all():
            out[channel] = float(values[0])
    return out


def training_warnings(
    x: np.ndarray, names: Sequence[str], calibration_rows: int
) -> list[str]:
    """The warnings for training rows ``x`` ``(n, d)`` named ``names``, and the number
    of validation rows the calibration came from."""
    lines = []
    constant = constant_channels(x, names)
    scale = ("falls back to 1 in its own units (or --scale-floor times its value), so a "
             "change of less than a few units will barely move the score")  # fmt: skip
    if len(constant) == 1:
        [(name, value)] = constant.items()
        lines.append(
            f"column {name!r} is constant in the training data ({value:g}): its scale "
            f"{scale}; train on data where it moves, or leave it out (--drop-columns {name})"
        )
    elif constant:
        shown = ", ".join(repr(name) for name in list(constant)[:5])
        more = f" and {len(constant) - 5} more" if len(constant) > 5 else ""
        lines.append(
            f"{len(constant)} columns are constant in the training data ({shown}{more}): "
            f"each one's scale {scale}; train on data where they move, or leave them out "
            "(--drop-columns)"
        )
    for name in label_like_columns(x, names):
        lines.append(
            f"column {name!r} looks like labels (only 0 and 1) and was learnt as a channel:"
            f" events must carry it, and the rows it marks were learnt as normal; if it "
            f"holds labels, give --label-column {name} (--exclude-labelled trains without "
            "the rows marked 1)"
        )
    if calibration_rows < MIN_CALIBRATION_ROWS:
        lines.append(
            f"the threshold starts from the scores of only {calibration_rows} validation rows "
            f"(fewer than {MIN_CALIBRATION_ROWS}): its mean and std may be far off until the "
            "scorer has its own; train on more rows"
        )
    return lines
