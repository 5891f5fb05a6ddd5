"""Where training metrics go: a CSV file (appended across resumes), TensorBoard when it is installed,
and a loss plot at the end."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

LOG_FILE = "log.csv"
PLOT_FILE = "loss.png"


class TrainingLog:
    """Appends one row of named metrics per logged step to `<out>/log.csv` (and TensorBoard if installed).

    The columns are the first row's metrics (or the existing file's header when a run resumes).
    """

    def __init__(self, out: str | Path, tensorboard: bool = True) -> None:
        self.path = Path(out) / LOG_FILE
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
            self.fields = ["step", *metrics]
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
    """A CSV log as columns of floats."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {name: [float(r[name]) for r in rows if r[name] != ""] for name in (rows[0] if rows else {})}


def plot_loss(out: str | Path) -> Path:
    """Writes `<out>/loss.png`: loss and token accuracy against step, from the CSV log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = read_log(Path(out) / LOG_FILE)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax_loss.plot(columns.get("step", []), columns.get("loss", []))
    ax_loss.set(xlabel="step", ylabel="loss", title="training loss")
    ax_acc.plot(columns.get("step", []), columns.get("token_accuracy", []))
    ax_acc.set(xlabel="step", ylabel="token accuracy", title="token accuracy", ylim=(0, 1))
    fig.tight_layout()
    path = Path(out) / PLOT_FILE
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
