"""The Streamlit page (ui/streamlit_app.py) in a real headless Chromium, against the session's real `bentoml serve`.

`streamlit run` is started the way `time2bet ui` starts it (time2bet.cli.main.streamlit_command) on a free loopback
port; playwright drives Debian's /usr/bin/chromium (no browser download). What the page shows is compared with
what the service answers to the same requests through `client`. The live-quality section reads GET /quality, which
serves the scoreboard file the live_quality asset exports: the tests write that file with the asset's own writer
(time2bet.scoreboard_store), or leave it absent for the 404 case."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import click
import pandas as pd
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

from time2bet.background import Background
from time2bet.background import free_port as _free_port
from time2bet.cli.main import REPO_ROOT, streamlit_command
from ui.streamlit_app import cumulative_log_loss

CHROMIUM = Path("/usr/bin/chromium")
APP = REPO_ROOT / "ui" / "streamlit_app.py"
READY_TIMEOUT_S = 60
UI_TIMEOUT_MS = 20_000     # every wait for the page is bounded by this
PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (Debian package `chromium`); the browser test of the page needs it"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def page_url(server_url, tmp_path_factory):
    """`streamlit run ui/streamlit_app.py` on a free loopback port, pointed at the session's service."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    env = {**os.environ, "TIME2BET_SERVICE_URL": server_url}
    streamlit = Background("streamlit", streamlit_command(port), env, log_path).start()
    url = f"http://127.0.0.1:{port}"
    try:
        streamlit.wait_ready(f"{url}/_stcore/health", READY_TIMEOUT_S)
    except click.ClickException as exc:
        streamlit.stop()
        pytest.fail(exc.message)
    try:
        yield url
    finally:
        streamlit.stop()
    if "Traceback" in streamlit.log_tail(3000):
        pytest.fail(f"the page raised:\n{streamlit.log_tail(3000)}")


