"""Run the football-data spider in a subprocess and return one result per target.

Dagster calls :func:`crawl`. Scrapy's Twisted reactor cannot be restarted in a long-lived process
(scrapy#5350), so every crawl is a fresh ``python -m time2bet.ingestion.spider`` process; results come
back through a JSON-lines file, failures of the process itself as :class:`CrawlError`.

Nothing outlives the process that runs a crawl: the spider dies with its parent (``background.die_with_parent``), an
interrupted crawl stops its spider before the exception propagates, and the temporary directories of a process
that was killed (and so could not clean up) are removed when the next crawl starts (:func:`staging_tempdir`).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import time2bet
from time2bet.background import process_alive
from time2bet.football import DIVISION_CODE_RE, season_code

LOG_TAIL_LINES = 30
STAGING_PREFIX = "time2bet-crawl-"  # + "<pid of the owner>-<random>": whose it is, so leftovers can be told apart
STOP_TIMEOUT_S = 5  # an interrupted crawl: how long Scrapy may take to close down (it waits for downloads in
# progress, which a slow server can stretch to DOWNLOAD_TIMEOUT) before the spider is killed
_LOG_RECORD_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \[")  # Scrapy's log line prefix


@dataclass(frozen=True)
class FetchResult:
    kind: str  # "season_file" | "fixtures"
    division: str | None
    season: str | None  # label, "2019-20"
    url: str | None
    status: str  # "fetched" | "not_published" | "failed"
    http_status: int | None
    sha256: str | None
    bytes: int | None
    path: Path | None  # the staged file when fetched
    from_cache: bool  # body came from the HTTP cache after a 304
    error: str | None  # plain-words reason when failed


class CrawlError(RuntimeError):
    """The crawl process itself failed (crash, bad arguments, interrupted) - not a single file."""


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def crawl(
    base_url: str,
    *,
    divisions: Sequence[str] | None,
    seasons: Sequence[str] | None,
    fixtures: bool,
    staging_dir: Path,
    cache_dir: Path,
    polite: bool | None = None,
    timeout_s: float = 30.0,
    retries: int = 3,
    log_file: Path | None = None,
) -> list[FetchResult]:
    """Fetch the wanted season files (None = all linked) and optionally fixtures.

    An empty ``divisions`` or ``seasons`` means no season files (e.g. fixtures only).
    Returns one FetchResult per target: every linked file kept by the filters, every requested
    (division, season) the site does not link (``not_published``), and fixtures when asked. Re-crawls
    revalidate through the HTTP cache in ``cache_dir`` (304 -> ``from_cache=True``). ``polite=None``
    means polite unless the host is loopback.
    """
    for d in divisions or ():
        if not DIVISION_CODE_RE.match(d):
            raise ValueError(f"not a division code: {d!r}")
    for s in seasons or ():
        season_code(s)  # raises ValueError with a clear message
    polite = not is_loopback(base_url) if polite is None else polite
    staging_dir, cache_dir = Path(staging_dir).resolve(), Path(cache_dir).resolve()
    staging_dir.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)

    with staging_tempdir() as tmp:
        results_file = Path(tmp) / "results.jsonl"
        log = Path(log_file).resolve() if log_file else Path(tmp) / "crawl.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable, "-m", "time2bet.ingestion.spider",
            "--base-url", base_url, "--staging-dir", str(staging_dir), "--cache-dir", str(cache_dir),
            "--results", str(results_file), "--timeout", str(timeout_s), "--retries", str(retries),
            "--log-file", str(log),
        ]
        if divisions is not None:
            cmd += ["--divisions", ",".join(divisions)]
        if seasons is not None:
            cmd += ["--seasons", ",".join(seasons)]
        cmd += ["--fixtures"] * fixtures + ["--polite"] * polite
        cmd += ["--parent-pid", str(os.getpid())]  # the spider exits if this process dies (die_with_parent)
        # cwd=tmp: no stray scrapy.cfg or .scrapy/ from wherever the caller happens to be.
        returncode, stderr = _run_spider(cmd, cwd=tmp)
        if returncode != 0:
            raise CrawlError(f"crawl of {base_url} failed (exit {returncode}):\n{_tail(log, stderr)}")
        results = _read_results(results_file)

    if divisions is not None and seasons is not None:
        got = {(r.division, r.season) for r in results if r.kind == "season_file"}
        missing = [(d, s) for d in divisions for s in seasons if (d, s) not in got]
        if missing:
            raise CrawlError(f"crawl of {base_url} returned no result for {missing}")
    if fixtures and not any(r.kind == "fixtures" for r in results):
        raise CrawlError(f"crawl of {base_url} returned no result for fixtures")
    return results


def _run_spider(cmd: list[str], cwd: Path) -> tuple[int, str]:
    """Run the spider to its end; its exit code and stderr.

    Interrupted (KeyboardInterrupt, SystemExit from a SIGTERM handler, Dagster's run termination - all
    BaseException), the spider gets SIGTERM (Scrapy closes down), then SIGKILL after STOP_TIMEOUT_S, before the
    exception propagates: an orphan would go on crawling, and writing into a staging directory being removed.
    A parent killed outright runs no code at all; that case is the spider's own (--parent-pid).
    """
    with subprocess.Popen(cmd, cwd=cwd, env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        try:
            _, stderr = proc.communicate()
        except BaseException:
            try:
                proc.terminate()
                proc.communicate(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
            finally:  # also when a second interrupt cuts the wait short
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            raise
    return proc.returncode, stderr


@contextmanager
def staging_tempdir(dir: str | Path | None = None) -> Iterator[Path]:
    """A temporary directory (in ``dir``, default the system's) named after this process, removed on exit like
    ``tempfile.TemporaryDirectory``; first removes those whose owner has died.

    A process killed with SIGKILL (or by the OOM killer, or a power cut) never runs TemporaryDirectory's cleanup,
    and crawl staging holds whole season files: without the owner's pid in the name nothing could tell a leftover
    from the directory of a crawl running right now in another process.
    """
    root = Path(dir or tempfile.gettempdir())
    remove_orphaned_staging(root)
    with tempfile.TemporaryDirectory(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=root) as tmp:
        yield Path(tmp)


def remove_orphaned_staging(root: Path) -> list[Path]:
    """Remove the staging directories in ``root`` whose owning process is gone; returns them."""
    owned = re.compile(rf"^{re.escape(STAGING_PREFIX)}(\d+)-")
    removed = []
    for entry in root.glob(f"{STAGING_PREFIX}*"):
        match = owned.match(entry.name)
        if match and entry.is_dir() and not process_alive(int(match[1])):
            shutil.rmtree(entry, ignore_errors=True)  # another user's (shared /tmp) cannot be removed: left alone
            if not entry.exists():
                removed.append(entry)
    return removed


def _child_env() -> dict[str, str]:
    """Make sure the child imports this same time2bet, even from a source checkout that is not
    (or not correctly) installed."""
    env = dict(os.environ)
    src = str(Path(time2bet.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def _read_results(path: Path) -> list[FetchResult]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    results = [FetchResult(**{**r, "path": Path(r["path"]) if r["path"] else None}) for r in rows]
    order = {"season_file": 0, "fixtures": 1}
    return sorted(results, key=lambda r: (order.get(r.kind, 2), r.division or "", r.season or "", r.url or ""))


def _tail(log: Path, stderr: str) -> str:
    """The ERROR records with the end of their tracebacks (Scrapy's closing stats dump would push them
    out of a plain tail), then the last lines of the log and stderr."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    errors: list[str] = []
    for i, line in enumerate(lines):
        if "] ERROR: " in line or "] CRITICAL: " in line:
            block = list(itertools.takewhile(lambda l: not _LOG_RECORD_RE.match(l), lines[i + 1 :]))
            errors += [line, *block[-6:]]
    tail = (lines + stderr.splitlines())[-LOG_TAIL_LINES:]
    return "\n".join(errors[-LOG_TAIL_LINES:] + (["..."] if errors else []) + tail) or "(no log output)"
