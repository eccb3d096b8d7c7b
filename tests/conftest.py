"""Shared, seeded, tiny fixtures."""
import pytest
import torch

from lib.tasks.text import TextRecallConfig, make_text_recall

THREADS = 2  # torch threads for the whole suite, so results do not depend on the machine (CI has 2 cores)


@pytest.fixture(autouse=True, scope="session")
def _session_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def torch_threads(_session_threads) -> int:
    """The torch thread count the test starts with; whatever the test sets, it is put back afterwards."""
    before = torch.get_num_threads()
    try:
        yield before
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_text_config() -> TextRecallConfig:
    """Text recall with a short gap and few sentences: trains in a second."""
    return TextRecallConfig(distance=2, n_train=300, n_val=100, n_test=100, seed=1)


@pytest.fixture(scope="session")
def tiny_text(tiny_text_config):
    return make_text_recall(tiny_text_config)
