"""Scrapy spider for football-data.co.uk season CSVs and fixtures, plus its process entry point.

Run out of process (Scrapy's reactor cannot restart inside a long-lived Dagster worker) by
:func:`time2bet.ingestion.crawl.crawl`, which calls ``python -m time2bet.ingestion.spider``. The spider
writes each wanted file to the staging dir and one JSON line per target to a results file; the parent
reads that file, not Scrapy items, so no feed exporter or scrapy.cfg is involved.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.downloadermiddlewares.httpcache import HttpCacheMiddleware
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import DownloadTimeoutError, IgnoreRequest, ResponseDataLossError
from scrapy.extensions.httpcache import RFC2616Policy
from scrapy.http import Request, Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.asyncio import sleep
from scrapy.utils.response import response_status_message
from twisted.internet.error import TimeoutError as TwistedTimeoutError
from twisted.python.failure import Failure

from time2bet.background import die_with_parent
from time2bet.football import DIVISIONS, season_code
from time2bet.ingestion.discovery import INDEX_PAGE, country_pages, season_file_links

USER_AGENT = "time2bet/0.1 (football match prediction research; polite crawler of season CSVs)"
_HERE = "time2bet.ingestion.spider"  # settings name components by import path, never "__main__"


# --------------------------------------------------------------------------------------------------
# Downloader components
# --------------------------------------------------------------------------------------------------


class AlwaysRevalidatePolicy(RFC2616Policy):
    """Every request asks the server; only a 304 lets the stored copy stand in.

    RFC2616Policy guesses freshness from Last-Modified (a tenth of the file's age, Firefox's heuristic):
    a season file last changed a year ago would be served from disk for five weeks without asking, so a
    correction on the site would go unseen. A conditional GET costs a 304 and almost no bytes, so we
    always send one. RFC2616Policy also accepts a 5xx as "still valid" (stale-if-error); we refuse that
    so an outage is retried and reported instead of hidden behind yesterday's copy, and never stores a
    CSV body the spider rejects: its validators could otherwise earn it 304s, and the same failure, forever.
    (The cache sits below HttpCompressionMiddleware, so a gzipped body cannot be judged here and is kept.)
    """

    def should_cache_response(self, response: Response, request: Request) -> bool:
        plain = response.headers.get(b"Content-Encoding", b"identity").lower() == b"identity"
        if plain and urlsplit(request.url).path.endswith(".csv") and csv_body_problem(response.body):
            return False
        return super().should_cache_response(response, request)

    def is_cached_response_fresh(self, cachedresponse: Response, request: Request) -> bool:
        for validator, conditional in ((b"Last-Modified", b"If-Modified-Since"), (b"ETag", b"If-None-Match")):
            if validator in cachedresponse.headers:
                request.headers[conditional] = cachedresponse.headers[validator]
        return False

    def is_cached_response_valid(self, cachedresponse: Response, response: Response, request: Request) -> bool:
        return response.status == 304


class RevalidatingCacheMiddleware(HttpCacheMiddleware):
    """HttpCacheMiddleware with two changes that go with AlwaysRevalidatePolicy.

    - A download error (timeout, lost connection) is not answered with the stored copy, which would
      happen before RetryMiddleware even sees the error: it is retried and, if it persists, reported.
    - A 304 does not rewrite the stored entry (seven files per entry in FilesystemCacheStorage): Scrapy
      does so only to refresh the Date used for freshness, which this policy never uses. That makes an
      unchanged re-crawl cost reads only.
    """

    def process_response(self, request: Request, response: Response) -> Response | Request:
        cached = request.meta.get("cached_response")
        if response.status == 304 and cached is not None:
            del request.meta["cached_response"]
            self.stats.inc_value("httpcache/revalidate")
            return cached
        return super().process_response(request, response)

    def process_exception(self, request: Request, exception: Exception) -> None:
        request.meta.pop("cached_response", None)


class BackoffRetryMiddleware(RetryMiddleware):
    """RetryMiddleware with exponential backoff.

    Scrapy 2.19's RetryMiddleware re-queues a failed request at once (no backoff setting exists), so a
    struggling server gets its retries back-to-back. This subclass stamps each retry with a delay of
    ``T2B_RETRY_BACKOFF_BASE * 2**(n-1)`` seconds (at least Retry-After, at most T2B_RETRY_BACKOFF_MAX)
    and sleeps it off in ``process_request`` before the retry is downloaded. The sleep holds one of the
    global CONCURRENT_REQUESTS places, which only slows a crawl that is already in trouble.
    """

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.backoff_base = settings.getfloat("T2B_RETRY_BACKOFF_BASE", 1.0)
        self.backoff_max = settings.getfloat("T2B_RETRY_BACKOFF_MAX", 60.0)

    async def process_request(self, request: Request) -> None:
        delay = request.meta.pop("t2b_backoff_s", 0)
        if delay:
            await sleep(delay)

    def process_response(self, request: Request, response: Response) -> Request | Response:
        return self._with_backoff(super().process_response(request, response), response)

    def process_exception(self, request: Request, exception: Exception) -> Request | Response | None:
        return self._with_backoff(super().process_exception(request, exception))

    def _with_backoff(self, result: Any, response: Response | None = None) -> Any:
        if isinstance(result, Request):  # a retry: RetryMiddleware has counted it in retry_times
            retry_after = response.headers.get(b"Retry-After") if response is not None else None
            result.meta["t2b_backoff_s"] = backoff_delay(
                result.meta.get("retry_times", 1), self.backoff_base, self.backoff_max, retry_after
            )
        return result


def backoff_delay(retry: int, base: float, cap: float, retry_after: bytes | None = None) -> float:
    """Seconds to wait before retry number ``retry`` (1-based): base, 2 base, 4 base... honouring a
    numeric Retry-After, never above ``cap``."""
    delay = base * 2 ** (retry - 1)
    if retry_after and retry_after.strip().isdigit():
        delay = max(delay, float(retry_after))
    return min(delay, cap)


# --------------------------------------------------------------------------------------------------
# Checks and messages
# --------------------------------------------------------------------------------------------------


def csv_body_problem(body: bytes) -> str | None:
    """Why ``body`` is not a football-data CSV, or None. The site answers some failures with 200 and
    a wrong body, so a 200 alone proves nothing."""
    if not body.strip():
        return f"empty body ({len(body)} bytes) served in place of a CSV"
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "body is UTF-16 (byte-order mark), not one of the site's encodings (UTF-8 / Latin-1)"
    if b"\x00" in body:
        return "body contains NUL bytes (UTF-16 or binary), not one of the site's encodings (UTF-8 / Latin-1)"
    text = body.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<"):
        title = re.search(rb"<title[^>]*>(.*?)</title>", text[:2048], re.IGNORECASE | re.DOTALL)
        named = f" (title: {title[1].decode('latin-1').strip()!r})" if title else ""
        return f"HTML page served instead of a CSV{named}"
    if b"," not in text.split(b"\n", 1)[0]:
        return "does not look like a CSV: the first line has no comma"
    return None


def describe_failure(failure: Failure, timeout_s: float | None = None) -> str:
    """A plain-words reason for a failed download, e.g. 'HTTP 500 after 3 retries'."""
    exc = failure.value
    retries = failure.request.meta.get("retry_times", 0) if hasattr(failure, "request") else 0
    after = f" after {retries} retries" if retries else ""
    if isinstance(exc, HttpError):
        return f"HTTP {response_status_message(exc.response.status)}{after}"  # "HTTP 404 Not Found"
    if isinstance(exc, (DownloadTimeoutError, TwistedTimeoutError)):
        limit = f" within {timeout_s:g} s" if timeout_s else ""
        return f"timeout: no complete response{limit}{after}"
    if isinstance(exc, ResponseDataLossError):
        return f"truncated body (data loss: connection closed before the announced length arrived){after}"
    if isinstance(exc, IgnoreRequest):
        return f"not fetched: {exc}"  # e.g. "Forbidden by robots.txt"
    return f"{type(exc).__name__}: {exc}{after}"


# --------------------------------------------------------------------------------------------------
# Spider
# --------------------------------------------------------------------------------------------------


@dataclass
class TargetResult:
    kind: str  # "season_file" | "fixtures"
    division: str | None
    season: str | None
    url: str | None
    status: str  # "fetched" | "not_published" | "failed"
    http_status: int | None = None
    sha256: str | None = None
    bytes: int | None = None
    path: str | None = None
    from_cache: bool = False
    error: str | None = None


def _split(value: Any) -> set[str] | None:
    """Spider args arrive as lists (from Python) or comma strings (from ``-a``); None = all, "" = none."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return {s.strip() for s in items if s.strip()}


