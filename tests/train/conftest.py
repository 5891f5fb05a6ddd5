"""A small dataset of synthetic episode bags and a tiny RT-1 config, shared by the training tests."""

import json

import pytest
import torch

from rt_policy_node.data.builder import build_dataset
from rt_policy_node.data.cli import resize_frame
from rt_policy_node.data.synthetic import write_synthetic_episodes
from rt_policy_node.policies.rt1.config import RT1Config
from rt_policy_node.policies.text import default_text_encoder

SIZE = 32


@pytest.fixture(autouse=True)
def one_thread():
    """Training in-process on one thread: on a shared 2-core machine, two threads are many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    write_synthetic_episodes(root / "bags", episodes=4, steps=8, frame_size=(40, 48))
    build_dataset(
        [root / "bags"], root / "dataset", SIZE, lambda f: resize_frame(f, SIZE), default_text_encoder(), progress=False
    )
    return root / "dataset"


@pytest.fixture(scope="session")
def tiny_config():
    return RT1Config(
        efficientnet="b0",
        image_size=SIZE,
        crop_size=28,
        token_dim=32,
        model_dim=32,
        num_layers=1,
        num_heads=2,
        head_dim=16,
        time_steps=4,
        image_tokens=2,
        token_learner_hidden=8,
    )


@pytest.fixture(scope="session")
def tiny_config_file(tmp_path_factory, tiny_config):
    path = tmp_path_factory.mktemp("model_config") / "tiny.json"
    path.write_text(json.dumps(tiny_config.to_dict()))
    return path
