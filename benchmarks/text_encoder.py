"""Instruction encoder: latency (model load, a new instruction, a cached one) and the similarity structure it gives
RT-1-style instructions (how well the embedding separates skills). Prints milliseconds and cosine similarities."""

import itertools
import statistics
import time

import numpy as np

from rt_policy_node.policies.text import UniversalSentenceEncoder

# Instructions in the style of RT-1's skills, grouped by skill.
SKILLS = {
    "pick": ["pick coke can", "pick blue chip bag", "pick green jalapeno chip bag", "pick apple", "pick sponge"],
    "move near": [
        "move coke can near apple",
        "move blue chip bag near sponge",
        "move apple near green can",
        "move sponge near orange",
    ],
    "open/close drawer": ["open top drawer", "open middle drawer", "close bottom drawer", "close top drawer"],
    "place into drawer": [
        "place coke can into top drawer",
        "place apple into middle drawer",
        "place sponge into bottom drawer",
    ],
    "knock over": ["knock coke can over", "knock water bottle over", "knock redbull can over"],
    "place upright": ["place coke can upright", "place water bottle upright", "place redbull can upright"],
}
MULTILINGUAL = ["heb den roten Würfel auf", "coge el cubo rojo y ponlo en la caja", "拿起红色的方块"]


def latency(encoder: UniversalSentenceEncoder) -> None:
    start = time.perf_counter()
    encoder.embed("warm up")
    print(f"load + first instruction: {(time.perf_counter() - start) * 1e3:.0f} ms")
    texts = [text for group in SKILLS.values() for text in group] + MULTILINGUAL
    new, cached = [], []
    for text in texts:
        start = time.perf_counter()
        encoder.embed(text)
        new.append(time.perf_counter() - start)
    for _ in range(100):
        for text in texts:
            start = time.perf_counter()
            encoder.embed(text)
            cached.append(time.perf_counter() - start)
    print(f"new instruction ({len(new)}): median {statistics.median(new) * 1e3:.1f} ms, max {max(new) * 1e3:.1f} ms")
    print(f"cached instruction ({len(cached)}): median {statistics.median(cached) * 1e6:.1f} us")


def structure(encoder: UniversalSentenceEncoder) -> None:
    vectors = {skill: np.stack([encoder.embed(t) for t in texts]) for skill, texts in SKILLS.items()}
    within = [v[i] @ v[j] for v in vectors.values() for i, j in itertools.combinations(range(len(v)), 2)]
    across = np.concatenate([(vectors[a] @ vectors[b].T).ravel() for a, b in itertools.combinations(vectors, 2)])
    print(f"cosine within a skill: mean {np.mean(within):.2f}, min {np.min(within):.2f}")
    print(f"cosine across skills: mean {np.mean(across):.2f}, max {np.max(across):.2f}")
    stacked = np.concatenate(list(vectors.values()))
    labels = np.repeat(list(vectors), [len(v) for v in vectors.values()])
    similarity = stacked @ stacked.T
    np.fill_diagonal(similarity, -np.inf)
    accuracy = np.mean(labels[similarity.argmax(1)] == labels)
    print(f"nearest other instruction has the same skill: {accuracy:.0%} of {len(labels)}")


def main() -> None:
    encoder = UniversalSentenceEncoder()
    latency(encoder)
    structure(encoder)


if __name__ == "__main__":
    main()
