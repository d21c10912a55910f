"""Link discovery: pure parsing of the site's pages, and the stdlib walk a Dagster sensor uses."""

from __future__ import annotations

import pytest

from time2bet.ingestion.discovery import (
    DiscoveryError,
    SeasonFileLink,
    country_pages,
    discover_season_files,
    season_file_links,
)

LIVE = "https://www.football-data.co.uk"

# The live site's markup style: upper-case tags, a mix of quoted and bare attribute values.
LIVE_INDEX = f"""
<HTML><BODY>
<A HREF="englandm.php">England</A> | <A HREF=scotlandm.php>Scotland</A>
<a href="{LIVE}/germanym.php#top">Germany</a> <A HREF="englandm.php">England again</A>
<A HREF="data.php">Data</A> <A HREF="notes.txt">Notes</A> <A HREF="https://elsewhere.example/italym.php">x</A>
<A HREF="matches.php">Matches</A> <A NAME="anchor">no href</A>
</BODY></HTML>
"""

LIVE_COUNTRY = """
<HTML><BODY><I>Season 2024/2025</I><BR>
<IMG SRC="excel.gif"> <A HREF="mmz4281/2425/E0.csv">Premier League</A><BR>
<A HREF=mmz4281/2425/E1.csv>Championship</A><BR>
<I>Season 1999/2000</I><A HREF="mmz4281/9900/E0.csv">Premier League</A>
<I>Season 1993/1994</I><A HREF="mmz4281/9394/E0.csv">Premier League</A>
<A HREF="mmz4281/1999/E0.csv">bad season code</A> <A HREF="new/ARG.csv">extra league</A>
<A HREF="mmz4281/2425/notes.csv">not a division</A> <A HREF="mmz4281/2425/E0.csv">duplicate</A>
</BODY></HTML>
"""


def test_country_pages_live_markup():
    pages = country_pages(LIVE_INDEX, f"{LIVE}/data.php")
    assert pages == [f"{LIVE}/englandm.php", f"{LIVE}/scotlandm.php", f"{LIVE}/germanym.php"]


def test_country_pages_relative_to_base_path():
    html = '<a href="englandm.php">E</a><a href="/francem.php">F</a>'
    assert country_pages(html, "http://127.0.0.1:8000/mirror/data.php") == [
        "http://127.0.0.1:8000/mirror/englandm.php",
        "http://127.0.0.1:8000/francem.php",
    ]


def test_season_file_links_live_markup():
    links = season_file_links(LIVE_COUNTRY, f"{LIVE}/englandm.php")
    assert links == [
        SeasonFileLink("E0", "2024-25", f"{LIVE}/mmz4281/2425/E0.csv"),
        SeasonFileLink("E1", "2024-25", f"{LIVE}/mmz4281/2425/E1.csv"),
        SeasonFileLink("E0", "1999-00", f"{LIVE}/mmz4281/9900/E0.csv"),
        SeasonFileLink("E0", "1993-94", f"{LIVE}/mmz4281/9394/E0.csv"),
    ]


def test_season_file_links_absolute_and_lowercase_tags():
    html = f'<a href="{LIVE}/mmz4281/2021/SC0.csv">S</a><a href="../mmz4281/2021/D1.csv">D</a>'
    links = season_file_links(html, f"{LIVE}/pages/germanym.php")
    assert [(l.division, l.season, l.url) for l in links] == [
        ("SC0", "2020-21", f"{LIVE}/mmz4281/2021/SC0.csv"),
        ("D1", "2020-21", f"{LIVE}/mmz4281/2021/D1.csv"),
    ]


def test_no_links_in_junk():
    assert country_pages("", LIVE) == []
    assert season_file_links("<p>mmz4281/2425/E0.csv as text, not a link</p>", LIVE) == []


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from time2bet.source.mirror import ReplayServer
    from time2bet.source.sample_site import DEFAULT_AS_OF, generate_sample_site

    root = tmp_path_factory.mktemp("site")
    generate_sample_site(root, divisions=("E0", "E1", "D1"), seasons=("2023-24", "2024-25"))
    with ReplayServer(root, as_of=DEFAULT_AS_OF) as server:
        yield server


def test_discover_season_files_walks_pages_not_csvs(site):
    links = discover_season_files(site.url, timeout_s=5)
    assert {(l.division, l.season) for l in links} == {
        (d, s) for d in ("E0", "E1", "D1") for s in ("2023-24", "2024-25")
    }
    assert all(l.url.startswith(site.url + "/") and l.url.endswith(".csv") for l in links)
    paths = [path for _, path, _ in site.request_log]
    assert "/robots.txt" in paths and "/data.php" in paths
    assert not any(p.endswith(".csv") for p in paths)


def test_discover_season_files_raises_when_a_page_fails(site):
    site.inject_fault("germanym.php", "http_500")
    try:
        with pytest.raises(DiscoveryError, match="germanym.php"):
            discover_season_files(site.url, timeout_s=5)
    finally:
        site.clear_faults()