@pytest.fixture(scope="module")
def browser(chromium):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, page_url):
    """A fresh page on the app; fails the test if the page asked for anything off loopback."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    outside: list[str] = []
    context.on("request", lambda r: outside.append(r.url)
               if urlparse(r.url).hostname not in ("127.0.0.1", "localhost", None) and r.url.startswith("http")
               else None)
    page = context.new_page()
    page.goto(page_url)
    page.locator(".st-key-predict button").wait_for()
    yield page
    context.close()
    assert not outside, f"the page requested non-loopback URLs: {outside[:5]}"


CHOOSE_ATTEMPTS = 3


def choose(page, key: str, option: str) -> None:
    """Pick OPTION in the selectbox with key KEY (typing filters the list, which is virtualised when long).

    After the script run under way ends: a rerun redraws the box and closes its open list, detaching the option
    being clicked (seen in CI right after a page reload). A list closed anyway is opened again, a bounded number
    of times."""
    box = page.locator(f".st-key-{key}")
    wait_idle(page)
    for attempt in range(CHOOSE_ATTEMPTS):
        try:
            box.locator("input").click()
            box.locator("input").fill(option)
            page.get_by_role("option", name=option, exact=True).click(timeout=UI_TIMEOUT_MS // CHOOSE_ATTEMPTS)
            break
        except PlaywrightError:
            if attempt == CHOOSE_ATTEMPTS - 1:
                raise
            wait_idle(page)
    expect(box.locator("input")).to_have_value(option, timeout=UI_TIMEOUT_MS)
    wait_idle(page)


def wait_idle(page) -> None:
    """Wait (bounded) for the script run a widget change triggered to finish (the frontend's script state)."""
    page.wait_for_timeout(150)   # the rerun request reaches the server first
    page.locator("[data-testid=stApp][data-test-script-state=notRunning]").wait_for()


def settle(read, expected):
    """read() until it equals expected or UI_TIMEOUT_MS passed (elements of a rerun arrive one by one, and the
    previous run's stay on the page until replaced); returns the last value read."""
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while (got := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


def percents(texts: list[str]) -> list[float]:
    out = []
    for text in texts:
        match = PERCENT.match(text.strip())
        assert match, f"not a percentage: {text!r}"
        out.append(float(match.group(1)) / 100)
    return out


def table_rows(page) -> list[list[str]]:
    return page.locator(".st-key-matches table tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.querySelectorAll('th, td')).map(c => c.innerText.trim()))")


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 1000 and height >= 800, (width, height)
    assert len(data) > 30_000, f"suspiciously small screenshot ({len(data)} bytes)"


@pytest.fixture(scope="module")
def fixture_match(client) -> dict:
    """An upcoming fixture of the platform (a real pair of teams of one division)."""
    matches = client.get("/matches").json()["matches"]
    assert matches, "the sample platform has no upcoming matches"
    return matches[0]


def test_predict_two_teams_shows_the_service_probabilities(page, client, fixture_match, tmp_path):
    division, home, away = fixture_match["division"], fixture_match["home_team"], fixture_match["away_team"]
    country = client.get("/teams").json()["divisions"][division]
    choose(page, "division", f"{division} ({country})")
    page.get_by_text(f"teams of {country}:", exact=False).wait_for()
    choose(page, "home_team", home)
    choose(page, "away_team", away)
    page.locator(".st-key-predict button").click()
    result = page.locator(".st-key-prediction")
    result.get_by_text(f"{home} vs {away}", exact=True).wait_for()
    expect(result.locator("[data-testid=stMetricValue]")).to_have_count(3, timeout=UI_TIMEOUT_MS)
    wait_idle(page)
    shown = percents(result.locator("[data-testid=stMetricValue]").all_inner_texts())
    labels = [t.strip() for t in result.locator("[data-testid=stMetricLabel]").all_inner_texts()]

    expected = client.post("/predict", json={"division": division, "home_team": home, "away_team": away})
    assert expected.status_code == 200, expected.text
    p = expected.json()
    assert labels == ["Home win", "Draw", "Away win"], labels
    assert shown == pytest.approx([p["probabilities"][k] for k in ("home", "draw", "away")], abs=0.0005 + 1e-9)
    assert f"v{p['model']['version']}" in result.inner_text() and p["variant"] in result.inner_text()
    result.locator("[data-testid=stVegaLiteChart], [data-testid=stArrowVegaLiteChart]").first.wait_for()
    # the served model is in the sidebar
    info = client.get("/model/info").json()
    assert f"v{info['version']}" in page.locator("[data-testid=stSidebar]").inner_text()

    shot = tmp_path / "predict.png"
    page.screenshot(path=str(shot), full_page=True)
    assert_png(shot)


def test_upcoming_matches_table_agrees_with_the_api(page, client, tmp_path):
    every = client.get("/matches").json()
    page.locator(".st-key-matches table").wait_for()
    assert f"{every['count']} upcoming matches" in page.locator(".st-key-matches").inner_text()
    rows = table_rows(page)
    assert len(rows) == min(every["count"], 500)
    for shown, m in zip(rows, every["matches"], strict=False):
        assert shown[:4] == [m["match_date"], m["division"], m["home_team"], m["away_team"]]
        assert percents(shown[4:7]) == pytest.approx([m["p_home"], m["p_draw"], m["p_away"]], abs=0.0005 + 1e-9)
        assert shown[7] == f"{m['model_name']} v{m['model_version']}"

    # filter by division, then by a date range: the same rows as GET /matches with the same parameters
    by_division: dict[str, set[str]] = {}
    for m in every["matches"]:
        by_division.setdefault(m["division"], set()).add(m["match_date"])
    division, dates = max(by_division.items(), key=lambda item: (len(item[1]), item[0]))
    assert len(dates) >= 2, "the sample's fixtures should span more than one day"
    day = min(dates)
    choose(page, "matches_division", f"{division} ({client.get('/teams').json()['divisions'][division]})")
    for key in ("matches_from", "matches_to"):   # a segmented date field: type the digits into the year segment
        page.locator(f".st-key-{key} [role=spinbutton]").first.click()
        page.keyboard.type(day.replace("-", ""))
        page.keyboard.press("Escape")
        wait_idle(page)
    want = client.get("/matches", params={"division": division, "date_from": day, "date_to": day}).json()
    assert 0 < want["count"] < sum(m["division"] == division for m in every["matches"])
    expected = [[m["match_date"], m["division"], m["home_team"], m["away_team"]] for m in want["matches"]]
    assert settle(lambda: [r[:4] for r in table_rows(page)], expected) == expected
    assert page.locator(".st-key-matches").inner_text().startswith(f"{want['count']} upcoming matches")
    shot = tmp_path / "matches.png"
    page.screenshot(path=str(shot), full_page=True)
    assert_png(shot)


def test_the_service_refusal_is_shown_readably(page, client, fixture_match):
    division, home = fixture_match["division"], fixture_match["home_team"]
    country = client.get("/teams").json()["divisions"][division]
    choose(page, "division", f"{division} ({country})")
    page.get_by_text(f"teams of {country}:", exact=False).wait_for()
    choose(page, "home_team", home)
    choose(page, "away_team", home)
    page.locator(".st-key-predict button").click()
    refused = client.post("/predict", json={"division": division, "home_team": home, "away_team": home})
    assert refused.status_code == 422 and refused.json()["error"] == "same_team"
    alert = page.locator(".st-key-prediction [data-testid=stAlert]")
    alert.get_by_text(refused.json()["message"], exact=False).wait_for()

    # a kickoff date before the teams' latest match: the service's own explanation, on the page
    away = fixture_match["away_team"]
    choose(page, "away_team", away)
    page.locator(".st-key-kickoff_date [role=spinbutton]").first.click()
    page.keyboard.type("20200101")
    page.keyboard.press("Escape")
    wait_idle(page)
    page.locator(".st-key-predict button").click()
    too_early = client.post("/predict", json={"division": division, "home_team": home, "away_team": away,
                                              "kickoff_date": "2020-01-01"})
    assert too_early.status_code == 422 and too_early.json()["error"] == "kickoff_not_after_latest_match"
    alert.get_by_text(too_early.json()["message"], exact=False).wait_for()
    assert "Traceback" not in page.content()


def test_an_unreachable_service_gives_a_clear_message_not_a_traceback(monkeypatch):
    """Streamlit's AppTest (no browser, no server): the page against a port nothing listens on."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TIME2BET_SERVICE_URL", f"http://127.0.0.1:{_free_port()}")
    app = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not app.exception
    assert any("not reachable" in e.value and "time2bet serve" in e.value for e in app.error), \
        [e.value for e in app.error]


def test_time2bet_ui_runs_streamlit_headless_on_loopback_with_the_service_url(monkeypatch):
    from click.testing import CliRunner

    import time2bet.cli.main as cli

    seen = {}

    def run(command, env, cwd, check):
        seen.update(command=command, env=env, cwd=cwd)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(cli.subprocess, "run", run)
    result = CliRunner().invoke(cli.main, ["ui", "--service-url", "http://127.0.0.1:3999", "--port", "8765"])
    assert result.exit_code == 0, result.output
    command = seen["command"]
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4] == str(APP)
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert options["--server.headless"] == "true" and options["--server.address"] == "127.0.0.1"
    assert options["--server.port"] == "8765" and options["--browser.gatherUsageStats"] == "false"
    assert seen["env"]["TIME2BET_SERVICE_URL"] == "http://127.0.0.1:3999" and seen["cwd"] == REPO_ROOT


# --- live quality -----------------------------------------------------------------------------------------------


def week_row(week: str, log_loss: float, n: int, **scores) -> dict:
    """A GET /quality row of v1 (champion) in E0, window 'week', with the given figures."""
    return {"week": week, "window": "week", "model_version": "1", "variant": "champion", "division": "E0",
            "n": n, "log_loss": log_loss, **scores}


def test_cumulative_log_loss_weights_every_week_by_its_matches():
    rows = [week_row("2025-03-10", 0.9, 10, n_with_odds=10, model_log_loss_on_odds=0.9, market_log_loss=1.0,
                     n_elo=10, model_log_loss_on_elo=0.9, elo_log_loss=1.1),
            week_row("2025-02-24", 1.2, 30, n_with_odds=20, model_log_loss_on_odds=1.1, market_log_loss=1.0,
                     n_elo=0, model_log_loss_on_elo=None, elo_log_loss=None),
            week_row("2025-03-17", 1.0, 5, n_with_odds=5, model_log_loss_on_odds=1.0, market_log_loss=None,
                     n_elo=5, model_log_loss_on_elo=1.0, elo_log_loss=0.8)]
    got = cumulative_log_loss(rows)
    assert [str(w) for w in got.index] == ["2025-02-24", "2025-03-10", "2025-03-17"]   # by week, not by arrival
    # the model on every match: (1.2*30 + 0.9*10) / 40, then + 1.0*5 over 45 (not the mean of weekly means)
    assert got["model"].tolist() == pytest.approx([1.2, 45 / 40, 50 / 45])
    assert got["n"].tolist() == [30, 40, 45]
    # against the market on the matches with odds only; a week without the market's figure adds nothing to either
    assert got["model_on_odds"].tolist() == pytest.approx([1.1, (22 + 9) / 30, (22 + 9) / 30])
    assert got["market"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert got["n_with_odds"].tolist() == [20, 30, 30]
    # against the Elo-only reference: nothing until a week has it
    assert got["model_on_elo"].iloc[0] != got["model_on_elo"].iloc[0]   # NaN: no match yet
    assert got["model_on_elo"].tolist()[1:] == pytest.approx([0.9, (9 + 5) / 15])
    assert got["elo"].tolist()[1:] == pytest.approx([1.1, (11 + 4) / 15])
    assert got["n_elo"].tolist() == [0, 10, 15]
    assert cumulative_log_loss([]).empty


def test_no_live_quality_yet_is_a_note_not_an_error(server_url, settings, monkeypatch):
    """AppTest (no browser) against the session's service before any live_quality export: its 404
    no_live_quality becomes a note saying what to run."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from time2bet.scoreboard_store import FILE

    (settings.monitoring_dir / FILE).unlink(missing_ok=True)
    st.cache_data.clear()
    monkeypatch.setenv("TIME2BET_SERVICE_URL", server_url)
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    notes = [i.value for i in app.info]
    assert any("no live quality yet: run the monitor job" in n.lower() for n in notes), notes


def scoreboard(weeks: list[str], served: str) -> pd.DataFrame:
    """Rows in monitoring.live_quality's schema for the served version (champion) and an older one (v0,
    challenger), divisions E0, E1 and ALL, both windows; figures differ per row so a wrong filter shows."""
    import datetime as dt

    import numpy as np

    from time2bet.monitoring.store import LIVE_QUALITY

    rng = np.random.default_rng(3)
    records = []
    for week in map(dt.date.fromisoformat, weeks):
        for version, variant in ((served, "champion"), ("0", "challenger")):
            for window in ("week", "rolling"):
                for division in ("E0", "E1", "ALL"):
                    row = {c: rng.uniform(0.85, 1.15) for c, kind in LIVE_QUALITY.items() if kind == "double"}
                    n = int(rng.integers(3, 12))
                    row |= {"week": week, "window": window, "window_start": week, "window_end": week + dt.timedelta(6),
                            "model_name": "match_outcome", "model_version": version, "variant": variant,
                            "division": division, "n": n, "n_with_odds": n - 1, "n_elo": n, "elo_reference": "logged",
                            "first_kickoff": week, "last_kickoff": week, "computed_at": pd.Timestamp("2026-01-01")}
                    records.append(row)
    return pd.DataFrame(records)[list(LIVE_QUALITY)]


def test_live_quality_shows_the_cumulative_log_loss_against_market_and_elo(page, client, settings, tmp_path):
    from time2bet.scoreboard_store import FILE, write_scoreboard

    served = client.get("/model/info").json()["version"]
    write_scoreboard(scoreboard(["2025-02-24", "2025-03-03", "2025-03-10"], served), settings.monitoring_dir)
    try:
        page.reload()
        section = page.locator(".st-key-quality")
        section.wait_for()
        assert page.locator(".st-key-quality_model input").input_value() == f"v{served} (champion)"
        choose(page, "quality_division", f"E0 ({client.get('/teams').json()['divisions']['E0']})")
        rows = client.get("/quality", params={"model_version": served, "division": "E0"}).json()["rows"]
        rows = [r for r in rows if r["variant"] == "champion"]
        assert len(rows) == 3

        def total(score: str, weight: str) -> float:
            return sum(r[score] * r[weight] for r in rows) / sum(r[weight] for r in rows)

        expected = [f"{total('log_loss', 'n'):.4f}", f"{total('market_log_loss', 'n_with_odds'):.4f}",
                    f"{total('elo_log_loss', 'n_elo'):.4f}"]
        shown = settle(lambda: [t.strip() for t in section.locator("[data-testid=stMetricValue]").all_inner_texts()],
                       expected)
        assert shown == expected
        model_vs_market = total("model_log_loss_on_odds", "n_with_odds") - total("market_log_loss", "n_with_odds")
        assert f"{model_vs_market:+.4f} model" in section.inner_text()
        charts = section.locator("[data-testid=stVegaLiteChart], [data-testid=stArrowVegaLiteChart]")
        expect(charts).to_have_count(2, timeout=UI_TIMEOUT_MS)
        charts.first.locator("canvas, svg").first.wait_for()   # drawn by the bundled Vega, no CDN
        shot = tmp_path / "quality.png"
        page.screenshot(path=str(shot), full_page=True)
        assert_png(shot)
    finally:
        (settings.monitoring_dir / FILE).unlink(missing_ok=True)
