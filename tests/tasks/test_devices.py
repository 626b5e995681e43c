"""Where the engine runs: `train.device` picks the CPU or a CUDA GPU, and a bad or absent device is one clear error."""

import pytest
import torch

from tasks.config import build_config
from tasks.devices import autocast, device_of, resolve_device, resolve_precision, to_device, torch_threads
from tasks.errors import ConfigError


@pytest.fixture
def cudnn_attention():
    """cuDNN attention on for the test, and the process's setting back after it."""
    before = torch.backends.cuda.cudnn_sdp_enabled()
    torch.backends.cuda.enable_cudnn_sdp(True)
    yield
    torch.backends.cuda.enable_cudnn_sdp(before)


@pytest.mark.parametrize(("cuda_visible", "expected"), [(True, "cuda"), (False, "cpu")])
def test_auto_picks_a_cuda_gpu_when_torch_sees_one_else_the_cpu(monkeypatch, cudnn_attention, cuda_visible, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_visible)
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize(("cuda_visible", "cudnn_kept"), [(True, False), (False, True)])
def test_on_a_gpu_attention_runs_without_cudnns_plan_per_batch_shape(monkeypatch, cudnn_attention, cuda_visible,
                                                                     cudnn_kept):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_visible)
    resolve_device("auto")
    assert torch.backends.cuda.cudnn_sdp_enabled() is cudnn_kept


def test_cpu_is_always_available():
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_asking_for_cuda_without_a_gpu_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"train\.device: cuda asked for, but torch sees no CUDA GPU"):
        resolve_device("cuda")


def test_a_device_that_is_no_device_is_refused_by_the_config_and_the_resolver():
    with pytest.raises(ConfigError, match="train.device"):
        build_config({"train": {"device": "gpu"}}, "params.yaml")
    with pytest.raises(ConfigError, match="not a device"):
        resolve_device("tpu")


def test_explicit_precision_is_kept_whatever_the_device():
    assert resolve_precision("fp32", "cuda") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"


@pytest.mark.parametrize(("avx512_bf16", "amx", "expected"),
                         [(True, False, "bf16"), (False, True, "bf16"), (False, False, "fp32")])
def test_auto_precision_on_the_cpu_is_bf16_only_with_avx512_bf16_or_amx(monkeypatch, avx512_bf16, amx, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert resolve_precision("auto", "cpu") == expected


@pytest.mark.parametrize(("bf16_supported", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_a_cuda_gpu_is_bf16_only_where_the_gpu_supports_it(monkeypatch, bf16_supported, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16_supported)
    assert resolve_precision("auto", "cuda") == expected
    assert resolve_precision("auto", "cuda:0") == expected


def test_batches_move_to_the_models_device_and_autocast_matches_it():
    model = torch.nn.Linear(4, 2)
    device = device_of(model)
    batch = to_device({"input_ids": torch.ones(2, 3, dtype=torch.long)}, device)
    assert batch["input_ids"].device == device
    with autocast("bf16", device):
        assert torch.is_autocast_enabled(device.type)
    with autocast("fp32", device):
        assert not torch.is_autocast_enabled(device.type)


def test_torch_threads_hold_inside_the_block_only_even_when_it_fails():
    torch.set_num_threads(2)
    with pytest.raises(RuntimeError), torch_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("a candidate failed")
    assert torch.get_num_threads() == 2


def test_torch_threads_opened_in_two_threads_at_once_leave_the_count_of_before_them():
    import threading

    torch.set_num_threads(2)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with torch_threads(1):
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second():
        first_in.wait(10)
        with torch_threads(1):
            second_in.set()
            first_out.wait(10)  # the first block ends while this one is open

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)
    assert torch.get_num_threads() == 2
