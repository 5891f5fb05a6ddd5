"""Helpers shared by the data tests (a plain module: conftest files are not for importing)."""

from pathlib import Path

import numpy as np

from rt_policy_node.policies.text import default_text_encoder

FRAME = 32  # square frames at the stored size: the resize is the identity and pixel (0, 0) survives


class CountingEncoder:
    """The real sentence encoder, counting the instructions it is asked to embed."""

    dim = 512
    name = "counting-use"

    def __init__(self):
        self.calls = []

    def embed(self, text):
        self.calls.append(text)
        return default_text_encoder().embed(text)


def identity_frame(frame: np.ndarray) -> np.ndarray:
    return np.array(frame)


# RLDS datasets written by the real tensorflow-datasets writer (scripts/make_rlds_fixture.py).
RLDS_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rlds"
FRACTAL = RLDS_FIXTURES / "fractal20220817_data" / "0.1.0"
