"""Fixtures shared by the policy tests."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread, as RT1Policy picks on a 2-core machine (two stall each other when the machine is
    busy); the previous count comes back for the other test modules."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
