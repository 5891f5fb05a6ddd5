"""`rt2-vl-eval`: how well an RT-2 checkpoint answers vision-language questions, by exact match.

    rt2-vl-eval --policy models/rt2_sim --data data/vl_sim_test/vl.jsonl [--limit 500]

Co-fine-tuning is meant to keep the backbone's vision-language skills while it learns actions; this measures
them. Each question is asked as in training ("Q: {question} A:"), the answer decoded without the action
constraint (greedily, unless the checkpoint samples), and it counts when it equals the reference after
`normalise`. Prints the accuracy over all pairs and per question.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rt_policy_node.data.vl_jsonl import VLJsonlDataset
from rt_policy_node.policies.rt2.modeling import RT2Model
from rt_policy_node.policies.rt2.prompts import question_prompt

# Longer than any scene_qa answer ("a blue cube, a green cube, a red cube and a yellow cube") in a small vocabulary.
MAX_ANSWER_TOKENS = 32


@dataclass
class VLScore:
    """Exact-match counts over all pairs and per question."""

    correct: int = 0
    total: int = 0
    by_question: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def add(self, question: str, right: bool) -> None:
        self.correct += right
        self.total += 1
        hits, count = self.by_question.get(question, (0, 0))
        self.by_question[question] = (hits + right, count + 1)


def normalise(text: str) -> str:
    """Lower case, single spaces, no closing full stop: "The red cube." and "the red cube" match."""
    return " ".join(text.lower().split()).rstrip(".").strip()


@torch.inference_mode()
def answer_question(model: RT2Model, image: np.ndarray, question: str) -> str:
    """The model's free-text answer to `question` about `image`."""
    inputs = model.prompt_inputs(image, question_prompt(question))
    ids = model.generate(inputs, constrained=False, max_new_tokens=MAX_ANSWER_TOKENS)[0].tolist()
    return model.io.tokenizer.decode(ids, skip_special_tokens=True).strip()


def vl_accuracy(model: RT2Model, dataset: VLJsonlDataset, limit: int | None = None, progress: bool = False) -> VLScore:
    """Exact-match accuracy on the pairs of `dataset`, or on `limit` of them spread evenly over it."""
    indices = range(len(dataset))
    if limit is not None and limit < len(dataset):
        indices = np.linspace(0, len(dataset) - 1, limit).round().astype(int).tolist()
    score = VLScore()
    model.eval()
    for index in tqdm(indices, desc="rt2-vl-eval", unit="pair", disable=not progress):
        example = dataset[index]
        answer = answer_question(model, example.image, example.question)
        score.add(example.question, normalise(answer) == normalise(example.answer))
    return score


def report(score: VLScore) -> str:
    """The score as printed: overall, then per question, the most asked first."""
    lines = [f"exact match {score.accuracy:.3f} ({score.correct}/{score.total})"]
    counts = Counter({question: count for question, (_, count) in score.by_question.items()})
    for question, count in counts.most_common():
        hits = score.by_question[question][0]
        lines.append(f"  {hits / count:6.3f} ({hits}/{count})  {question}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rt2-vl-eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--policy", type=Path, required=True, help="RT-2 checkpoint directory")
    parser.add_argument("--data", type=Path, required=True, help="vision-language JSONL (rt-vl-data's vl.jsonl)")
    parser.add_argument("--limit", type=int, help="evaluate this many pairs, spread over the file (default: all)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    try:
        model = RT2Model.from_pretrained(args.policy, device=args.device)
        dataset = VLJsonlDataset(args.data)
    except (FileNotFoundError, ValueError) as err:
        print(f"rt2-vl-eval: {err}", file=sys.stderr)
        return 1
    print(report(vl_accuracy(model, dataset, args.limit, progress=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
