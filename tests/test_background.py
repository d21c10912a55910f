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
    import os, signal, sys
    from pathlib import Path
    from time2bet.background import Background
    child = Background("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"], {}, Path(sys.argv[1]),
                       stop_with_parent=sys.argv[2] == "1").start()
    print(child.proc.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)   # right after start(): no handler, no cleanup, only the kernel can tell
""")


def _child_of_a_killed_parent(tmp_path: Path, stop_with_parent: bool) -> int:
    parent = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path / "sleeper.log"),
                               "1" if stop_with_parent else "0"], stdout=subprocess.PIPE, text=True)
    try:
        return int(parent.stdout.readline())
    finally:
        parent.wait(timeout=30)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_a_background_process_stops_when_its_parent_is_killed(tmp_path):
    """Even when the parent dies the moment start() returns: ten times, because the race it once lost (setpriv
    not yet past its prctl) showed in about one start in fifty."""
    pids = [_child_of_a_killed_parent(tmp_path, stop_with_parent=True) for _ in range(10)]
    deadline = time.monotonic() + 10
    while any(process_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in pids if process_alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"children {survivors} outlived their killed parent"


def test_a_process_meant_to_outlive_its_parent_does(tmp_path):
    """`time2bet stack up` starts its processes so (stop_with_parent=False): `stack down` stops them."""
    pid = _child_of_a_killed_parent(tmp_path, stop_with_parent=False)
    try:
        time.sleep(1)
        assert process_alive(pid)
    finally:
        os.killpg(pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/sys/net/ipv4/ip_local_port_range").exists(), reason="Linux's ephemeral range")
def test_free_ports_are_outside_the_ephemeral_range_and_not_handed_out_twice():
    """A port the kernel hands out to bind(0) and outgoing connections could be taken before our server binds it."""
    import socket

    from time2bet.background import free_port

    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(50)]
    assert all(port < low for port in ports) and len(set(ports)) == len(ports)
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[0]))   # and free indeed
