"""Background processes stop with their parent, however the parent ends: a killed test run or benchmark must not
leave servers behind (the platform's rule: every process we start stops with its parent and on SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from time2bet.background import process_alive

LAUNCHER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from time2bet.background import Background
    child = Background("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"], {}, Path(sys.argv[1]),
                       stop_with_parent=sys.argv[2] == "1").start()
    print(child.proc.pid, flush=True)
    time.sleep(120)
""")


def _child_of_a_killed_parent(tmp_path: Path, stop_with_parent: bool) -> int:
    parent = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path / "sleeper.log"),
                               "1" if stop_with_parent else "0"], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
    finally:
        parent.send_signal(signal.SIGKILL)   # no handler, no cleanup: only the kernel can tell the child
        parent.wait(timeout=10)
    return pid


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_a_background_process_stops_when_its_parent_is_killed(tmp_path):
    pid = _child_of_a_killed_parent(tmp_path, stop_with_parent=True)
    deadline = time.monotonic() + 10
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_alive(pid), f"child {pid} outlived its killed parent"


def test_a_process_meant_to_outlive_its_parent_does(tmp_path):
    """`time2bet stack up` starts its processes so (stop_with_parent=False): `stack down` stops them."""
    pid = _child_of_a_killed_parent(tmp_path, stop_with_parent=False)
    try:
        time.sleep(1)
        assert process_alive(pid)
    finally:
        os.killpg(pid, signal.SIGKILL)
