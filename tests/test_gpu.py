"""Runs on a CUDA GPU: the environment names the GPU and its CUDA/cuDNN builds, and recurrent layers run on
cuDNN's fused kernels."""
import pytest
import torch

from lib.models import ModelConfig
from lib.runtime import environment
from lib.train import TrainConfig, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def test_a_cuda_run_records_its_gpu(tiny_text):
    result = train(tiny_text, ModelConfig(kind="gru", hidden=8), TrainConfig(epochs=2, patience=0, device="cuda"))
    assert result.status == "completed" and len(result.history) == 2
    assert result.env["device"].startswith("cuda")
    assert result.env["device_name"] == torch.cuda.get_device_name(torch.device(result.env["device"]))
    assert environment("cuda")["device_name"] == result.env["device_name"]
    assert result.env["cuda"] == torch.version.cuda and result.env["cudnn"] == torch.backends.cudnn.version()
    assert all(h["epoch_seconds"] > 0 for h in result.history)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_recurrent_layers_use_cudnn_kernels(tiny_text, kind):
    assert torch.backends.cudnn.is_available() and torch.backends.cudnn.enabled
    result = train(tiny_text, ModelConfig(kind=kind, hidden=8), TrainConfig(epochs=1, patience=0, device="cuda"))
    x = tiny_text.train.x[:16].cuda()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        result.model(x)
    ops = {e.name for e in prof.events()}
    assert "aten::_cudnn_rnn" in ops, sorted(ops)
