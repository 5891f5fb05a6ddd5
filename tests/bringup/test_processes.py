"""The one process starter (rt_bringup.processes) of rt-launch, rt-collect/rt-eval and the test harness, with
plain Python children: forwarded or logged output, exits reported once, stops in steps. No ROS, no DDS."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from rt_bringup import processes
from rt_bringup.processes import ProcessGroup

# Writes "ready" once its handlers are in place, then sleeps; its arguments name the signals it ignores. SIGINT
# raises KeyboardInterrupt otherwise, even where the test runs in a background job (which starts with it ignored).
STUBBORN = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
for name in sys.argv[1:]:
    signal.signal(getattr(signal, name), signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""


def python(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", script, *args]


def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_output_is_forwarded_with_the_label_and_a_taken_name_is_numbered(capsys):
    group = ProcessGroup()
    first = group.start("talker", python("print('one'); import sys; print('two', file=sys.stderr)"))
    second = group.start("talker", python("print('three')"), env={"RT_TEST_VALUE": "x"})
    assert (first.label, second.label) == ("talker", "talker-2") and first.log is None
    deadline = time.monotonic() + 30
    while not group.all_exited() or group.selector.get_map():
        assert time.monotonic() < deadline
        group.forward_output(0.05)
    lines = capsys.readouterr().out.splitlines()
    assert {"[talker] one", "[talker] two", "[talker-2] three"} <= set(lines)


def test_log_file_mode_writes_each_output_to_its_file_and_reports_each_exit_once(tmp_path):
    group = ProcessGroup(tmp_path / "logs")
    ok = group.start("ok", python("import sys; print('out'); print('err', file=sys.stderr)"))
    failed = group.start("failed", python("import os; print('bye'); os._exit(3)"))
    env = group.start("env", python("import os; print(os.environ['RT_TEST_VALUE'])"), env={"RT_TEST_VALUE": "seen"})
    wait_until(group.all_exited)
    assert ok.log == tmp_path / "logs" / "ok.log"
    assert ok.log.read_text().split() == ["out", "err"] and env.log_tail() == "seen"
    assert failed.log_tail() == "bye" and failed.process.returncode == 3
    assert sorted(child.label for child in group.exited()) == ["env", "failed", "ok"]
    assert group.exited() == [], "an exit is reported once"
    assert ok.exit_description() == "finished cleanly" and failed.exit_description() == "died with exit code 3"
    group.forward_output(0.01)  # nothing forwarded in log file mode: it only waits


def test_a_process_that_exits_on_sigint_gets_nothing_more(tmp_path):
    child = processes.start("polite", python(STUBBORN), log=tmp_path / "polite.log")
    wait_until(lambda: "ready" in child.log.read_text())
    outlived = processes.stop([child], ((signal.SIGINT, 20.0), (signal.SIGKILL, 5.0)))
    assert outlived == [], "it exited within SIGINT's grace: no SIGKILL"
    assert child.process.returncode == -signal.SIGINT and "KeyboardInterrupt" in child.log.read_text()


def test_one_ignoring_sigint_gets_sigterm_after_the_grace_and_one_ignoring_both_sigkill(tmp_path):
    group = ProcessGroup(tmp_path)
    deaf = group.start("deaf", python(STUBBORN, "SIGINT"))
    deafer = group.start("deafer", python(STUBBORN, "SIGINT", "SIGTERM"))
    wait_until(lambda: "ready" in deaf.log.read_text() and "ready" in deafer.log.read_text())
    started = time.monotonic()
    outlived = group.stop(((signal.SIGINT, 0.5), (signal.SIGTERM, 1.0), (signal.SIGKILL, None)))
    elapsed = time.monotonic() - started
    assert outlived == [deaf, deafer]
    assert deaf.process.returncode == -signal.SIGTERM and deafer.process.returncode == -signal.SIGKILL
    assert 1.5 <= elapsed < 10.0, f"SIGINT's and SIGTERM's graces are 0.5 s and 1 s, the stop took {elapsed:.1f} s"


def test_a_new_session_gets_its_signals_to_its_whole_process_group(tmp_path):
    """As rt-launch runs nodes: a node's own children stop with it."""
    spawner = (
        "import subprocess, sys, time; p = subprocess.Popen(['sleep', '60']); print(p.pid, flush=True); time.sleep(60)"
    )
    group = ProcessGroup(tmp_path, new_session=True)
    child = group.start("spawner", python(spawner))
    wait_until(lambda: child.log.read_text().strip())
    grandchild = int(child.log.read_text())
    assert os.getpgid(child.pid) == child.pid != os.getpgid(0)
    assert group.stop(((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0))) == []
    wait_until(lambda: not Path(f"/proc/{grandchild}").exists() or _zombie(grandchild), timeout=5.0)


def test_without_a_new_session_only_the_process_itself_is_signalled(tmp_path):
    child = processes.start("plain", python(STUBBORN), log=tmp_path / "plain.log")
    assert os.getpgid(child.pid) == os.getpgid(0)
    wait_until(lambda: "ready" in child.log.read_text())
    processes.stop([child], ((signal.SIGTERM, 5.0),))
    assert child.process.returncode == -signal.SIGTERM


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True
