"""The API docs page (`GET /docs`, Swagger UI) in a real headless Chromium, against the session's real `bentoml serve`,
as on a machine without internet: every request to a host other than loopback is aborted (and recorded), and the
page must still list the operations and ask nothing of a third party. Debian's /usr/bin/chromium, no download."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
UI_TIMEOUT_MS = 20_000     # every wait for the page is bounded by this
LOOPBACK = ("127.0.0.1", "localhost")
OPERATIONS = [("post", "/predict"), ("post", "/predict/batch"), ("get", "/matches"), ("get", "/teams"),
              ("get", "/predict/{match_id}"), ("get", "/model/info")]


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (Debian package `chromium`); the browser test of the docs page needs it"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def offline_context(browser):
    """(context, requests, outside): every URL the pages of the context ask for, and those off loopback, which
    are aborted as if the machine had no internet."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    requests: list[str] = []
    outside: list[str] = []

    def route(r):
        url = r.request.url
        if url.startswith(("http:", "https:", "ws:", "wss:")) and urlparse(url).hostname not in LOOPBACK:
            outside.append(url)
            return r.abort()
        return r.continue_()

    context.route("**/*", route)
    context.on("request", lambda r: requests.append(r.url))
    try:
        yield context, requests, outside
    finally:
        context.close()


def test_docs_page_lists_the_operations_offline(offline_context, server_url, tmp_path):
    context, requests, outside = offline_context
    page = context.new_page()
    page.goto(f"{server_url}/docs")
    for method, path in OPERATIONS:
        expect(page.locator(f".opblock-{method} .opblock-summary-path[data-path='{path}']")).to_be_visible(
            timeout=UI_TIMEOUT_MS)
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Time2Bet", timeout=UI_TIMEOUT_MS)
    shot = tmp_path / "docs.png"
    page.screenshot(path=str(shot), full_page=True)
    assert_png(shot)
    assert not outside, f"the docs page requested non-loopback URLs: {sorted(set(outside))}"
    assert any(urlparse(u).path.endswith(".js") for u in requests), requests   # its script came from the server


def test_redoc_is_offline_or_absent(offline_context, server_url):
    """/redoc (FastAPI's ReDoc page, CDN script and Google fonts) is off; whatever answers there asks nothing of
    a third party."""
    assert httpx.get(f"{server_url}/redoc", timeout=30).status_code == 404
    context, _, outside = offline_context
    context.new_page().goto(f"{server_url}/redoc")
    assert not outside, f"/redoc requested non-loopback URLs: {sorted(set(outside))}"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 1000 and height >= 800, (width, height)
