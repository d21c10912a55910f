"""The replay server, over real HTTP on 127.0.0.1: as-of view, index pages, fixtures, encodings,
conditional requests, injected faults."""

from __future__ import annotations

import csv
import datetime as dt
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from time2bet.football import parse_match_date
from time2bet.source.mirror import ReplayServer, parse_fault_spec
from time2bet.source.sample_site import DEFAULT_AS_OF, generate_sample_site

AS_OF = DEFAULT_AS_OF  # 2025-03-01, inside the sample site's last season
FILE = "mmz4281/2425/D1.csv"  # has Mönchengrund, starts with a BOM

THREE_SEASONS = ("2022-23", "2023-24", "2024-25")  # the fixtures below reason about these three


def fetch(url: str, path: str, *, method: str = "GET", headers: dict | None = None,
          body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection; returns status, headers (lower-case names) and body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def rows_of(body: bytes, encoding: str = "utf-8-sig") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode(encoding), newline="")))


def dates_of(path: Path) -> list[dt.date]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [parse_match_date(r["Date"]) for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mirror") / "site"
    generate_sample_site(root, seasons=THREE_SEASONS)
    return root


@pytest.fixture(scope="module")
def server(site):
    """Shared and read-only: tests that inject faults start their own."""
    with ReplayServer(site, as_of=AS_OF) as srv:
        yield srv


@pytest.fixture
def own_server(site):
    with ReplayServer(site, as_of=AS_OF) as srv:
        yield srv


def links(server: ReplayServer, page: str) -> list[str]:
    status, _, body = fetch(server.url, "/" + page)
    assert status == 200
    return re.findall(r'<A HREF="([^"]+)">', body.decode())


# -- as-of view ------------------------------------------------------------------------------------------


def test_season_files_hold_only_rows_before_as_of(server, site):
    for rel in sorted(p.relative_to(site).as_posix() for p in site.rglob("*.csv")):
        source = (site / rel).read_bytes()
        status, headers, body = fetch(server.url, "/" + rel)
        assert status == 200 and headers["content-type"] == "text/csv"
        assert int(headers["content-length"]) == len(body)
        expected = [d for d in dates_of(site / rel) if d < AS_OF]
        served = [parse_match_date(r["Date"]) for r in rows_of(body)]
        assert served == expected
        lines = source.split(b"\n")
        assert body == b"\n".join(lines[: len(expected) + 1]) + b"\n"  # original bytes, BOM included


def test_seasons_not_started_by_as_of_are_absent(site):
    with ReplayServer(site, as_of=dt.date(2023, 7, 15)) as srv:
        assert fetch(srv.url, "/mmz4281/2324/E0.csv")[0] == 404
        assert fetch(srv.url, "/mmz4281/2425/D1.csv")[0] == 404
        status, _, body = fetch(srv.url, "/mmz4281/2223/E0.csv")  # finished: served whole
        assert status == 200 and body == (site / "mmz4281/2223/E0.csv").read_bytes()
        assert srv.served_files() == sorted(f"mmz4281/2223/{d}.csv" for d in ("D1", "E0", "E1"))


def test_without_as_of_everything_is_served_as_is(site):
    with ReplayServer(site) as srv:
        for path in site.rglob("*.csv"):
            status, _, body = fetch(srv.url, "/" + path.relative_to(site).as_posix())
            assert status == 200 and body == path.read_bytes()
        status, _, body = fetch(srv.url, "/fixtures.csv")
        assert status == 200 and body == b"Div,Date,Time,HomeTeam,AwayTeam\n"


# -- index pages -----------------------------------------------------------------------------------------


def test_index_pages_link_exactly_the_served_files(server, site):
    pages = links(server, "data.php")
    assert pages == ["englandm.php", "germanym.php", "fixtures.csv"]
    linked = [href for page in pages if page.endswith(".php") for href in links(server, page) if href.endswith(".csv")]
    on_disk = [p.relative_to(site).as_posix() for p in site.rglob("*.csv")]
    assert sorted(linked) == sorted(on_disk) == server.served_files()  # all three seasons have started
    for href in linked:
        assert fetch(server.url, "/" + href)[0] == 200
    assert fetch(server.url, "/spainm.php")[0] == 404  # no Spanish files


def test_country_page_lists_seasons_newest_first(server):
    _, headers, body = fetch(server.url, "/englandm.php")
    assert headers["content-type"].startswith("text/html")
    text = body.decode()
    assert re.findall(r"Season (\d{4}/\d{4})", text) == ["2024/2025", "2023/2024", "2022/2023"]
    assert '<A HREF="mmz4281/2425/E0.csv">Premier League</A>' in text
    assert '<A HREF="mmz4281/2425/E1.csv">Championship</A>' in text


def test_index_of_an_early_as_of_has_only_started_seasons(site):
    with ReplayServer(site, as_of=dt.date(2022, 8, 10)) as srv:  # E0/E1 have begun, D1 (mid-August) not
        assert links(srv, "data.php") == ["englandm.php", "fixtures.csv"]
        assert [h for h in links(srv, "englandm.php") if h.endswith(".csv")] == [
            "mmz4281/2223/E0.csv", "mmz4281/2223/E1.csv"]
        assert fetch(srv.url, "/germanym.php")[0] == 404


def test_robots_and_unknown_paths(server):
    status, headers, body = fetch(server.url, "/robots.txt")
    assert status == 200 and b"User-agent: *" in body and b"Disallow: /__faults__" in body
    for path in ("/nope", "/mmz4281/2425/XX.csv", "/mmz4281/1920/E0.csv", "/../etc/passwd"):
        status, headers, body = fetch(server.url, path)
        assert status == 404 and headers["content-type"].startswith("text/html") and b"<html>" in body
        assert int(headers["content-length"]) == len(body)


# -- fixtures --------------------------------------------------------------------------------------------


def test_fixtures_are_the_next_week_without_results(server, site):
    status, headers, body = fetch(server.url, "/fixtures.csv")
    assert status == 200 and headers["content-type"] == "text/csv"
    rows = rows_of(body)
    header = next(csv.reader(io.StringIO(body.decode())))
    assert header[:6] == ["Div", "Date", "Time", "HomeTeam", "AwayTeam", "Referee"]
    forbidden = re.compile(r"^(FT|HT)|^(HS|AS|HST|AST|HF|AF|HC|AC|HY|AY|HR|AR)$|C[HDA]$|C[<>]2\.5$|[<>]2\.5$")
    assert not [c for c in header if forbidden.search(c)]
    assert {"B365H", "B365D", "B365A", "PSH", "AvgH", "MaxA"} <= set(header)
    end = AS_OF + dt.timedelta(days=7)
    expected = sum(1 for p in site.rglob("*.csv") for d in dates_of(p) if AS_OF <= d < end)
    assert len(rows) == expected > 0
    dates = [parse_match_date(r["Date"]) for r in rows]
    assert all(AS_OF <= d < end for d in dates) and dates == sorted(dates)
    assert {r["Div"] for r in rows} == {"E0", "E1", "D1"}
    assert all(r["Referee"] == "" for r in rows if r["Div"] == "D1")  # union of columns: D1 has none
    assert all(r["Referee"] and r["PSH"] for r in rows if r["Div"] == "E0")


def test_fixtures_window_length_is_configurable(site):
    with ReplayServer(site, as_of=AS_OF, fixtures_days=1) as srv:
        rows = rows_of(fetch(srv.url, "/fixtures.csv")[2])
        assert rows and {r["Date"] for r in rows} == {"01/03/2025"}


# -- encodings and conditional requests -----------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_latin1_serving_round_trips_non_ascii_names(site, encoding):
    with ReplayServer(site, as_of=AS_OF, encoding=encoding) as srv:
        _, _, body = fetch(srv.url, "/" + FILE)
        assert not body.startswith(b"\xef\xbb\xbf")  # no UTF-8 BOM in a Latin-1 body
        assert "Mönchengrund".encode("latin-1") in body and "Mönchengrund".encode() not in body
        with ReplayServer(site, as_of=AS_OF) as utf8:
            assert rows_of(body, "latin-1") == rows_of(fetch(utf8.url, "/" + FILE)[2])
        fixtures = fetch(srv.url, "/fixtures.csv")[2].decode(encoding)
        assert "Llanfair Môn" in fixtures or "Mönchengrund" in fixtures or "Großfelden" in fixtures


def test_characters_outside_latin1_are_replaced(tmp_path):
    (tmp_path / "mmz4281/1920").mkdir(parents=True)
    (tmp_path / "mmz4281/1920/P1.csv").write_text("Div,Date,HomeTeam,AwayTeam\nP1,10/08/2019,Łódź,Porto\n", "utf-8")
    with ReplayServer(tmp_path, encoding="latin-1") as srv:
        assert fetch(srv.url, "/mmz4281/1920/P1.csv")[2] == b"Div,Date,HomeTeam,AwayTeam\nP1,10/08/2019,?\xf3d?,Porto\n"


def test_etag_and_if_none_match(server):
    status, headers, _body = fetch(server.url, "/" + FILE)
    etag = headers["etag"]
    assert status == 200 and re.fullmatch(r'"[0-9a-f]+"', etag) and headers["last-modified"]
    status, headers304, body304 = fetch(server.url, "/" + FILE, headers={"If-None-Match": etag})
    assert status == 304 and body304 == b"" and headers304["etag"] == etag
    assert fetch(server.url, "/" + FILE, headers={"If-None-Match": '"other", ' + etag})[0] == 304
    assert fetch(server.url, "/" + FILE, headers={"If-None-Match": '"other"'})[0] == 200
    # another file, another tag; pages and fixtures carry validators too
    assert fetch(server.url, "/mmz4281/2425/E0.csv")[1]["etag"] != etag
    for page in ("/data.php", "/englandm.php", "/fixtures.csv"):
        _, h, _ = fetch(server.url, page)
        assert fetch(server.url, page, headers={"If-None-Match": h["etag"]})[0] == 304


def test_if_modified_since(server, site):
    _, headers, body = fetch(server.url, "/" + FILE)
    last = max(parse_match_date(r["Date"]) for r in rows_of(body))
    assert headers["last-modified"] == (last + dt.timedelta(days=1)).strftime("%a, %d %b %Y 00:00:00 GMT")
    lm = headers["last-modified"]
    assert fetch(server.url, "/" + FILE, headers={"If-Modified-Since": lm})[0] == 304
    assert fetch(server.url, "/" + FILE, headers={"If-Modified-Since": "Sun, 01 Jun 2025 00:00:00 GMT"})[0] == 304
    assert fetch(server.url, "/" + FILE, headers={"If-Modified-Since": "Sat, 01 Jun 2024 00:00:00 GMT"})[0] == 200
    assert fetch(server.url, "/" + FILE, headers={"If-Modified-Since": "garbage"})[0] == 200
    # If-None-Match wins over If-Modified-Since
    assert fetch(server.url, "/" + FILE, headers={"If-None-Match": '"x"', "If-Modified-Since": lm})[0] == 200
    # a finished season did not change since the day after its last match
    _, old, _ = fetch(server.url, "/mmz4281/2223/E0.csv")
    last_old = max(dates_of(site / "mmz4281/2223/E0.csv"))
    assert old["last-modified"] == (last_old + dt.timedelta(days=1)).strftime("%a, %d %b %Y 00:00:00 GMT")


def test_head_has_headers_but_no_body(server):
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("HEAD", "/" + FILE)
    resp = conn.getresponse()
    assert resp.status == 200 and int(resp.getheader("Content-Length")) > 0 and resp.read() == b""
    conn.close()


def test_keep_alive_connection_serves_many_requests(server):
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    for _ in range(20):
        conn.request("GET", "/" + FILE)
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read()
    conn.close()


# -- faults ----------------------------------------------------------------------------------------------


def test_http_500_for_n_requests_then_recovery(own_server):
    own_server.inject_fault("mmz4281/2425/*.csv", "http_500", times=2)
    statuses = [fetch(own_server.url, "/" + FILE)[0] for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert fetch(own_server.url, "/mmz4281/2425/E0.csv")[0] == 200  # the two faults were used up


def test_http_404_only_on_matching_paths(own_server):
    own_server.inject_fault("mmz4281/*/D1.csv", "http_404")
    for _ in range(2):
        status, headers, _body = fetch(own_server.url, "/mmz4281/2324/D1.csv")
        assert status == 404 and headers["content-type"].startswith("text/html")
    assert fetch(own_server.url, "/mmz4281/2324/E0.csv")[0] == 200
    own_server.clear_faults()
    assert fetch(own_server.url, "/mmz4281/2324/D1.csv")[0] == 200


def test_slow(own_server):
    own_server.inject_fault(FILE, "slow:0.6", times=1)
    start = time.perf_counter()
    status, _, body = fetch(own_server.url, "/" + FILE)
    assert status == 200 and body and time.perf_counter() - start >= 0.55
    start = time.perf_counter()
    fetch(own_server.url, "/" + FILE)
    assert time.perf_counter() - start < 0.5


def test_truncate_declares_full_length_and_sends_half(own_server):
    full = fetch(own_server.url, "/" + FILE)[2]
    own_server.inject_fault(FILE, "truncate", times=1)
    parts = urlsplit(own_server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", "/" + FILE)
    resp = conn.getresponse()
    assert resp.status == 200 and int(resp.getheader("Content-Length")) == len(full)
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    assert 0 < len(info.value.partial) < len(full) and full.startswith(info.value.partial)
    conn.close()
    assert fetch(own_server.url, "/" + FILE)[2] == full


def test_html_error_page_with_status_200(own_server):
    own_server.inject_fault(FILE, "html_error")
    status, headers, body = fetch(own_server.url, "/" + FILE)
    assert status == 200 and headers["content-type"].startswith("text/html") and b"<html>" in body
    assert b"HomeTeam" not in body and headers["etag"]


def test_empty_body_with_status_200(own_server):
    own_server.inject_fault(FILE, "empty")
    status, headers, body = fetch(own_server.url, "/" + FILE)
    assert status == 200 and body == b"" and headers["content-length"] == "0"


def test_utf16_body(own_server):
    plain = fetch(own_server.url, "/" + FILE)[2]
    own_server.inject_fault(FILE, "utf16", times=1)
    status, _, body = fetch(own_server.url, "/" + FILE)
    assert status == 200 and body.startswith((b"\xff\xfe", b"\xfe\xff"))
    assert body.decode("utf-16") == plain.decode("utf-8-sig")


def test_invalid_faults_are_rejected(own_server):
    for kind, times in (("boom", None), ("slow:x", None), ("slow:-1", None), ("http_500", 0)):
        with pytest.raises(ValueError):
            own_server.inject_fault("*", kind, times=times)


def test_fault_control_endpoint(own_server):
    spec = json.dumps({"pattern": FILE, "kind": "http_500", "times": 1}).encode()
    status, _, body = fetch(own_server.url, "/__faults__", method="POST", body=spec,
                            headers={"Content-Type": "application/json"})
    assert status == 201 and json.loads(body)["faults"] == [{"pattern": FILE, "kind": "http_500", "times": 1}]
    assert fetch(own_server.url, "/" + FILE)[0] == 500
    assert fetch(own_server.url, "/" + FILE)[0] == 200
    fetch(own_server.url, "/__faults__", method="POST", body=json.dumps({"pattern": "*", "kind": "http_404"}).encode())
    assert fetch(own_server.url, "/data.php")[0] == 404
    status, _, body = fetch(own_server.url, "/__faults__", method="DELETE")
    assert status == 200 and json.loads(body) == {"faults": []}
    assert fetch(own_server.url, "/data.php")[0] == 200
    assert fetch(own_server.url, "/__faults__", method="POST", body=b'{"kind": "http_500"}')[0] == 400
    assert fetch(own_server.url, "/__faults__", method="POST", body=b"not json")[0] == 400
    assert fetch(own_server.url, "/data.php", method="POST", body=b"{}")[0] == 405


def test_parse_fault_spec():
    assert parse_fault_spec("mmz4281/*/D1.csv=http_500x2") == ("mmz4281/*/D1.csv", "http_500", 2)
    assert parse_fault_spec("fixtures.csv=slow:1.5") == ("fixtures.csv", "slow:1.5", None)
    assert parse_fault_spec("*=utf16x3") == ("*", "utf16", 3)
    with pytest.raises(ValueError):
        parse_fault_spec("nokind")


# -- bookkeeping, concurrency, lifecycle -----------------------------------------------------------------


def test_request_log(own_server):
    _, headers, _ = fetch(own_server.url, "/data.php")
    fetch(own_server.url, "/missing")
    fetch(own_server.url, "/data.php", headers={"If-None-Match": headers["etag"]})
    own_server.inject_fault("data.php", "http_500", times=1)
    fetch(own_server.url, "/data.php")
    assert own_server.request_log == [("GET", "/data.php", 200), ("GET", "/missing", 404),
                                      ("GET", "/data.php", 304), ("GET", "/data.php", 500)]


def test_64_parallel_requests_all_succeed(own_server, site):
    paths = ["/" + p.relative_to(site).as_posix() for p in site.rglob("*.csv")] + ["/data.php", "/fixtures.csv"]
    expected = {p: fetch(own_server.url, p)[2] for p in paths}
    jobs = [paths[i % len(paths)] for i in range(64)]
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda p: (p, fetch(own_server.url, p)), jobs))
    assert all(status == 200 and body == expected[p] for p, (status, _, body) in results)
    assert sum(1 for entry in own_server.request_log if entry[2] == 200) == 64 + len(paths)


def test_stop_closes_the_port(site):
    srv = ReplayServer(site, as_of=AS_OF).start()
    url = srv.url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    srv.inject_fault("*", "slow:30")
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(fetch, url, "/data.php")
        time.sleep(0.2)
        start = time.perf_counter()
        srv.stop()
        assert time.perf_counter() - start < 3  # a sleeping "slow" request does not hold up stop()
        slow.exception(timeout=10)
    with pytest.raises(OSError):
        fetch(url, "/data.php")


def test_command_line_server_runs_until_sigterm(site):
    """``python -m time2bet.source.mirror`` (what ``run_mirror`` does for the CLI): URL on stdout, faults."""
    cmd = [sys.executable, "-m", "time2bet.source.mirror", str(site), "--as-of", "2025-03-01", "--port", "0",
           "--fault", "fixtures.csv=http_500x1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        assert fetch(url, "/fixtures.csv")[0] == 500
        assert fetch(url, "/fixtures.csv")[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


# -- the real data ---------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_data_served_as_is_and_as_of(real_data_root):
    rel = "mmz4281/1920/E0.csv"
    with open(real_data_root / "MANIFEST.csv", encoding="utf-8", newline="") as fh:
        manifest = {r["path"]: r for r in csv.DictReader(fh)}
    source = (real_data_root / rel).read_bytes()
    with ReplayServer(real_data_root) as srv:
        status, _, body = fetch(srv.url, "/" + rel)
        assert status == 200 and body == source
        assert len(rows_of(body)) == int(manifest[rel]["rows"]) == 380
    as_of = dt.date(2020, 1, 1)
    expected = sum(1 for d in dates_of(real_data_root / rel) if d < as_of)
    with ReplayServer(real_data_root, as_of=as_of) as srv:
        rows = rows_of(fetch(srv.url, "/" + rel)[2])
        assert len(rows) == expected and 150 < expected < 380
        assert all(parse_match_date(r["Date"]) < as_of for r in rows)
        fixtures = rows_of(fetch(srv.url, "/fixtures.csv")[2])
        assert any(r["Div"] == "E0" and r["Date"] == "01/01/2020" for r in fixtures)
        assert "FTHG" not in fixtures[0] and "PSCH" not in fixtures[0]
        served = srv.served_files()
        assert len(served) == sum(1 for r in manifest.values() if r["first_date"] < "2020-01-01")
        assert "mmz4281/2021/E0.csv" not in served and fetch(srv.url, "/mmz4281/2021/E0.csv")[0] == 404


@pytest.mark.realdata
def test_real_data_full_crawl_at_32_concurrent_requests(real_data_root):
    paths = sorted("/" + p.relative_to(real_data_root).as_posix() for p in real_data_root.glob("mmz4281/*/*.csv"))
    assert len(paths) == 488
    with ReplayServer(real_data_root, encoding="latin-1") as srv:
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = list(pool.map(lambda p: fetch(srv.url, p)[0], paths))
        elapsed = time.perf_counter() - start
    assert statuses == [200] * 488
    assert elapsed < 15, f"crawl took {elapsed:.1f} s"
