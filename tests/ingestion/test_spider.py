"""The Scrapy crawl, end to end: a real subprocess crawling the replay server over loopback HTTP."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

import pytest

from time2bet.football import season_file_path
from time2bet.ingestion.crawl import CrawlError, FetchResult, crawl, is_loopback
from time2bet.ingestion.spider import (
    USER_AGENT,
    AlwaysRevalidatePolicy,
    backoff_delay,
    crawl_settings,
    csv_body_problem,
)
from time2bet.source.mirror import ReplayServer
from time2bet.source.sample_site import DEFAULT_AS_OF, generate_sample_site

DIVS = ("E0", "E1", "D1")
SEASONS = ("2021-22", "2022-23", "2023-24", "2024-25")


@pytest.fixture(scope="module")
def site_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site")
    generate_sample_site(root, divisions=DIVS, seasons=SEASONS)
    return root


@pytest.fixture
def server(site_root):
    with ReplayServer(site_root, as_of=DEFAULT_AS_OF) as srv:
        yield srv


def served(server, path: str) -> bytes:
    """The bytes the replay server serves for a path (as of its date): ask it directly over HTTP."""
    with urllib.request.urlopen(f"{server.url}/{path}", timeout=5) as resp:
        return resp.read()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def by_target(results: list[FetchResult]) -> dict[tuple[str | None, str | None], FetchResult]:
    return {(r.division, r.season): r for r in results if r.kind == "season_file"}


def logged_paths(server, suffix: str = "") -> list[tuple[str, int]]:
    return [(path.lstrip("/"), status) for _, path, status in server.request_log if path.endswith(suffix)]


# -- pure helpers -----------------------------------------------------------------------------------


def test_loopback_detection():
    assert is_loopback("http://127.0.0.1:8000") and is_loopback("http://127.8.9.10/")
    assert is_loopback("http://localhost:1234") and is_loopback("http://[::1]:80/")
    assert not is_loopback("https://www.football-data.co.uk") and not is_loopback("http://10.0.0.1")


def test_polite_and_loopback_settings(tmp_path):
    polite = crawl_settings(polite=True, timeout_s=30, retries=3, cache_dir=tmp_path, log_file=None)
    assert polite["AUTOTHROTTLE_ENABLED"] and polite["AUTOTHROTTLE_TARGET_CONCURRENCY"] <= 1
    assert polite["DOWNLOAD_DELAY"] > 0 and polite["CONCURRENT_REQUESTS_PER_DOMAIN"] <= 2
    assert "time2bet" in polite["USER_AGENT"] == USER_AGENT and polite["ROBOTSTXT_OBEY"]
    fast = crawl_settings(polite=False, timeout_s=30, retries=3, cache_dir=tmp_path, log_file=None)
    assert fast["DOWNLOAD_DELAY"] == 0 and not fast["AUTOTHROTTLE_ENABLED"]
    assert fast["CONCURRENT_REQUESTS_PER_DOMAIN"] == 32 and fast["HTTPCACHE_ENABLED"]


def test_csv_body_checks():
    assert csv_body_problem(b"\xef\xbb\xbfDiv,Date\nE0,01/01/2025\n") is None
    assert csv_body_problem("Div,HomeTeam\nE0,Mönchengrund\n".encode("latin-1")) is None
    assert "empty" in csv_body_problem(b"  \n")
    assert "UTF-16" in csv_body_problem("Div,Date\n".encode("utf-16"))
    assert "NUL" in csv_body_problem("Div,Date\n".encode("utf-16-le"))
    assert "HTML" in csv_body_problem(b"\n<!DOCTYPE html><html><body>Error</body></html>")
    assert "'Busy'" in csv_body_problem(b"<HTML><HEAD><TITLE>Busy</TITLE></HEAD></HTML>")
    assert "no comma" in csv_body_problem(b"Service unavailable\nplease retry\n")


def test_retry_backoff_grows_and_is_capped():
    assert [backoff_delay(n, 0.5, 3.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
    assert backoff_delay(1, 0.5, 30.0, retry_after=b"7") == 7.0
    assert backoff_delay(1, 0.5, 30.0, retry_after=b"Wed, 21 Oct 2015 07:28:00 GMT") == 0.5


def test_cache_policy_always_revalidates_and_keeps_no_junk():
    from scrapy.http import Request, Response
    from scrapy.settings import Settings

    policy = AlwaysRevalidatePolicy(Settings())
    url = "http://127.0.0.1:1/mmz4281/2425/E0.csv"
    day = "Sat, 01 Mar 2025 00:00:00 GMT"
    headers = {"Last-Modified": day, "ETag": '"abc"', "Date": day}
    good = Response(url, status=200, headers=headers, body=b"Div,Date\nE0,01/03/2025\n")
    request = Request(url)
    assert policy.should_cache_response(good, request)
    assert not policy.is_cached_response_fresh(good, request)  # a year-old file is still asked about
    assert request.headers[b"If-None-Match"] == b'"abc"' and b"If-Modified-Since" in request.headers
    assert not policy.is_cached_response_valid(good, Response(url, status=500), request)
    assert policy.is_cached_response_valid(good, Response(url, status=304), request)
    junk = Response(url, status=200, headers=headers, body=b"<html><body>Please try again later</body></html>")
    assert not policy.should_cache_response(junk, request)


# -- crawls -----------------------------------------------------------------------------------------


def test_crawl_then_recrawl_revalidates(server, tmp_path):
    """Exactly the requested targets, right bytes; then an unchanged site costs only 304s."""
    kw = dict(
        divisions=["E0", "D1", "SP1"], seasons=["2023-24", "2024-25", "2019-20"], fixtures=True,
        staging_dir=tmp_path / "staging", cache_dir=tmp_path / "cache", log_file=tmp_path / "crawl.log",
    )
    results = crawl(server.url, **kw)
    first = logged_paths(server)
    server.request_log.clear()
    again = crawl(server.url, **kw)
    second = logged_paths(server)

    targets = by_target(results)
    assert len(targets) == 9 and len(results) == 10
    for div in ("E0", "D1"):
        for season in ("2023-24", "2024-25"):
            r = targets[(div, season)]
            body = served(server, season_file_path(div, season))
            assert (r.status, r.http_status, r.error, r.from_cache) == ("fetched", 200, None, False)
            assert r.sha256 == sha(body) and r.bytes == len(body) and r.path.read_bytes() == body
            assert r.path.name == f"{div}_{season[2:4]}{season[5:]}.csv"
            assert r.url == f"{server.url}/{season_file_path(div, season)}"
    for key in [("E0", "2019-20"), ("D1", "2019-20"), ("SP1", "2023-24"), ("SP1", "2024-25"), ("SP1", "2019-20")]:
        assert (targets[key].status, targets[key].error, targets[key].path) == ("not_published", None, None)
    fixtures = results[-1]
    assert (fixtures.kind, fixtures.status) == ("fixtures", "fetched")
    assert fixtures.sha256 == sha(served(server, "fixtures.csv")) and fixtures.path.name == "fixtures.csv"
    assert fixtures.path.read_bytes().startswith(b"Div,Date,Time,HomeTeam,AwayTeam")

    assert ("robots.txt", 200) in first and ("data.php", 200) in first
    assert not any("E1.csv" in p for p, _ in first), "E1 was not requested"
    assert "time2bet" in (tmp_path / "crawl.log").read_text()  # logs go to the file, with our user agent

    csvs = [(p, s) for p, s in second if p.endswith(".csv") and "fixtures" not in p]
    assert len(csvs) == 4 and all(s == 304 for _, s in csvs), second
    assert ("robots.txt", 304) in second and ("data.php", 304) in second
    assert [(r.division, r.season, r.status, r.sha256) for r in again] == [
        (r.division, r.season, r.status, r.sha256) for r in results
    ]
    assert all(r.from_cache for r in again if r.status == "fetched")


def test_failures_are_reported_and_do_not_stop_the_crawl(server, tmp_path):
    faults = {
        ("E0", "2021-22"): ("http_404", None),
        ("E0", "2022-23"): ("http_500", None),
        ("E0", "2023-24"): ("http_500", 1),  # transient: the retry succeeds
        ("E1", "2021-22"): ("slow:4", None),
        ("E1", "2022-23"): ("truncate", None),
        ("E1", "2023-24"): ("html_error", None),
        ("D1", "2021-22"): ("empty", None),
        ("D1", "2022-23"): ("utf16", None),
    }
    for (div, season), (kind, times) in faults.items():
        server.inject_fault(season_file_path(div, season), kind, times=times)
    results = crawl(
        server.url, divisions=None, seasons=None, fixtures=False, staging_dir=tmp_path / "staging",
        cache_dir=tmp_path / "cache", timeout_s=1.0, retries=2,
    )
    log = logged_paths(server)
    targets = by_target(results)
    assert set(targets) == {(d, s) for d in DIVS for s in SEASONS}

    def failed(div, season):
        r = targets[(div, season)]
        assert (r.status, r.path, r.sha256) == ("failed", None, None), r
        return r

    assert failed("E0", "2021-22").error == "HTTP 404 Not Found" and targets[("E0", "2021-22")].http_status == 404
    assert failed("E0", "2022-23").error == "HTTP 500 Internal Server Error after 2 retries"
    assert "timeout" in failed("E1", "2021-22").error and "1 s" in targets[("E1", "2021-22")].error
    assert "truncated" in failed("E1", "2022-23").error
    assert "HTML" in failed("E1", "2023-24").error
    assert "empty" in failed("D1", "2021-22").error and targets[("D1", "2021-22")].bytes == 0
    assert "UTF-16" in failed("D1", "2022-23").error

    healthy = [k for k in targets if k not in faults] + [("E0", "2023-24")]
    for div, season in healthy:
        r = targets[(div, season)]
        assert r.status == "fetched" and r.sha256 == sha(served(server, season_file_path(div, season)))
    assert [s for p, s in log if p == season_file_path("E0", "2023-24")] == [500, 200]  # retried once
    assert [s for p, s in log if p == season_file_path("E0", "2022-23")] == [500, 500, 500]  # 1 + 2 retries


def test_unreadable_pages_fail_their_targets_not_published_is_only_for_absent_links(server, tmp_path):
    kw = dict(divisions=["E0", "D1"], seasons=["2024-25"], fixtures=True, cache_dir=tmp_path / "cache", retries=0)
    server.inject_fault("germanym.php", "http_404")
    targets = by_target(crawl(server.url, staging_dir=tmp_path / "a", **kw))
    assert targets[("E0", "2024-25")].status == "fetched"
    assert (targets[("D1", "2024-25")].status, targets[("D1", "2024-25")].error) == (
        "failed", "country page germanym.php failed: HTTP 404 Not Found")

    server.clear_faults()
    server.inject_fault("data.php", "http_500")
    results = crawl(server.url, staging_dir=tmp_path / "b", **kw)
    assert [(r.kind, r.status) for r in results] == [("season_file", "failed")] * 2 + [("fixtures", "fetched")]
    assert results[0].error == "index page data.php failed: HTTP 500 Internal Server Error"


def test_crawl_process_failure_raises_with_log_tail(server, tmp_path):
    """A bug or environment problem inside the crawl is not a per-file failure: it raises, with the log."""
    staging = tmp_path / "staging"
    (staging / "E0_2425.csv").mkdir(parents=True)  # a directory where the spider must write a file
    with pytest.raises(CrawlError, match=r"(?s)exit 1.*IsADirectoryError"):
        crawl(server.url, divisions=["E0"], seasons=["2024-25"], fixtures=False, staging_dir=staging,
              cache_dir=tmp_path / "cache")


@pytest.mark.realdata
def test_crawl_real_data_slice(real_data_root, tmp_path):
    divisions, seasons = ["E0", "D1", "SP1"], ["2018-19", "2019-20"]
    with ReplayServer(real_data_root) as srv:
        results = crawl(srv.url, divisions=divisions, seasons=seasons, fixtures=False,
                        staging_dir=tmp_path / "staging", cache_dir=tmp_path / "cache")
    targets = by_target(results)
    assert set(targets) == {(d, s) for d in divisions for s in seasons}
    for (div, season), r in targets.items():
        served = (real_data_root / season_file_path(div, season)).read_bytes()
        assert r.status == "fetched" and r.sha256 == sha(served) and r.bytes == len(served)
