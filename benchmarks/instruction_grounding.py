"""Does a policy act on the colour it is asked for? An offline check on contrastive demonstrations.

`rt-collect --every-colour` records each layout once per colour. For every layout with all four, the policy
replays the first `--steps` frames of each episode under that episode's instruction, and its mean predicted
action (the dimensions that say where to go: the gripper's x, y for pick_cube, the base's turn and sideways
step for drive_to_marker) is compared with the expert's for each of the four colours. A hit is a prediction
nearest the expert's action for the asked colour; chance is 25%. Rates near chance mean the policy ignores the
colour word, whatever its success rate; the closed-loop figure is still rt-eval's.

Run: scripts/with_env.sh python benchmarks/instruction_grounding.py POLICY_DIR DATASET_DIR [--steps 3]
(DATASET_DIR from `rt-dataset build` over --every-colour episodes of held-out seeds.)
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from rt_policy_node.data.dataset import StoredDataset
from rt_policy_node.policies.rt1.policy import RT1Policy
from rt_policy_node.process_settings import configure_cpu_inference

# Token positions of the action dimensions that point at the target, per task.
DIMENSIONS = {"pick_cube": [1, 2], "drive_to_marker": [8, 10]}


class StoredEmbeddings:
    """The dataset's own instruction embeddings, so no sentence encoder has to load."""

    def __init__(self, data: StoredDataset) -> None:
        self.table = {text: data.embeddings[i] for i, text in enumerate(data.index.instructions)}

    def embed(self, text: str) -> np.ndarray:
        return self.table[text]


def mean_tokens(
    policy: RT1Policy, data: StoredDataset, episode, steps: int, dims: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The policy's and the expert's mean tokens over the episode's first `steps` frames."""
    policy.reset(data.index.instructions[episode.instruction_id])
    predicted, expert = [], []
    for step in range(episode.start, episode.start + min(steps, episode.length)):
        tokens, _ = policy.step(np.asarray(data.frames[step]))
        predicted.append(np.asarray(tokens)[dims])
        expert.append(data.tokens[step][dims])
    return np.mean(predicted, axis=0), np.mean(expert, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("policy", help="RT-1 policy directory (config.json + model.safetensors)")
    parser.add_argument("data", help="dataset directory built from --every-colour episodes")
    parser.add_argument("--steps", type=int, default=3, help="first frames of each episode to average over")
    args = parser.parse_args()

    data = StoredDataset(args.data)
    configure_cpu_inference(1)
    policy = RT1Policy.from_pretrained(args.policy, text_encoder=StoredEmbeddings(data))
    layouts = defaultdict(list)
    for episode in data.index.episodes:
        if episode.extra.get("task") in DIMENSIONS:
            layouts[(episode.extra["task"], episode.extra["seed"])].append(episode)
    hits: dict[str, list[bool]] = defaultdict(list)
    for (task, _), episodes in sorted(layouts.items()):
        if len(episodes) < 4:
            continue
        pairs = [mean_tokens(policy, data, e, args.steps, DIMENSIONS[task]) for e in episodes]
        expert = np.array([e for _, e in pairs])
        for asked, (predicted, _) in enumerate(pairs):
            hits[task].append(int(np.argmin(np.linalg.norm(expert - predicted, axis=1))) == asked)
    if not hits:
        raise SystemExit(f"{args.data}: no layout with an episode for every colour (collect with --every-colour)")
    for task, results in hits.items():
        print(
            f"{task}: nearest the asked colour's expert action in {sum(results)}/{len(results)} episodes "
            f"({100 * np.mean(results):.0f}%; chance 25%)"
        )


if __name__ == "__main__":
    main()
