"""Per-dimension statistics of a dataset's actions, and a histogram plot of each dimension."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rt_policy_node.policies.action_tokenizer import ActionDim
from rt_policy_node.policies.policy import Mode

_AXES = {"world_vector": "xyz", "rotation_delta": ("roll", "pitch", "yaw"), "base_displacement": "xy"}


def dimension_names(spec: tuple[ActionDim, ...]) -> list[str]:
    """One readable name per token, e.g. `world_vector.x`, in the spec's order."""
    names = []
    for dim in spec:
        if dim.size == 1:
            names.append(dim.name)
            continue
        axes = _AXES.get(dim.name, [str(i) for i in range(dim.size)])
        names.extend(f"{dim.name}.{axis}" for axis in axes)
    return names


def _flat_dims(spec: tuple[ActionDim, ...]) -> list[ActionDim]:
    return [dim for dim in spec for _ in range(dim.size)]


def action_statistics(actions: np.ndarray, spec: tuple[ActionDim, ...]) -> dict[str, dict[str, Any]]:
    """`actions [N, num_tokens]` (values in spec order) -> per dimension: mean, std, min, max, 1st/99th
    percentile, and the fraction of values clipped at the bounds; class counts for a discrete one."""
    stats = {}
    for column, (name, dim) in enumerate(zip(dimension_names(spec), _flat_dims(spec), strict=True)):
        values = actions[:, column].astype(np.float64)
        if dim.discrete:
            counts = np.bincount(values.astype(np.int64), minlength=dim.classes)
            stats[name] = {"class_counts": counts.tolist()}
            continue
        if values.size == 0:
            stats[name] = {}
            continue
        q01, q99 = np.percentile(values, [1, 99])
        stats[name] = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
            "q01": float(q01),
            "q99": float(q99),
            "clipped_fraction": float(np.mean((values <= dim.low) | (values >= dim.high))),
        }
    return stats


def plot_action_histograms(actions: np.ndarray, spec: tuple[ActionDim, ...], path: str | Path) -> None:
    """Writes one histogram per action dimension over its full range (class bars for a discrete one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = dimension_names(spec)
    cols = 4
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for column, (ax, name, dim) in enumerate(zip(axes.flat, names, _flat_dims(spec), strict=False)):
        values = actions[:, column]
        if dim.discrete:
            ax.bar(range(dim.classes), np.bincount(values.astype(np.int64), minlength=dim.classes)[: dim.classes])
            labels = [m.name.lower() for m in Mode] if dim.name == "mode" else None
            ax.set_xticks(range(dim.classes), labels)
        else:
            ax.hist(values, bins=np.linspace(dim.low, dim.high, 65))
            ax.set_xlim(dim.low, dim.high)
        ax.set_title(name, fontsize=10)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(f"action histograms ({len(actions)} steps)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
