"""Device selection and host-to-device copies (the CPU path runs everywhere)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from seismo.models.device import select_device, to_device
from seismo.models.errors import SeismoError


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def fake_one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


@pytest.mark.parametrize("name", ["cpu", "CPU", " cpu "])
def test_cpu(name: str) -> None:
    assert select_device(name) == torch.device("cpu")


@pytest.mark.usefixtures("no_cuda")
def test_auto_without_cuda_is_cpu() -> None:
    assert select_device() == torch.device("cpu")


@pytest.mark.usefixtures("fake_one_gpu")
def test_auto_with_cuda_is_cuda() -> None:
    assert select_device("auto") == torch.device("cuda")
    assert select_device("cuda:0") == torch.device("cuda:0")


@pytest.mark.usefixtures("fake_one_gpu")
def test_cuda_index_out_of_range() -> None:
    with pytest.raises(SeismoError, match="only 1 CUDA device"):
        select_device("cuda:1")


@pytest.mark.usefixtures("no_cuda")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_requested_but_missing(name: str) -> None:
    with pytest.raises(SeismoError, match="CUDA is not available") as info:
        select_device(name)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "gpu", "", "mps"])
def test_unknown_names(name: str) -> None:
    with pytest.raises(SeismoError, match="unknown device"):
        select_device(name)


def test_to_device_cpu_wraps_without_copy() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    tensor = to_device(x, torch.device("cpu"))
    assert tensor.dtype == torch.float32
    assert tensor.device.type == "cpu"
    np.testing.assert_array_equal(tensor.numpy(), x)
    assert np.shares_memory(tensor.numpy(), x)


def test_to_device_read_only_and_strided_inputs() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    x.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = to_device(x[:, ::2], torch.device("cpu"))
    np.testing.assert_array_equal(tensor.numpy(), x[:, ::2])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_device_cuda_pinned_path() -> None:
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    tensor = to_device(x, select_device("cuda"))
    assert tensor.is_cuda
    np.testing.assert_array_equal(tensor.cpu().numpy(), x)
