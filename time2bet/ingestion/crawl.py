"""Run the football-data spider in a subprocess and return one result per target.

Dagster calls :func:`crawl`. Scrapy's Twisted reactor cannot be restarted in a long-lived process
(scrapy#5350), so every crawl is a fresh ``python -m time2bet.ingestion.spider`` process; results come
back through a JSON-lines file, failures of the process itself as :class:`CrawlError`.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import time2bet
from time2bet.football import DIVISION_CODE_RE, season_code

LOG_TAIL_LINES = 30
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

    with tempfile.TemporaryDirectory(prefix="t2b-crawl-") as tmp:
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
        # cwd=tmp: no stray scrapy.cfg or .scrapy/ from wherever the caller happens to be.
        proc = subprocess.run(cmd, cwd=tmp, env=_child_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise CrawlError(f"crawl of {base_url} failed (exit {proc.returncode}):\n{_tail(log, proc.stderr)}")
        results = _read_results(results_file)

    if divisions is not None and seasons is not None:
        got = {(r.division, r.season) for r in results if r.kind == "season_file"}
        missing = [(d, s) for d in divisions for s in seasons if (d, s) not in got]
        if missing:
            raise CrawlError(f"crawl of {base_url} returned no result for {missing}")
    if fixtures and not any(r.kind == "fixtures" for r in results):
        raise CrawlError(f"crawl of {base_url} returned no result for fixtures")
    return results


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