class FootballDataSpider(scrapy.Spider):
    """index -> country pages -> season CSVs (by link pattern), plus ``/fixtures.csv`` on request.

    Emits exactly one result line per target: every linked file it keeps, every requested
    (division, season) that no page links (``not_published``, or ``failed`` if the page that would
    link it could not be read), and fixtures.
    """

    name = "football_data"

    def __init__(
        self,
        base_url: str,
        staging_dir: str,
        results_file: str,
        divisions: Any = None,
        seasons: Any = None,
        fixtures: Any = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")
        self.staging_dir = Path(staging_dir)
        self.results_file = Path(results_file)
        self.divisions = _split(divisions)
        self.seasons = _split(seasons)
        self.fixtures = fixtures in (True, "1", "true", "True", "yes")
        self.index_url = f"{self.base_url}/{INDEX_PAGE}"
        self.page_errors: dict[str, str] = {}  # country page or index url -> reason
        self.requested: dict[tuple[str, str], str] = {}  # (division, season) -> url, once linked
        self.done: set[tuple[str, str | None, str | None]] = set()  # (kind, division, season)

    async def start(self):  # Scrapy's async start generator
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        if self.divisions != set() and self.seasons != set():
            yield Request(self.index_url, callback=self.parse_index, errback=self.page_failed)
        if self.fixtures:
            target = {"kind": "fixtures", "division": None, "season": None}
            yield Request(
                f"{self.base_url}/fixtures.csv", callback=self.save_file, errback=self.file_failed, cb_kwargs=target
            )

    # -- pages --------------------------------------------------------------------------------------

    def _wanted_country_pages(self) -> set[str] | None:
        """Basenames of the country pages worth reading; None = all (no filter, or an unknown division)."""
        if self.divisions is None or any(d not in DIVISIONS for d in self.divisions):
            return None
        return {DIVISIONS[d].country_page for d in self.divisions}

    def parse_index(self, response: Response):
        wanted = self._wanted_country_pages()
        for page in country_pages(_html(response), response.url):
            if wanted is None or _basename(page) in wanted:
                yield Request(page, callback=self.parse_country, errback=self.page_failed)

    def parse_country(self, response: Response):
        for link in season_file_links(_html(response), response.url):
            key = (link.division, link.season)
            if key in self.requested or not self._wanted(*key):
                continue
            self.requested[key] = link.url
            target = {"kind": "season_file", "division": link.division, "season": link.season}
            yield Request(link.url, callback=self.save_file, errback=self.file_failed, cb_kwargs=target)

    def page_failed(self, failure: Failure) -> None:
        reason = describe_failure(failure, self._timeout())
        self.page_errors[failure.request.url] = reason
        self.logger.error("page %s failed: %s", failure.request.url, reason)

    def _wanted(self, division: str, season: str) -> bool:
        return (self.divisions is None or division in self.divisions) and (
            self.seasons is None or season in self.seasons
        )

    # -- files --------------------------------------------------------------------------------------

    def save_file(self, response: Response, kind: str, division: str | None, season: str | None) -> None:
        body = response.body
        result = TargetResult(
            kind, division, season, response.url, "failed", response.status, bytes=len(body),
            from_cache="cached" in response.flags,
        )
        result.error = csv_body_problem(body)
        if result.error is None:
            name = "fixtures.csv" if kind == "fixtures" else f"{division}_{season_code(season)}.csv"
            path = self.staging_dir / name
            tmp = path.with_suffix(".part")
            tmp.write_bytes(body)
            os.replace(tmp, path)  # readers never see half a file
            result.status, result.sha256, result.path = "fetched", hashlib.sha256(body).hexdigest(), str(path)
        self._emit(result)

    def file_failed(self, failure: Failure) -> None:
        kw = failure.request.cb_kwargs
        response = getattr(failure.value, "response", None)
        self._emit(
            TargetResult(
                kw["kind"], kw["division"], kw["season"], failure.request.url, "failed",
                http_status=response.status if response is not None else None,
                error=describe_failure(failure, self._timeout()),
            )
        )

    def closed(self, reason: str) -> None:
        """Account for every requested target that produced no line yet."""
        cut_short = f"crawl ended ({reason}) before this file was downloaded"
        for (division, season), url in self.requested.items():
            if ("season_file", division, season) not in self.done:
                self._emit(TargetResult("season_file", division, season, url, "failed", error=cut_short))
        if self.fixtures and ("fixtures", None, None) not in self.done:
            self._emit(TargetResult("fixtures", None, None, None, "failed", error=cut_short))
        for division, season in self._missing():
            error = self._page_error(division)
            status = "failed" if error else "not_published"
            self._emit(TargetResult("season_file", division, season, None, status, error=error))
        if self.divisions is None and self.page_errors:  # "all divisions" but some pages unreadable
            for url, error in self.page_errors.items():
                self._emit(TargetResult("season_file", None, None, url, "failed", error=f"page {url}: {error}"))

    def _missing(self) -> list[tuple[str | None, str | None]]:
        """Requested (division, season) pairs no page linked; a None side means "any"."""
        linked = set(self.requested)
        if self.divisions is not None and self.seasons is not None:
            return [(d, s) for d in sorted(self.divisions) for s in sorted(self.seasons) if (d, s) not in linked]
        if self.divisions is not None:
            return [(d, None) for d in sorted(self.divisions) if all(k[0] != d for k in linked)]
        if self.seasons is not None:
            return [(None, s) for s in sorted(self.seasons) if all(k[1] != s for k in linked)]
        return []

    def _page_error(self, division: str | None) -> str | None:
        """Why a division's links could not be read (index or its country page failed), if they couldn't."""
        if self.index_url in self.page_errors:
            return f"index page {INDEX_PAGE} failed: {self.page_errors[self.index_url]}"
        known = division in DIVISIONS
        for url, error in self.page_errors.items():
            if not known or _basename(url) == DIVISIONS[division].country_page:
                return f"country page {_basename(url)} failed: {error}"
        return None

    def _emit(self, result: TargetResult) -> None:
        self.done.add((result.kind, result.division, result.season))
        with self.results_file.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(result)) + "\n")
        log = self.logger.info if result.status != "failed" else self.logger.warning
        log("%s %s %s: %s%s", result.kind, result.division, result.season, result.status,
            f" ({result.error})" if result.error else "")

    def _timeout(self) -> float | None:
        return self.crawler.settings.getfloat("DOWNLOAD_TIMEOUT") if getattr(self, "crawler", None) else None


