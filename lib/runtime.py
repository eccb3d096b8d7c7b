"""Device choice, clock synchronisation and the environment record attached to every timing."""
from __future__ import annotations

import platform

import torch

from lib.errors import ConfigError

__version__ = "0.1.0"


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for but CUDA is not available; use 'auto' or 'cpu'.")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'.")
    return torch.device(device)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work so that a clock read afterwards means something."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def environment(device: torch.device | str = "cpu") -> dict:
    device = torch.device(device)
    env = {
        "lookback": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        or platform.machine(),
        "threads": torch.get_num_threads(),
        "mkldnn_enabled": bool(torch.backends.mkldnn.enabled),
    }
    return env
