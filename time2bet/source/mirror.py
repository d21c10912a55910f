"""Replay server: a football-data.co.uk look-alike served from a local directory, as of a chosen date.

The spider and the pipeline are tested against this instead of the live site: it serves the same paths
(``data.php``, ``<country>m.php``, ``mmz4281/<YYZZ>/<DIV>.csv``, ``fixtures.csv``) with the site's quirks
(Latin-1 on demand, conditional requests), hides everything played on or after ``as_of`` so a crawl sees
the site as it was that day, and injects faults (errors, slowness, truncation, junk 200s) on request.

Standard library only (ThreadingHTTPServer): bodies are rendered once and cached, so a crawl of every
file at 32 concurrent requests is bound by the client, not by the server.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import datetime as dt
import email.utils
import fnmatch
import functools
import hashlib
import html
import io
import json
import re
import signal
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit

from time2bet.football import DIVISIONS, parse_match_date, season_label, season_start_year

FAULT_KINDS = ("http_500", "http_404", "slow:<seconds>", "truncate", "html_error", "empty", "utf16")
MAX_SLOW_SECONDS = 120.0
CONTROL_PATH = "__faults__"

_FILE_RE = re.compile(r"^mmz4281/(\d{4})/([A-Z]{1,3}\d?)\.csv$")
_COUNTRY_PAGE_RE = re.compile(r"^([a-z]+)m\.php$")
# Pre-match 1X2 odds: a known bookmaker or market prefix directly followed by H/D/A. Closing odds (PSCH,
# VCCH, AvgCH...) and Asian handicap (B365AHH) do not match because their prefix is not in the list.
_PRE_MATCH_1X2_RE = re.compile(
    r"^(B365|BF|BFE|BS|BW|CL|GB|IW|LB|PS|SB|SJ|SO|SY|VC|WH|1XB|Max|Avg|BbMx|BbAv)[HDA]$")
_CHARSETS = {"iso8859-1": "ISO-8859-1", "cp1252": "windows-1252"}
_FIXTURE_BASE = ["Div", "Date", "Time", "HomeTeam", "AwayTeam"]
_ALIASES = {"HT": "HomeTeam", "AT": "AwayTeam"}  # a few old files name the teams HT/AT
_FAULT_SPEC_RE = re.compile(
    r"^(?P<pattern>.+)=(?P<kind>http_500|http_404|slow:\d+(?:\.\d+)?|truncate|html_error|empty|utf16)"
    r"(?:x(?P<times>\d+))?$")


@dataclass
class _Fault:
    pattern: str
    kind: str  # "slow" for "slow:<seconds>"
    seconds: float = 0.0
    remaining: int | None = None  # None: every matching request

    def describe(self) -> dict:
        kind = f"slow:{self.seconds:g}" if self.kind == "slow" else self.kind
        return {"pattern": self.pattern, "kind": kind, "times": self.remaining}


@dataclass(frozen=True)
class _Resource:
    """A rendered response body with its validators."""

    body: bytes
    content_type: str
    last_modified: dt.datetime  # UTC, whole seconds
    etag: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "etag", '"' + hashlib.blake2b(self.body, digest_size=12).hexdigest() + '"')


@dataclass
class _Scan:
    """One season file as of the date: the text of the rows before it, and the rows in the fixture window."""

    text: str | None  # None: no row before as_of, the file is not on the site yet
    last_date: dt.date | None
    header: list[str]
    fixtures: list[tuple[dt.date, str, int, dict[str, str]]]  # (date, time, row index, fields)


@functools.lru_cache(maxsize=65536)
def _date_or_none(text: str) -> dt.date | None:
    try:
        return parse_match_date(text)
    except ValueError:
        return None


def _parts(rel: str) -> tuple[str, str]:
    """``'mmz4281/1920/E0.csv'`` -> (``'2019-20'``, ``'E0'``)."""
    m = _FILE_RE.match(rel)
    return season_label(m[1]), m[2]


def _tier(div: str) -> int:
    return list(DIVISIONS).index(div) if div in DIVISIONS else len(DIVISIONS)


def _header(cells: list[str]) -> list[str]:
    """Column names without a BOM, with HT/AT read as HomeTeam/AwayTeam where those are missing."""
    cells = [cells[0].removeprefix("\ufeff"), *cells[1:]] if cells else []
    return [c if c not in _ALIASES or _ALIASES[c] in cells else _ALIASES[c] for c in cells]


def _rows(lines: list[str], date_col: int):
    """(row index, the row's physical lines, its Date cell) for each data row. The csv module runs only
    when a quote could hide a comma or a line break; otherwise splitting the line is exact and faster."""
    body = lines[1:]
    if not any('"' in line for line in body):
        for index, line in enumerate(body):
            cells = line.split(",", date_col + 1)
            yield index, line, cells[date_col] if len(cells) > date_col else ""
        return
    reader, consumed = csv.reader(body), 0
    for index, row in enumerate(reader):  # line_num maps rows, even multi-line ones, back to lines
        yield index, "".join(body[consumed:reader.line_num]), row[date_col] if len(row) > date_col else ""
        consumed = reader.line_num


def _midnight_utc(date: dt.date) -> dt.datetime:
    return dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC)


def _mtime_utc(path: Path) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(path.stat().st_mtime), tz=dt.UTC)


def _html_page(title: str, body: str) -> str:
    return (f"<HTML><HEAD><TITLE>{html.escape(title)}</TITLE></HEAD><BODY>\n"
            f"<H2>{html.escape(title)}</H2>\n{body}</BODY></HTML>\n")


def parse_fault_spec(spec: str) -> tuple[str, str, int | None]:
    """``"mmz4281/*/D1.csv=http_500x2"`` -> ``("mmz4281/*/D1.csv", "http_500", 2)`` (CLI ``--fault`` syntax)."""
    m = _FAULT_SPEC_RE.match(spec.strip())
    if not m:
        raise ValueError(f"bad fault spec {spec!r}: expected PATTERN=KIND[xN], KIND one of {FAULT_KINDS}")
    return m["pattern"], m["kind"], int(m["times"]) if m["times"] else None


class ReplayServer:
    """Serves ``root`` (football-data.co.uk layout) on ``host:port`` as the site looked on ``as_of``."""

    def __init__(self, root: Path, *, as_of: dt.date | None = None, host: str = "127.0.0.1", port: int = 0,
                 encoding: str = "utf-8", fixtures_days: int = 7):
        self.root = Path(root)
        if not (self.root / "mmz4281").is_dir():
            raise FileNotFoundError(f"{self.root} has no mmz4281/ directory (football-data.co.uk layout)")
        self.as_of = as_of
        self.host, self.port = host, port
        self.encoding = codecs.lookup(encoding).name
        self.fixtures_days = fixtures_days
        self.url = ""
        self.request_log: list[tuple[str, str, int]] = []
        self._files = self._catalog()
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()  # faults and request log
        self._render_lock = threading.RLock()  # rendering and the caches
        self._scans: dict[str, _Scan] = {}
        self._resources: dict[str, _Resource | None] = {}
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> ReplayServer:
        if self._httpd is not None:
            raise RuntimeError("server already started")
        self._stopping.clear()
        handler = type("ReplayHandler", (_Handler,), {"replay": self})
        self._httpd = _QuietServer((self.host, self.port), handler)
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"replay-server-{port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes requests sleeping in a "slow" fault
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------------------------

    def inject_fault(self, pattern: str, kind: str, *, times: int | None = None) -> None:
        """Make requests whose path (no leading slash) matches the fnmatch ``pattern`` misbehave;
        ``times=N``: only the first N matching requests. The first added matching fault wins."""
        seconds = 0.0
        if kind.startswith("slow:"):
            try:
                seconds = float(kind.split(":", 1)[1])
            except ValueError:
                raise ValueError(f"bad slow fault {kind!r}: expected slow:<seconds>") from None
            if not 0 <= seconds <= MAX_SLOW_SECONDS:
                raise ValueError(f"slow fault must be between 0 and {MAX_SLOW_SECONDS} seconds")
            kind = "slow"
        elif kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {FAULT_KINDS}")
        if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
            raise ValueError("times must be None or a positive integer")
        with self._lock:
            self._faults.append(_Fault(pattern.lstrip("/"), kind, seconds, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining != 0 and fnmatch.fnmatchcase(path, fault.pattern):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def _log(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.request_log.append((method, path, status))

    # -- content ---------------------------------------------------------------------------------------

    def _catalog(self) -> dict[str, Path]:
        """Season files of known divisions under mmz4281/, by site path."""
        files = {}
        for path in sorted((self.root / "mmz4281").glob("*/*.csv")):
            rel = path.relative_to(self.root).as_posix()
            m = _FILE_RE.match(rel)
            if m and m[2] in DIVISIONS:
                try:
                    season_label(m[1])
                except ValueError:
                    continue
                files[rel] = path
        return files

    def _encode(self, text: str) -> bytes:
        if self.encoding == "utf-8":
            return text.encode("utf-8")
        return text.removeprefix("\ufeff").encode(self.encoding, errors="replace")

    def _scan(self, rel: str) -> _Scan:
        """Split a season file at as_of; rows whose Date cannot be read are never "before" anything."""
        with self._render_lock:
            if rel in self._scans:
                return self._scans[rel]
            raw = self._files[rel].read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("cp1252", errors="replace")
            lines = io.StringIO(text, newline="").readlines()
            header = _header(next(csv.reader(lines[:1]), []))
            if self.as_of is None:
                scan = _Scan(text, None, header, [])
            elif "Date" not in header:  # cannot be dated: on the site as is, if it has any rows
                scan = _Scan(text if len(lines) > 1 else None, None, header, [])
            else:
                scan = self._split(rel, lines, header)
            self._scans[rel] = scan
            return scan

    def _split(self, rel: str, lines: list[str], header: list[str]) -> _Scan:
        assert self.as_of is not None
        window_end = self.as_of + dt.timedelta(days=self.fixtures_days)
        kept, fixtures, last = [lines[0]], [], None
        for index, span, cell in _rows(lines, header.index("Date")):
            date = _date_or_none(cell)
            if date is None:
                continue
            if date < self.as_of:
                kept.append(span)
                last = date if last is None or date > last else last
            elif date < window_end:
                fields = dict(zip(header, next(csv.reader(io.StringIO(span, newline="")))))
                fields["Div"] = fields.get("Div") or _parts(rel)[1]
                fixtures.append((date, fields.get("Time", ""), index, fields))
        return _Scan("".join(kept) if last else None, last, header, fixtures)

    def _season_file(self, rel: str) -> _Resource | None:
        scan = self._scan(rel)
        if scan.text is None:
            return None
        if self.as_of is None or scan.last_date is None:  # everything, or a file without dates: as is
            body = self._files[rel].read_bytes() if self.encoding == "utf-8" else self._encode(scan.text)
            return _Resource(body, "text/csv", _mtime_utc(self._files[rel]))
        # a file changes when the results of its last day are published (the day after), never after as_of
        published = min(scan.last_date + dt.timedelta(days=1), self.as_of)
        return _Resource(self._encode(scan.text), "text/csv", _midnight_utc(published))

    def _site_time(self) -> dt.datetime:
        if self.as_of is not None:
            return _midnight_utc(self.as_of)
        return max((_mtime_utc(p) for p in self._files.values()),
                   default=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))

    def served_files(self) -> list[str]:
        """Site paths of the season files on the site as of the date (renders them all on first call)."""
        return [rel for rel in self._files if self._resource(rel) is not None]

    def _fixtures(self) -> _Resource:
        rows, columns, has_referee = [], [], False
        if self.as_of is not None:
            by_age = sorted(self._files, key=lambda r: (season_start_year(_parts(r)[0]), _tier(_parts(r)[1])))
            for rel in by_age:
                scan = self._scan(rel)
                if not scan.fixtures:
                    continue
                has_referee |= "Referee" in scan.header
                columns += [c for c in scan.header if _PRE_MATCH_1X2_RE.match(c) and c not in columns]
                rows += [(d, t, _tier(f["Div"]), rel, i, f)
                         for d, t, i, f in scan.fixtures]
        header = _FIXTURE_BASE + (["Referee"] if has_referee else []) + columns
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([f.get(c, "") for c in header] for *_, f in sorted(rows, key=lambda r: r[:5]))
        return _Resource(self._encode(out.getvalue()), "text/csv", self._site_time())

    def _html(self, text: str) -> _Resource:
        charset = _CHARSETS.get(self.encoding, self.encoding)
        return _Resource(self._encode(text), f"text/html; charset={charset}", self._site_time())

    def _index(self) -> _Resource:
        served = sorted(self.served_files(), key=lambda r: _tier(_parts(r)[1]))
        countries = list(dict.fromkeys(DIVISIONS[_parts(r)[1]].country for r in served))
        links = "".join(f'<A HREF="{c.lower()}m.php">{html.escape(c)} Football Results</A><BR>\n'
                        for c in countries)
        links += '<BR>\n<A HREF="fixtures.csv">Upcoming fixtures</A><BR>\n'
        return self._html(_html_page("Football Results, Statistics & Soccer Betting Odds Data", links))

    def _country_page(self, country: str) -> _Resource | None:
        files = [r for r in self.served_files() if DIVISIONS[_parts(r)[1]].country.lower() == country]
        if not files:
            return None
        name = DIVISIONS[_parts(files[0])[1]].country
        seasons: dict[str, list[str]] = {}
        for rel in files:
            seasons.setdefault(_parts(rel)[0], []).append(rel)
        body = '<A HREF="data.php">Data files</A><BR>\n'
        for label in sorted(seasons, key=season_start_year, reverse=True):
            start = season_start_year(label)
            body += f"<H3>Season {start}/{start + 1}</H3>\n"
            for rel in sorted(seasons[label], key=lambda r: _tier(_parts(r)[1])):
                body += f'<A HREF="{rel}">{html.escape(DIVISIONS[_parts(rel)[1]].name)}</A><BR>\n'
        return self._html(_html_page(f"{name} Football Results and Betting Odds Data", body))

    def _resource(self, path: str) -> _Resource | None:
        """The normal response body for a site path (no leading slash), None for 404. Cached."""
        if path in self._resources:
            return self._resources[path]
        with self._render_lock:
            if path not in self._resources:
                self._resources[path] = self._render(path)
            return self._resources[path]

    def _render(self, path: str) -> _Resource | None:
        if path in self._files:
            return self._season_file(path)
        if path in ("", "data.php"):
            return self._index()
        if path == "fixtures.csv":
            return self._fixtures()
        if path == "robots.txt":
            text = f"User-agent: *\nDisallow: /{CONTROL_PATH}\nAllow: /\n"
            return _Resource(self._encode(text), "text/plain", self._site_time())
        m = _COUNTRY_PAGE_RE.match(path)
        return self._country_page(m[1]) if m else None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default backlog of 5 drops connections under 32 concurrent clients

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # clients hanging up: normal
            super().handle_error(request, client_address)


_ERROR_PAGE = ("<html><head><title>{title}</title></head><body><h1>{title}</h1>"
               "<p>{text}</p></body></html>\n")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a crawl reuses connections
    server_version = "Time2BetReplay/1.0"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    timeout = 30  # idle keep-alive connections give their thread back
    replay: ReplayServer

    def log_message(self, format, *args) -> None:  # quiet: request_log records what tests need
        pass

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_POST(self) -> None:
        self._control()

    def do_DELETE(self) -> None:
        self._control()

    def _site_path(self) -> str:
        return unquote(urlsplit(self.path).path).lstrip("/")

    def _send(self, status: int, body: bytes, content_type: str, *, head: bool = False,
              resource: _Resource | None = None, truncate: bool = False) -> None:
        self.replay._log(self.command, self.path, status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if status != 304:  # a 304 has no body; its length would be the 200's, so none is sent
            self.send_header("Content-Length", str(len(body)))
        if resource is not None:
            self.send_header("ETag", resource.etag)
            self.send_header("Last-Modified", email.utils.format_datetime(resource.last_modified, usegmt=True))
        if truncate:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not head and status != 304:
            self.wfile.write(body[: len(body) // 2] if truncate else body)

    def _not_modified(self, res: _Resource) -> bool:
        """If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)."""
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
            return "*" in tags or res.etag in tags
        ims = self.headers.get("If-Modified-Since")
        if ims:
            try:
                since = email.utils.parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
            if since.tzinfo is None:
                since = since.replace(tzinfo=dt.UTC)
            return since >= res.last_modified
        return False

    def _serve(self, *, head: bool) -> None:
        path = self._site_path()
        if path == CONTROL_PATH:
            return self._control()
        fault = self.replay._take_fault(path)
        if fault and fault.kind == "slow":
            self.replay._stopping.wait(fault.seconds)
        res = self.replay._resource(path)
        kind = fault.kind if fault else None
        if kind in ("http_500", "http_404"):
            status = int(kind[5:])
            body = _ERROR_PAGE.format(title=f"{status} {self.responses[status][0]}", text="Injected fault.")
            return self._send(status, body.encode(), "text/html; charset=utf-8", head=head)
        if kind == "html_error":
            body = _ERROR_PAGE.format(title="Service temporarily unavailable",
                                      text="The data you requested is being updated. Please try again later.")
            return self._send(200, body.encode(), "text/html; charset=utf-8", head=head,
                              resource=_Resource(body.encode(), "", dt.datetime.now(dt.UTC)))
        if kind == "empty":
            ctype = res.content_type if res else "text/csv"
            return self._send(200, b"", ctype, head=head, resource=_Resource(b"", "", _midnight_utc(dt.date.today())))
        if res is None:
            body = _ERROR_PAGE.format(title="404 Not Found", text=f"/{html.escape(path)} is not on this site.")
            return self._send(404, body.encode(), "text/html; charset=utf-8", head=head)
        if kind == "utf16":
            text = res.body.decode(self.replay.encoding, errors="replace").removeprefix("\ufeff")
            odd = _Resource(text.encode("utf-16"), res.content_type, res.last_modified)
            return self._send(200, odd.body, res.content_type, head=head, resource=odd)
        if kind != "truncate" and self._not_modified(res):
            return self._send(304, b"", res.content_type, head=head, resource=res)
        self._send(200, res.body, res.content_type, head=head, resource=res, truncate=kind == "truncate")

    def _control(self) -> None:
        """``POST /__faults__`` {"pattern", "kind", "times"} adds a fault, ``DELETE`` clears, ``GET`` lists."""
        if self._site_path() != CONTROL_PATH:
            self.close_connection = True  # the request body, if any, is left unread
            return self._send(405, b'{"error": "method not allowed"}', "application/json")
        status = 200
        if self.command == "POST":
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= 65536:
                    raise ValueError("need a JSON body of at most 64 KiB")
                spec = json.loads(self.rfile.read(length))
                self.replay.inject_fault(str(spec["pattern"]), str(spec["kind"]), times=spec.get("times"))
                status = 201
            except (ValueError, KeyError, TypeError) as exc:
                self.close_connection = True
                body = json.dumps({"error": str(exc)}).encode()
                return self._send(400, body, "application/json")
        elif self.command == "DELETE":
            self.replay.clear_faults()
        with self.replay._lock:
            faults = [f.describe() for f in self.replay._faults]
        self._send(status, json.dumps({"faults": faults}).encode(), "application/json",
                   head=self.command == "HEAD")


def run_mirror(root: Path, *, as_of: dt.date | None = None, port: int = 8088, encoding: str = "utf-8",
               faults: list[str] | tuple[str, ...] = ()) -> None:
    """Serve until Ctrl-C (or SIGTERM); ``faults`` as ``PATTERN=KIND[xN]`` strings. Prints the URL."""
    server = ReplayServer(root, as_of=as_of, port=port, encoding=encoding)
    for spec in faults:
        pattern, kind, times = parse_fault_spec(spec)
        server.inject_fault(pattern, kind, times=times)
    done = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: done.set()) if in_main else None
    try:
        with server:
            when = as_of.isoformat() if as_of else "everything"
            print(f"Serving {server.root} as of {when} at {server.url} (Ctrl-C to stop)", flush=True)
            try:
                done.wait()
            except KeyboardInterrupt:
                pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> None:
    """``python -m time2bet.source.mirror ROOT [--as-of YYYY-MM-DD] [--port N] [--encoding E] [--fault S]``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--as-of", type=dt.date.fromisoformat)
    ap.add_argument("--port", type=int, default=8088)
    ap.add_argument("--encoding", default="utf-8")
    ap.add_argument("--fault", action="append", default=[], help="PATTERN=KIND[xN], e.g. 'mmz4281/*/D1.csv=http_500x2'")
    args = ap.parse_args(argv)
    run_mirror(args.root, as_of=args.as_of, port=args.port, encoding=args.encoding, faults=args.fault)


if __name__ == "__main__":
    main()
