"""Where training metrics go: a CSV file (appended across resumes), TensorBoard when it is installed,
and a loss plot at the end."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

LOG_FILE = "log.csv"
PLOT_FILE = "loss.png"


class TrainingLog:
    """Appends one row of named metrics per logged step to `<out>/log.csv` (and TensorBoard if installed).

    The columns are the first row's metrics plus `extra_fields`, metrics that only some rows have (validation),
    or the existing file's header when a run resumes.
    """

    def __init__(self, out: str | Path, tensorboard: bool = True, extra_fields: tuple[str, ...] = ()) -> None:
        self.path = Path(out) / LOG_FILE
        self.extra_fields = extra_fields
        self.fields: list[str] | None = None
        if self.path.is_file():
            with open(self.path, newline="") as f:
                self.fields = next(csv.reader(f), None)
        self._writer = None
        if tensorboard and importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(Path(out) / "tensorboard"))

    def truncate_after(self, step: int) -> None:
        """Drops rows logged after `step` (a run resumed from an earlier checkpoint logs them again)."""
        if not self.path.is_file():
            return
        with open(self.path, newline="") as f:
            rows = [row for row in csv.DictReader(f) if int(row["step"]) <= step]
        self._write_rows(rows, mode="w")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self.fields is None:
            self.fields = ["step", *metrics, *(f for f in self.extra_fields if f not in metrics)]
        self._write_rows([{"step": step, **metrics}], mode="a")
        if self._writer is not None:
            for name, value in metrics.items():
                self._writer.add_scalar(name, value, step)

    def _write_rows(self, rows: list[dict], mode: str) -> None:
        new = mode == "w" or not self.path.is_file()
        with open(self.path, mode, newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerows(rows)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def read_log(path: str | Path) -> dict[str, list[float]]:
    """A CSV log as columns of floats, aligned by row; a metric a row does not have is NaN."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {name: [float(r[name]) if r[name] else math.nan for r in rows] for name in (rows[0] if rows else {})}


# Validation metrics drawn beside the training curves, when the log has them.
VALIDATION_PLOTS = ("val_accuracy/mode", "val_terminate_precision", "val_terminate_recall")


def plot_loss(out: str | Path) -> Path:
    """Writes `<out>/loss.png`: loss and token accuracy against step (training, and validation where logged),
    plus the mode and terminate figures of validation, from the CSV log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = read_log(Path(out) / LOG_FILE)
    steps = columns.get("step", [])
    validated = "val_token_accuracy" in columns
    fig, axes = plt.subplots(1, 3 if validated else 2, figsize=(15 if validated else 10, 3.5))
    ax_loss, ax_acc = axes[0], axes[1]
    ax_loss.plot(steps, columns.get("loss", []), label="training")
    ax_acc.plot(steps, columns.get("token_accuracy", []), label="training")
    if validated:
        _plot_points(ax_loss, steps, columns["val_loss"], "validation")
        _plot_points(ax_acc, steps, columns["val_token_accuracy"], "validation")
        for name in VALIDATION_PLOTS:
            if name in columns:
                _plot_points(axes[2], steps, columns[name], name.removeprefix("val_"))
        axes[2].set(xlabel="step", title="validation", ylim=(0, 1.02))
        axes[2].legend(fontsize=7)
        ax_loss.legend(fontsize=7)
        ax_acc.legend(fontsize=7)
    ax_loss.set(xlabel="step", ylabel="loss", title="loss")
    ax_acc.set(xlabel="step", ylabel="token accuracy", title="token accuracy", ylim=(0, 1))
    fig.tight_layout()
    path = Path(out) / PLOT_FILE
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _plot_points(axes, steps: list[float], values: list[float], label: str) -> None:
    shown = [(s, v) for s, v in zip(steps, values, strict=True) if not math.isnan(v)]
    if shown:
        axes.plot(*zip(*shown, strict=True), marker="o", markersize=3, label=label)