def _html(response: Response) -> str:
    return response.text if isinstance(response, TextResponse) else response.body.decode("latin-1")


def _basename(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1]


# --------------------------------------------------------------------------------------------------
# Settings and entry point
# --------------------------------------------------------------------------------------------------


def crawl_settings(
    *, polite: bool, timeout_s: float, retries: int, cache_dir: Path, log_file: Path | None
) -> dict[str, Any]:
    """Scrapy settings for one crawl. Polite = the live site; otherwise a loopback mirror, where any
    delay would only be measured by the benchmark."""
    settings: dict[str, Any] = {
        "USER_AGENT": USER_AGENT,
        "ROBOTSTXT_OBEY": True,
        "COOKIES_ENABLED": False,
        # no console into the crawl: Telnet, nor Scrapy 2.19's remote control (an HTTP server executing code sent
        # to it, which also writes a job file under the user's ~/.local/state at every crawl, and imports aiohttp)
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "DOWNLOAD_TIMEOUT": timeout_s,
        "DOWNLOAD_FAIL_ON_DATALOSS": True,  # a short body is an error, not a "partial" response
        "RETRY_ENABLED": True,
        "RETRY_TIMES": retries,
        "HTTPCACHE_ENABLED": True,
        "HTTPCACHE_DIR": str(Path(cache_dir).resolve()),
        "HTTPCACHE_EXPIRATION_SECS": 0,
        "HTTPCACHE_POLICY": f"{_HERE}.AlwaysRevalidatePolicy",
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            f"{_HERE}.BackoffRetryMiddleware": 550,
            "scrapy.downloadermiddlewares.httpcache.HttpCacheMiddleware": None,
            f"{_HERE}.RevalidatingCacheMiddleware": 900,
        },
        "LOG_LEVEL": "INFO",
        "LOG_FILE": str(log_file) if log_file else None,
        "LOG_ENABLED": log_file is not None,
    }
    if polite:
        settings |= {
            "CONCURRENT_REQUESTS_PER_DOMAIN": 2,
            "DOWNLOAD_DELAY": 1.0,
            "RANDOMIZE_DOWNLOAD_DELAY": True,
            "AUTOTHROTTLE_ENABLED": True,
            "AUTOTHROTTLE_START_DELAY": 2.0,
            "AUTOTHROTTLE_MAX_DELAY": 30.0,
            "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
            "T2B_RETRY_BACKOFF_BASE": 5.0,
            "T2B_RETRY_BACKOFF_MAX": 120.0,
        }
    else:
        settings |= {
            "CONCURRENT_REQUESTS": 32,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 32,
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "T2B_RETRY_BACKOFF_BASE": 0.1,
            "T2B_RETRY_BACKOFF_MAX": 2.0,
        }
    return settings


