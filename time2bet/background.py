"""Background processes of the platform's commands, benchmarks and tests: a free loopback port, and a process in
its own session (process group) whose readiness is an HTTP URL and whose whole group is stopped at the end.

Its own session keeps Ctrl-C for the parent, and stopping the group also ends the children a server spawns
(BentoML's and Dagster's workers), so nothing is left behind. On Linux the process also gets SIGTERM when its
parent dies however it dies (util-linux ``setpriv --pdeathsig``, which keeps that prctl across its exec of the
command; no ``preexec_fn``, unsafe in a threaded parent): a killed test run or benchmark leaves no server behind;
``time2bet stack up`` opts out, its processes outlive the command by design (``stack down`` stops them).
One implementation for ``time2bet demo``, ``time2bet stack``, bench/serve.py and the tests. A Python process we
start ourselves (the spider, a replay's run workers) calls :func:`die_with_parent` first thing instead.
"""

from __future__ import annotations

import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_S = 20


def stopped_with_parent(command: list[str]) -> list[str]:
    """``command`` run so that it gets SIGTERM when the thread that started it exits (start it from the main
    thread: then that is when the parent process ends); unchanged where setpriv is missing (not Linux)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *command] if setpriv else list(command)


SETPRIV_EXEC_TIMEOUT_S = 10


def _wait_past_setpriv(proc: subprocess.Popen, setpriv: str) -> None:
    """Until setpriv has set the parent-death signal and exec'd the command (its pid then runs the command).

    Popen returns while setpriv's own exec is still under way, before its prctl: a parent killed in between would
    leave the command behind with no signal to come (seen in CI; a parent killing itself right after start() left
    2-3 children in 150 behind). Bounded; gives up where /proc is missing."""
    deadline = time.monotonic() + SETPRIV_EXEC_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            argv0 = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            return
        if argv0 not in (b"", setpriv.encode()):   # empty: mid-exec
            return
        time.sleep(0.001)


PARENT_POLL_S = 1.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """End this process as soon as ``parent_pid`` (the process that started it) is gone.

    A parent killed outright (kill -9, the OOM killer) runs no cleanup, and a crawl or a replay's run worker would
    otherwise go on for nobody. On Linux the kernel sends us SIGKILL when the parent dies (PR_SET_PDEATHSIG, set
    here rather than in a preexec_fn, which is unsafe in a threaded parent such as a Dagster run). Strictly, when
    the parent *thread* that started us ends: start such a process from a thread that waits for it (the spider's
    crawl()) or from the main thread. If the parent died before the prctl, no signal will come: the parent pid
    check catches that. A thread polling the parent pid covers the other systems (and a failed prctl).
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # already re-parented: our parent died while we started
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


FREE_PORT_FLOOR = 20000   # below the kernel's ephemeral range (Linux: 32768-60999)
FREE_PORT_ATTEMPTS = 200
_handed_out: set[int] = set()


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, drawn at random below the kernel's ephemeral range.

    Not ``bind(port 0)``: that hands out an ephemeral port, which the kernel gives again to the next bind(0) or
    outgoing connection of any process while ours is not yet listening. BentoML reserves its circus control
    sockets that way, and a test's chosen port was taken by another test's service in between (CI, two xdist
    workers: "Address already in use"). Below that range only explicit binds compete; not handed out twice by
    this process."""
    ceiling = max(_ephemeral_floor(), FREE_PORT_FLOOR + 1000)
    for _ in range(FREE_PORT_ATTEMPTS):
        port = random.randrange(FREE_PORT_FLOOR, ceiling)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:   # a crowded range: the kernel's choice
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Background:
    """A process in its own session, its output in a log file; stop() ends its whole process group."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path = REPO_ROOT
    stop_with_parent: bool = True   # SIGTERM when the parent dies (Linux); False for processes meant to outlive it
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Background:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = stopped_with_parent(self.command) if self.stop_with_parent else self.command
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(command, env=self.env, cwd=self.cwd, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        if command[0] != self.command[0]:
            _wait_past_setpriv(self.proc, command[0])
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, url: str, timeout_s: float) -> None:
        """Until GET url answers 200; raises ClickException (a readable error for the CLI; tests and benchmarks
        show it as it is) if the process exits or the time is up."""
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.running:
                raise click.ClickException(f"{self.name} exited with {self.proc.returncode if self.proc else None}; "
                                           f"its log ({self.log}) ends with:\n{self.log_tail()}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise click.ClickException(f"{self.name} not ready after {timeout_s:.0f}s ({url}); see {self.log}")
            time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL if anything of it lingers after STOP_TIMEOUT_S."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
        try:   # the leader may be gone while its children (webserver, daemon, workers) are not
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=STOP_TIMEOUT_S)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie (a killed process whose parent has not
    reaped it yet). A pid reused by an unrelated process counts as alive: its leftovers wait for the next time."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there; assume alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS): the signal test is all there is
        return True
    return state not in ("Z", "X")
