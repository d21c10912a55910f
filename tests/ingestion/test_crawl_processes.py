"""A crawl leaves nothing behind when the process running it dies: the spider subprocess dies with it, and its
staging directories are removed when the next crawl starts. Real processes, a real replay server on 127.0.0.1.
Linux (PR_SET_PDEATHSIG, /proc)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from time2bet.football import DIVISIONS
from time2bet.ingestion.crawl import crawl
from time2bet.source.mirror import ReplayServer
from time2bet.source.sample_site import DEFAULT_AS_OF, generate_sample_site

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: /proc and PR_SET_PDEATHSIG")

REPO_ROOT = Path(__file__).resolve().parents[2]
SLOW_FILE = "mmz4281/2425/E0.csv"
COUNTRY_PAGE = DIVISIONS["E0"].country_page
START_TIMEOUT_S = 60   # the crawling process imports Scrapy, then starts the spider, which imports it again
DEATH_TIMEOUT_S = 15   # the spider is SIGKILLed by the kernel at once; this is the bound, not the expectation

CRAWLER = """
import signal, sys
from pathlib import Path
from time2bet.ingestion.crawl import crawl
if sys.argv[5] == "raise":   # like Dagster and the CLI: SIGTERM becomes an exception in the running code
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
crawl(sys.argv[1], divisions=["E0"], seasons=["2024-25"], fixtures=False, staging_dir=Path(sys.argv[2]),
      cache_dir=Path(sys.argv[3]), timeout_s=float(sys.argv[4]), retries=0)
"""


@pytest.fixture(scope="module")
def site_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site")
    generate_sample_site(root, divisions=("E0",), seasons=("2023-24", "2024-25"))
    return root


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state, ppid, ...), or None if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whatever reaps orphans here)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and int(fields[1]) == pid:
            kids.append(int(entry.name))
    return kids


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:.0f}s")
        time.sleep(0.1)


def start_crawler(server: ReplayServer, tmp_path: Path, temp_root: Path, on_sigterm: str = "default"):
    """A process that crawls the (slow) server with TMPDIR=temp_root; returns it and its spider's pid once the
    spider is on its way to the slow file."""
    env = dict(os.environ, TMPDIR=str(temp_root), PYTHONPATH=str(REPO_ROOT))
    tmp_path.mkdir(exist_ok=True)
    pages_read = lambda: sum(p.endswith(COUNTRY_PAGE) for _, p, _ in server.request_log)
    before = pages_read()
    proc = subprocess.Popen(
        [sys.executable, "-c", CRAWLER, server.url, str(tmp_path / "staging"), str(tmp_path / "cache"), "60",
         on_sigterm], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    # the replay server logs a request once answered, so: the page that links the slow file was read
    wait_for(lambda: pages_read() > before or proc.poll() is not None,
             START_TIMEOUT_S, "the spider reading the page that links the slow file")
    assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
    spiders = children(proc.pid)
    assert len(spiders) == 1, spiders
    return proc, spiders[0]


@pytest.fixture
def slow_server(site_root):
    with ReplayServer(site_root, as_of=DEFAULT_AS_OF) as server:
        server.inject_fault(SLOW_FILE, "slow:100")
        yield server


@pytest.fixture
def temp_root(tmp_path, monkeypatch) -> Path:
    """A temp directory of this test's own, for the crawling process and for crawls run here."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def reaper():
    """Kills whatever a failing test leaves running (the old behaviour left the spider crawling)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm-unhandled"])
def test_the_spider_dies_with_its_parent(slow_server, tmp_path, temp_root, reaper, sig):
    proc, spider = start_crawler(slow_server, tmp_path, temp_root)
    reaper += [proc.pid, spider]
    os.kill(proc.pid, sig)   # SIGTERM without a handler ends Python at once, like SIGKILL: no cleanup runs
    proc.wait(timeout=10)
    wait_for(lambda: not running(spider), DEATH_TIMEOUT_S, f"spider {spider} ending after its parent died")


def test_the_next_crawl_removes_the_staging_of_a_killed_crawl_and_only_that(
    slow_server, site_root, tmp_path, temp_root, reaper
):
    dead, dead_spider = start_crawler(slow_server, tmp_path / "dead", temp_root)
    reaper += [dead.pid, dead_spider]
    dead_staging = set(temp_root.iterdir())
    assert dead_staging, "a crawl stages its results file and log in the temp directory"
    live, live_spider = start_crawler(slow_server, tmp_path / "live", temp_root)
    reaper += [live.pid, live_spider]
    live_staging = set(temp_root.iterdir()) - dead_staging

    os.kill(dead.pid, signal.SIGKILL)
    os.kill(dead_spider, signal.SIGKILL)   # whether or not it died with its parent: this test is about the files
    dead.wait(timeout=10)
    assert set(temp_root.iterdir()) == dead_staging | live_staging, "a killed process cannot clean up"

    with ReplayServer(site_root, as_of=DEFAULT_AS_OF) as fresh:   # the next crawl, in this process
        results = crawl(fresh.url, divisions=["E0"], seasons=["2024-25"], fixtures=False,
                        staging_dir=tmp_path / "next", cache_dir=tmp_path / "next-cache", timeout_s=10, retries=0)
    assert [r.status for r in results] == ["fetched"]
    assert set(temp_root.iterdir()) == live_staging, "the dead crawl's staging is gone, the live crawl's is not"
    assert live.poll() is None and running(live_spider)


def test_a_parent_interrupted_by_sigterm_stops_its_spider_before_the_exception_propagates(
    slow_server, tmp_path, temp_root, reaper
):
    proc, spider = start_crawler(slow_server, tmp_path, temp_root, on_sigterm="raise")
    reaper += [proc.pid, spider]
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=DEATH_TIMEOUT_S + 15) == 143
    assert not running(spider), "the spider was stopped before the parent exited"
    assert list(temp_root.iterdir()) == [], "an interrupted crawl still removes its staging"


def test_a_crawl_opens_no_console_and_writes_nothing_outside_its_directories(site_root, tmp_path, monkeypatch):
    """Scrapy 2.19 starts a remote-control HTTP server (it executes code sent to it) in every crawl and files a job
    record under the user's state directory; the spider turns it off, as it does the Telnet console."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))   # where Scrapy files its job records (platformdirs)
    log = tmp_path / "crawl.log"
    with ReplayServer(site_root, as_of=DEFAULT_AS_OF) as server:
        results = crawl(server.url, divisions=["E0"], seasons=["2024-25"], fixtures=False,
                        staging_dir=tmp_path / "staging", cache_dir=tmp_path / "cache", log_file=log)
    assert [r.status for r in results] == ["fetched"]
    text = log.read_text()
    assert "remote_control" not in text and "Remote control" not in text and "Telnet" not in text
    assert not state.exists() or not any(state.rglob("*"))
