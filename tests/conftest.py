"""Shared, seeded, tiny fixtures."""
import pytest
import torch

from lib.tasks.text import TextRecallConfig, make_text_recall


@pytest.fixture(autouse=True, scope="session")
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_text():
    """Text recall with a short gap and few sentences: trains in a second."""
    return make_text_recall(TextRecallConfig(distance=2, n_train=300, n_val=100, n_test=100, seed=1))


@pytest.fixture(scope="session")
def tiny_text_config():
    return TextRecallConfig(distance=2, n_train=300, n_val=100, n_test=100, seed=1)