def main(argv: list[str] | None = None) -> int:
    """``python -m time2bet.ingestion.spider``: one crawl, exit 0 iff it finished normally."""
    from scrapy.crawler import AsyncCrawlerProcess

    p = argparse.ArgumentParser(prog="python -m time2bet.ingestion.spider", description=main.__doc__)
    p.add_argument("--base-url", required=True)
    p.add_argument("--staging-dir", required=True, type=Path)
    p.add_argument("--cache-dir", required=True, type=Path)
    p.add_argument("--results", required=True, type=Path, help="JSON lines, one per target (appended)")
    p.add_argument("--divisions", help="comma-separated; omit for all")
    p.add_argument("--seasons", help="comma-separated labels like 2019-20; omit for all")
    p.add_argument("--fixtures", action="store_true")
    p.add_argument("--polite", action="store_true")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--retries", type=int, default=3)
    p.add_argument("--log-file", type=Path)
    p.add_argument("--parent-pid", type=int, help="exit as soon as this process (the caller) is gone")
    args = p.parse_args(argv)
    if args.parent_pid:
        die_with_parent(args.parent_pid)

    settings = crawl_settings(
        polite=args.polite, timeout_s=args.timeout, retries=args.retries, cache_dir=args.cache_dir,
        log_file=args.log_file,
    )
    process = AsyncCrawlerProcess(settings)
    crawler = process.create_crawler(FootballDataSpider)
    process.crawl(
        crawler, base_url=args.base_url, staging_dir=str(args.staging_dir), results_file=str(args.results),
        divisions=args.divisions, seasons=args.seasons, fixtures=args.fixtures,
    )
    process.start()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    reason, bugs = stats.get("finish_reason"), stats.get("spider_exceptions/count", 0)
    if reason != "finished" or bugs:
        print(f"crawl did not finish cleanly: finish_reason={reason!r}, spider exceptions={bugs}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from time2bet.ingestion.spider import main as _main  # the importable module, not __main__

    sys.exit(_main())
