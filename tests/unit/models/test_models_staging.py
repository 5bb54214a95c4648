"""Host staging of score batches: the buffer logic the CUDA path uses, run on CPU."""

from __future__ import annotations

import numpy as np
import torch

from seismo.models.detector import AutoencoderDetector
from seismo.models.staging import HostStaging
from seismo.models.training import TrainResult


def test_the_buffer_grows_to_the_largest_batch_and_is_reused_below_it() -> None:
    staging = HostStaging(torch.device("cpu"))
    assert not staging.pin  # no CUDA target: nothing to page-lock
    big = np.arange(12, dtype=np.float32).reshape(6, 2)
    first = staging.stage(big)
    assert staging.capacity == 6 and torch.equal(first, torch.from_numpy(big))
    small = -np.ones((2, 2), dtype=np.float64)
    second = staging.stage(small)
    assert staging.capacity == 6 and second.dtype == torch.float32
    assert torch.equal(second, torch.full((2, 2), -1.0))
    assert second.data_ptr() == first.data_ptr()  # the same host rows, not a new buffer


def test_a_batch_of_another_width_gets_its_own_buffer() -> None:
    staging = HostStaging(torch.device("cpu"))
    staging.stage(np.zeros((4, 3), dtype=np.float32))
    wide = staging.stage(np.ones((2, 5), dtype=np.float32))
    assert wide.shape == (2, 5) and staging.capacity == 2


def test_staging_never_writes_into_the_callers_array() -> None:
    staging = HostStaging(torch.device("cpu"))
    batch = np.ones((3, 2), dtype=np.float32)
    staged = staging.stage(batch)
    staged += 1
    assert (batch == 1).all()


def test_a_detector_with_staging_scores_exactly_as_one_without(
    trained: TrainResult, inliers: np.ndarray
) -> None:
    plain = trained.detector
    staged = AutoencoderDetector(plain.module, plain.scaler, config=plain.config,
                                 device="cpu", chunk_rows=100, staging=True)  # fmt: skip
    assert staged.staging is not None and plain.staging is None
    rows = inliers[:350]  # four chunks, the last one shorter
    np.testing.assert_array_equal(staged.score_batch(rows), plain.score_batch(rows))
    scores, errors = staged.score_with_features(rows)
    np.testing.assert_array_equal(errors, plain.feature_errors(rows))
    assert staged.staging.capacity == 100
