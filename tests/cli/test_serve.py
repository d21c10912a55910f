"""`time2bet serve` is the server process: a SIGTERM to the pid that was started (a process manager, `kill`, a
container runtime) stops the whole server, leaving no BentoML process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from time2bet.background import REPO_ROOT, free_port

READY_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...), or None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _live(pid: int, start_time: str | None = None) -> bool:
    """Process PID exists, is no zombie and (with start_time) is the same process as before (not a reused pid)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X") and (start_time is None or fields[19] == start_time)


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def tree(root: int) -> dict[int, str]:
    """{pid: start time} of ROOT's live descendants and of the live members of ROOT's process group."""
    stats = {pid: s for pid in _all_pids() if (s := _stat(pid)) is not None and s[0] not in ("Z", "X")}
    found = {pid for pid, s in stats.items() if int(s[2]) == root and pid != root}
    frontier = [root, *found]   # BentoML's workers run in sessions of their own: found by parentage only
    while frontier:   # bounded: every pid joins `found` once
        parent = frontier.pop()
        for pid, s in stats.items():
            if int(s[1]) == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return {pid: stats[pid][19] for pid in found if pid in stats}


def test_sigterm_to_time2bet_serve_leaves_no_process(platform_env, service_env_for, tmp_path):
    if not Path("/proc/self/stat").exists():
        pytest.skip("walks /proc for the server's processes")
    port = free_port()
    env = service_env_for(platform_env, tmp_path)
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:   # its own session: the group of the started pid is the server's and ours to clean
        proc = subprocess.Popen([sys.executable, "-m", "time2bet.cli.main", "serve", "--port", str(port)],
                                env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    started: dict[int, str] = {}
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert proc.poll() is None, f"time2bet serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"not ready after {READY_TIMEOUT_S}s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        started = {**tree(proc.pid), proc.pid: _stat(proc.pid)[19]}
        assert len(started) > 1, "the server runs in worker processes: expected more than one"

        os.kill(proc.pid, signal.SIGTERM)   # the pid that was started, not its group

        deadline = time.monotonic() + STOP_TIMEOUT_S
        while True:
            proc.poll()   # reap the started process once it has exited (else it lingers as a zombie)
            left = {pid for pid, start in started.items() if _live(pid, start)} | set(tree(proc.pid))
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert not left, (f"{len(left)} process(es) of `time2bet serve` still running {STOP_TIMEOUT_S}s after "
                          f"SIGTERM: {sorted(left)}")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in [pid for pid, start in started.items() if _live(pid, start)]:   # what left the group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=STOP_TIMEOUT_S)
