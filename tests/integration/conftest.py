"""Fixtures of the scorer's integration tests: a small model and a test's streams."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from seismo.models.artifact import build_artifact, save_artifact
from seismo.models.config import TrainConfig
from seismo.models.training import train_autoencoder
from tests.integration.scorer_streams import FEATURES, Streams, normal_rows


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model (d=4) trained once for the module."""
    result = train_autoencoder(
        normal_rows(400, seed=1),
        train=TrainConfig(epochs=30, batch_size=32, lr=3e-3, patience=5, seed=0,
                          trim_share=0.0, neighbours=0),  # clean rows: nothing to leave out
        device="cpu",
    )
    artifact = build_artifact(result, name="itest", feature_names=FEATURES)
    return save_artifact(artifact, tmp_path_factory.mktemp("scorer-model") / "model")


@pytest.fixture
def streams(
    kafka_bootstrap: str, redis_url: str, topic_name: str, group_id: str,
    redis_key_prefix: str, redis_client: redis.Redis, model_dir: Path,
) -> Streams:
    """Uses ``redis_client`` so the test's Redis keys are deleted afterwards."""
    return Streams(
        kafka_bootstrap, redis_url, topic_name, group_id, redis_key_prefix.rstrip(":"), model_dir
    )
