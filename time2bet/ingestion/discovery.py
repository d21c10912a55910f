"""Find season files on football-data.co.uk (or a mirror of its layout) from its HTML pages.

The site has no API: ``/data.php`` links one page per country (``englandm.php``, ``germanym.php``...)
and each country page links its season files as ``mmz4281/<YYZZ>/<DIV>.csv``. The parsers here are
pure functions shared by the Scrapy spider and by :func:`discover_season_files`, a cheap stdlib walk
that a Dagster sensor can call to notice new divisions or seasons without downloading any CSV.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
import urllib.robotparser
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from time2bet.football import DIVISION_CODE_RE, season_label

INDEX_PAGE = "data.php"
USER_AGENT = "time2bet/0.1 (football match prediction research; season-file discovery)"

_COUNTRY_PAGE_RE = re.compile(r"^[a-z]+m\.php$", re.IGNORECASE)
_SEASON_FILE_RE = re.compile(r"(?:^|/)mmz4281/(\d{4})/([A-Za-z0-9]+)\.csv$")


@dataclass(frozen=True, order=True)
class SeasonFileLink:
    division: str  # "E0"
    season: str  # "2019-20"
    url: str  # absolute


class DiscoveryError(RuntimeError):
    """A page needed for discovery could not be fetched; the caller should retry later, not assume
    that divisions vanished."""


class _LinkCollector(HTMLParser):
    """Collects ``href`` of ``<a>`` tags; HTMLParser lower-cases tag and attribute names, so the live
    site's ``<A HREF=...>`` is handled, quoted or not."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href and href.strip():
                self.hrefs.append(href.strip())


def _links(html: str, base_url: str) -> list[str]:
    collector = _LinkCollector()
    collector.feed(html)
    collector.close()
    return list(dict.fromkeys(urljoin(base_url, h) for h in collector.hrefs))


def country_pages(html: str, base_url: str) -> list[str]:
    """Absolute URLs of the country pages (``<country>m.php`` on the same host) linked from the index."""
    host = urlsplit(base_url).netloc.lower()
    pages = []
    for url in _links(html, base_url):
        parts = urlsplit(url)
        name = parts.path.rsplit("/", 1)[-1]
        if parts.scheme in ("http", "https") and parts.netloc.lower() == host and _COUNTRY_PAGE_RE.match(name):
            pages.append(parts._replace(fragment="").geturl())
    return list(dict.fromkeys(pages))


def season_file_links(html: str, base_url: str) -> list[SeasonFileLink]:
    """Season files linked from a country page, by the ``mmz4281/<YYZZ>/<DIV>.csv`` pattern.

    Links with an impossible season code (``mmz4281/1999/...``) or a non-division file name are
    skipped: they are not season files, whatever else they are.
    """
    found: dict[str, SeasonFileLink] = {}
    for url in _links(html, base_url):
        m = _SEASON_FILE_RE.search(urlsplit(url).path)
        if not m or not DIVISION_CODE_RE.match(m.group(2)):
            continue
        try:
            label = season_label(m.group(1))
        except ValueError:
            continue
        found.setdefault(url, SeasonFileLink(m.group(2), label, url))
    return list(found.values())


def _get(url: str, timeout_s: float) -> str:
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        raise DiscoveryError(f"cannot fetch {url}: {exc}") from exc


def _robots(base_url: str, timeout_s: float) -> urllib.robotparser.RobotFileParser:
    """robots.txt fetched with our timeout (RobotFileParser.read() has none), read as RobotFileParser does:
    401/403 = disallow all, other 4xx = allow all."""
    rp = urllib.robotparser.RobotFileParser()
    try:
        rp.parse(_get(base_url + "/robots.txt", timeout_s).splitlines())
    except DiscoveryError as exc:
        code = getattr(exc.__cause__, "code", None)
        if code in (401, 403):
            rp.disallow_all = True
        elif code is not None and 400 <= code < 500:
            rp.parse([])
        else:
            raise
    return rp


def discover_season_files(base_url: str, *, timeout_s: float = 10) -> list[SeasonFileLink]:
    """Walk index + country pages (no CSVs) and return every linked season file, sorted.

    Raises DiscoveryError if any page fails, so that a sensor skips the tick rather than reading a
    partial answer as "files were removed". Obeys robots.txt.
    """
    base_url = base_url.rstrip("/")
    rp = _robots(base_url, timeout_s)
    index = f"{base_url}/{INDEX_PAGE}"
    if not rp.can_fetch(USER_AGENT, index):
        raise DiscoveryError(f"{index} is disallowed by robots.txt")
    links: set[SeasonFileLink] = set()
    for page in country_pages(_get(index, timeout_s), index):
        if rp.can_fetch(USER_AGENT, page):
            links.update(season_file_links(_get(page, timeout_s), page))
    return sorted(links)
