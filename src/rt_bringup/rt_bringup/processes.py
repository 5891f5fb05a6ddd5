"""Node processes, started and stopped one way: by rt-launch, by rt-collect and rt-eval, and by the tests.

`start` runs a command with its output (stdout and stderr) either written to a log file (the episode tools,
the tests) or sent into a pipe that `ProcessGroup.forward_output` prints line by line with a `[label]`
prefix (rt-launch). A `ProcessGroup` starts its processes the one way or the other, reports each exit once
and stops them together; `stop` stops any processes in steps: one signal to each that still runs, then that
step's grace for them to exit, then the next step's signal (e.g. SIGINT as Ctrl-C sends, SIGTERM, SIGKILL).
With `new_session` a process gets a session, and so a process group, of its own and every signal goes to its
whole group (rt-launch); without, it shares the caller's process group, so a Ctrl-C in the terminal reaches
it too, and signals go to it alone. ROS-free: subprocess and signals only.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# A stop: each step's signal, and how long (s) the processes get to exit before the next step (None: until they do).
StopSteps = Sequence[tuple[signal.Signals, float | None]]
# How long a stopped group's last lines may take to be forwarded.
DRAIN_S = 5.0


@dataclass(eq=False)
class Child:
    """One started process: its label, the process, its log file (None: output in a pipe)."""

    label: str
    process: subprocess.Popen
    log: Path | None = None
    own_group: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def send(self, sig: int) -> None:
        """`sig` to the process, or to its whole process group when it has one of its own."""
        with contextlib.suppress(ProcessLookupError):
            if self.own_group:
                os.killpg(self.process.pid, sig)
            else:
                self.process.send_signal(sig)

    def exit_description(self) -> str:
        code = self.process.returncode
        return "finished cleanly" if code == 0 else f"died with exit code {code}"

    def log_tail(self, lines: int = 15) -> str:
        """The last `lines` lines of its log file ("" without one)."""
        if self.log is None or not self.log.is_file():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start(
    label: str,
    command: list[str],
    *,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    new_session: bool = False,
    cwd: Path | None = None,
) -> Child:
    """Starts `command` (in `cwd`) with stdin closed, Python unbuffered and `env` added to this environment; its
    output goes to the file `log` (created with its folder), or into a pipe (`child.process.stdout`) without one."""
    options = {
        "cwd": cwd,
        "stderr": subprocess.STDOUT,
        "stdin": subprocess.DEVNULL,
        "start_new_session": new_session,
        "env": {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    }
    if log is None:
        return Child(label, subprocess.Popen(command, stdout=subprocess.PIPE, **options), None, new_session)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as stream:
        return Child(label, subprocess.Popen(command, stdout=stream, **options), log, new_session)


def stop(children: Sequence[Child], steps: StopSteps, wait: Callable[[float], object] = time.sleep) -> list[Child]:
    """Stops `children` in `steps`, calling `wait(seconds)` while they have time to exit; returns those that
    outlived the first step's grace."""
    outlived: list[Child] = []
    for number, (sig, grace) in enumerate(steps):
        running = [child for child in children if child.running()]
        if not running:
            break
        if number == 1:
            outlived = running
        for child in running:
            child.send(sig)
        deadline = None if grace is None else time.monotonic() + grace
        while any(child.running() for child in running) and (deadline is None or time.monotonic() < deadline):
            wait(0.05)
    return outlived


class ProcessGroup:
    """Processes started together, each with its output forwarded with a `[label]` prefix (no `log_dir`) or
    in `<log_dir>/<label>.log`; their exits reported once; stopped together."""

    def __init__(self, log_dir: Path | None = None, new_session: bool = False) -> None:
        self.log_dir = log_dir
        self.new_session = new_session
        self.children: dict[str, Child] = {}
        self.selector = selectors.DefaultSelector()
        self.partial: dict[str, bytes] = {}
        self.reported: set[str] = set()

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Child:
        """Starts `command` as `name` (numbered if taken: `name-2`, ...)."""
        label, number = name, 1
        while label in self.children:
            number += 1
            label = f"{name}-{number}"
        log = None if self.log_dir is None else self.log_dir / f"{label}.log"
        child = start(label, command, log=log, env=env, new_session=self.new_session)
        self.children[label] = child
        if log is None:
            # Non-blocking reads of whatever is there: a node's half-written line never stalls the others.
            os.set_blocking(child.process.stdout.fileno(), False)
            self.selector.register(child.process.stdout, selectors.EVENT_READ, label)
            self.partial[label] = b""
        return child

    def forward_output(self, timeout: float) -> None:
        """Prints each complete line the processes wrote, prefixed with the label; waits up to `timeout` for one."""
        if not self.selector.get_map():
            time.sleep(timeout)
            return
        for key, _ in self.selector.select(timeout):
            label = key.data
            try:
                chunk = os.read(key.fileobj.fileno(), 65536)
            except BlockingIOError:
                continue
            if not chunk:
                self.selector.unregister(key.fileobj)
                key.fileobj.close()
                chunk = b"\n" if self.partial[label] else b""
            *lines, self.partial[label] = (self.partial[label] + chunk).split(b"\n")
            for line in lines:
                sys.stdout.write(f"[{label}] {line.decode(errors='replace')}\n")
            sys.stdout.flush()

    def exited(self) -> list[Child]:
        """The processes that have exited since the last call."""
        done = [c for label, c in self.children.items() if label not in self.reported and not c.running()]
        self.reported.update(child.label for child in done)
        return done

    def all_exited(self) -> bool:
        return not any(child.running() for child in self.children.values())

    def stop(self, steps: StopSteps) -> list[Child]:
        """Stops every process in `steps`, forwarding output meanwhile and then what is left of it; returns
        those that outlived the first step's grace."""
        outlived = stop(list(self.children.values()), steps, self.forward_output)
        deadline = time.monotonic() + DRAIN_S
        while self.selector.get_map() and time.monotonic() < deadline:
            self.forward_output(0.05)
        return outlived
