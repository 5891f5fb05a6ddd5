"""Writes the small RLDS datasets under tests/fixtures/rlds/ with the real tensorflow-datasets writer.

Run it in a throw-away environment, never the project's (TensorFlow is not a dependency of the project):

    python3 -m venv /tmp/tfds-venv && /tmp/tfds-venv/bin/pip install tensorflow-cpu tensorflow-datasets
    /tmp/tfds-venv/bin/python scripts/make_rlds_fixture.py tests/fixtures/rlds

It writes two TFDS datasets, each as TFDS lays one out (`NAME/VERSION/` with the TFRecord shard,
`features.json` and `dataset_info.json`):

- `fractal20220817_data/0.1.0`: three short episodes with exactly the feature structure of Open
  X-Embodiment's `fractal20220817_data` (RT-1's data): 256x320 JPEG frames, USE-shaped 512-d instruction
  embeddings, RT-1's action dictionary with `terminate_episode` one-hot as [terminate, arm, base]. The values
  are synthetic (sharp-edged shapes on gradients, so JPEG decoders that differ would show it).
- `toy_eef_delta_rlds/1.0.0`: one episode with a 7-d end-effector action vector, the shape most other OXE
  datasets have, which the importer must refuse.

Beside each, `expected.npz` holds what TensorFlow itself reads back (`builder.as_dataset`, records in file
order): every action field, instruction, embedding and the SHA-256 of every decoded frame, so the tests
compare the project's reader with TensorFlow's without TensorFlow.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

INSTRUCTIONS = ("pick rxbar chocolate from middle drawer", "move blue chip bag near apple", "open top drawer")
# (instruction, steps, mode per step as RT-1's terminate_episode one-hot index or None for all-zero)
EPISODES = (
    (0, 5, [1, 1, 1, 1, 0]),
    (1, 7, [1, 1, 2, 2, 1, 0, None]),
    (2, 4, [1, 1, 1, 0]),
)
HEIGHT, WIDTH = 256, 320


def _frame(rng: np.random.Generator) -> np.ndarray:
    """A gradient with a few solid rectangles and discs: sharp colour edges on smooth ground."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = np.stack([x * 255 // WIDTH, y * 255 // HEIGHT, (x + y) * 255 // (HEIGHT + WIDTH)], -1)
    frame = (base * rng.uniform(0.4, 1.0, 3)).astype(np.uint8)
    for _ in range(4):
        top, left = rng.integers(0, HEIGHT - 40), rng.integers(0, WIDTH - 40)
        frame[top : top + rng.integers(10, 40), left : left + rng.integers(10, 40)] = rng.integers(0, 256, 3)
    for _ in range(2):
        cy, cx, r = rng.integers(20, HEIGHT - 20), rng.integers(20, WIDTH - 20), rng.integers(5, 20)
        frame[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.integers(0, 256, 3)
    return frame


def _embedding(instruction: int) -> np.ndarray:
    vector = np.random.default_rng(1000 + instruction).normal(size=512).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _fractal_step(rng: np.random.Generator, instruction: int, mode: int | None, first: bool, last: bool) -> dict:
    one_hot = np.zeros(3, np.int32)
    if mode is not None:
        one_hot[mode] = 1
    base = mode == 2
    return {
        "action": {
            "base_displacement_vector": (rng.uniform(-0.5, 0.5, 2) * base).astype(np.float32),
            "base_displacement_vertical_rotation": (rng.uniform(-1, 1, 1) * base).astype(np.float32),
            "gripper_closedness_action": rng.choice([-1.0, 0.0, 1.0], 1).astype(np.float32),
            "rotation_delta": rng.uniform(-0.6, 0.6, 3).astype(np.float32),
            "terminate_episode": one_hot,
            # Up to 1.3: values past the spec's bounds must be clipped in the tokens but kept in the actions.
            "world_vector": (rng.uniform(-0.3, 0.3, 3) * rng.choice([1.0, 4.3])).astype(np.float32),
        },
        "is_first": first,
        "is_last": last,
        "is_terminal": last,
        "observation": {
            "base_pose_tool_reached": rng.normal(size=7).astype(np.float32),
            "gripper_closed": rng.uniform(0, 1, 1).astype(np.float32),
            "gripper_closedness_commanded": rng.uniform(0, 1, 1).astype(np.float32),
            "height_to_bottom": rng.uniform(0, 1, 1).astype(np.float32),
            "image": _frame(rng),
            "natural_language_embedding": _embedding(instruction),
            "natural_language_instruction": INSTRUCTIONS[instruction],
            "orientation_box": rng.normal(size=(2, 3)).astype(np.float32),
            "orientation_start": rng.normal(size=4).astype(np.float32),
            "robot_orientation_positions_box": rng.normal(size=(3, 3)).astype(np.float32),
            "rotation_delta_to_go": rng.normal(size=3).astype(np.float32),
            "src_rotation": rng.normal(size=4).astype(np.float32),
            "vector_to_go": rng.normal(size=3).astype(np.float32),
            "workspace_bounds": rng.normal(size=(3, 3)).astype(np.float32),
        },
        "reward": np.float32(last),
    }


def _tensor(shape: tuple[int, ...], dtype: object) -> tfds.features.Tensor:
    return tfds.features.Tensor(shape=shape, dtype=dtype)


class Fractal20220817Data(tfds.core.GeneratorBasedBuilder):
    """fractal20220817_data's features (the TFDS catalog's listing) with a few synthetic episodes."""

    VERSION = tfds.core.Version("0.1.0")

    def _info(self) -> tfds.core.DatasetInfo:
        f32 = np.float32
        step = tfds.features.FeaturesDict(
            {
                "action": tfds.features.FeaturesDict(
                    {
                        "base_displacement_vector": _tensor((2,), f32),
                        "base_displacement_vertical_rotation": _tensor((1,), f32),
                        "gripper_closedness_action": _tensor((1,), f32),
                        "rotation_delta": _tensor((3,), f32),
                        "terminate_episode": _tensor((3,), np.int32),
                        "world_vector": _tensor((3,), f32),
                    }
                ),
                "is_first": np.bool_,
                "is_last": np.bool_,
                "is_terminal": np.bool_,
                "observation": tfds.features.FeaturesDict(
                    {
                        "base_pose_tool_reached": _tensor((7,), f32),
                        "gripper_closed": _tensor((1,), f32),
                        "gripper_closedness_commanded": _tensor((1,), f32),
                        "height_to_bottom": _tensor((1,), f32),
                        "image": tfds.features.Image(shape=(HEIGHT, WIDTH, 3), dtype=np.uint8, encoding_format="jpeg"),
                        "natural_language_embedding": _tensor((512,), f32),
                        "natural_language_instruction": tfds.features.Text(),
                        "orientation_box": _tensor((2, 3), f32),
                        "orientation_start": _tensor((4,), f32),
                        "robot_orientation_positions_box": _tensor((3, 3), f32),
                        "rotation_delta_to_go": _tensor((3,), f32),
                        "src_rotation": _tensor((4,), f32),
                        "vector_to_go": _tensor((3,), f32),
                        "workspace_bounds": _tensor((3, 3), f32),
                    }
                ),
                "reward": tfds.features.Scalar(dtype=f32),
            }
        )
        aspects = {name: np.bool_ for name in ("already_success", "feasible", "has_aspects", "success", "undesirable")}
        attributes = {}
        for name in ("collection_mode", "data_type", "env", "location", "objects_family", "task_family"):
            attributes[name] = np.int64
            attributes[f"{name}_name"] = tfds.features.Text()
        features = {
            "aspects": tfds.features.FeaturesDict(aspects),
            "attributes": tfds.features.FeaturesDict(attributes),
            "steps": tfds.features.Dataset(step),
        }
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        rng = np.random.default_rng(0)
        for number, (instruction, length, modes) in enumerate(EPISODES):
            steps = [_fractal_step(rng, instruction, modes[i], i == 0, i == length - 1) for i in range(length)]
            attributes = {}
            for name in ("collection_mode", "data_type", "env", "location", "objects_family", "task_family"):
                attributes[name] = number
                attributes[f"{name}_name"] = f"{name} {number}"
            aspects = {
                "already_success": False,
                "feasible": True,
                "has_aspects": True,
                "success": number != 1,
                "undesirable": False,
            }
            yield f"episode_{number}", {"aspects": aspects, "attributes": attributes, "steps": steps}


class ToyEefDeltaRlds(tfds.core.GeneratorBasedBuilder):
    """One episode with a 7-d end-effector action (dx, dy, dz, droll, dpitch, dyaw, gripper)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        step = tfds.features.FeaturesDict(
            {
                "action": _tensor((7,), np.float32),
                "is_first": np.bool_,
                "is_last": np.bool_,
                "is_terminal": np.bool_,
                "language_instruction": tfds.features.Text(),
                "observation": tfds.features.FeaturesDict(
                    {"image": tfds.features.Image(shape=(64, 64, 3), dtype=np.uint8, encoding_format="jpeg")}
                ),
                "reward": tfds.features.Scalar(dtype=np.float32),
            }
        )
        features = tfds.features.FeaturesDict({"steps": tfds.features.Dataset(step)})
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        rng = np.random.default_rng(1)
        steps = [
            {
                "action": rng.uniform(-1, 1, 7).astype(np.float32),
                "is_first": i == 0,
                "is_last": i == 2,
                "is_terminal": i == 2,
                "language_instruction": "put the spoon in the pot",
                "observation": {"image": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)},
                "reward": np.float32(i == 2),
            }
            for i in range(3)
        ]
        yield "episode_0", {"steps": steps}


def _expected(builder: tfds.core.DatasetBuilder) -> dict[str, np.ndarray]:
    """What TensorFlow reads back, flattened over the episodes in file order."""
    out: dict[str, list] = {"episode_length": [], "frame_sha256": []}
    for episode in tfds.as_numpy(builder.as_dataset(split="train", shuffle_files=False)):
        steps = list(episode["steps"])
        out["episode_length"].append(len(steps))
        for step in steps:
            out["frame_sha256"].append(hashlib.sha256(step["observation"]["image"].tobytes()).hexdigest())
            fields = step["action"] if isinstance(step["action"], dict) else {"vector": step["action"]}
            for name, value in fields.items():
                out.setdefault(f"action/{name}", []).append(value)
            observation = step["observation"]
            for name in ("natural_language_embedding", "natural_language_instruction"):
                if name in observation:
                    out.setdefault(name, []).append(observation[name])
    return {name: np.array(values) for name, values in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write the datasets in (e.g. tests/fixtures/rlds)")
    args = parser.parse_args()
    for builder_class in (Fractal20220817Data, ToyEefDeltaRlds):
        builder = builder_class(data_dir=str(args.out))
        shutil.rmtree(builder.data_dir, ignore_errors=True)
        builder.download_and_prepare()
        np.savez_compressed(Path(builder.data_dir) / "expected.npz", **_expected(builder))
        print(f"wrote {builder.data_dir}")


if __name__ == "__main__":
    main()
