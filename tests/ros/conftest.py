"""Fixtures for the node tests: a probe node and a factory for node processes that are always stopped."""

from __future__ import annotations

import pytest
from harness import NodeProcess, Probe


@pytest.fixture
def probe():
    probe = Probe()
    yield probe
    probe.close()


@pytest.fixture
def launch(tmp_path):
    """`launch(executable, node_name, params=..., config=...)` -> a NodeProcess stopped after the test."""
    started: list[NodeProcess] = []

    def start(executable: str, node_name: str, **kwargs) -> NodeProcess:
        process = NodeProcess(executable, node_name, tmp_path / "logs", **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
