"""Fresh features without a restart, end to end: a platform of its own (DuckDB, then PostgreSQL) served by a real
`bentoml serve` polling the snapshot export every second; a new ingest (the sample site replayed two weeks later)
and training run while requests keep coming. The Dagster runs succeed (the service never holds the DuckDB file
they write), every request succeeds, and within a bounded time the service answers from the new features:
``features_as_of`` moves forward, the upcoming matches change, and a fixture that was upcoming and has now been
played is refused (its kickoff is no longer after the teams' latest match)."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

import httpx
import pytest

LATER = 14                 # days the site is replayed later than the platform was built
SNAPSHOT_POLL_S = 1
REFRESH_TIMEOUT_S = 120    # after the training run: the new snapshot is served by then
TRAFFIC_PAUSE_S = 0.05
MAX_TRAFFIC_ROUNDS = 200_000


def _reingest(env: dict[str, str], site: Path, as_of: dt.date) -> tuple[bool, bool]:
    """run_ingest then run_training on the platform ``env``, the site replayed as of ``as_of`` (as build_platform
    does, the process environment restored afterwards)."""
    from time2bet.cli.main import run_ingest, run_training
    from time2bet.settings import Settings
    from time2bet.source.mirror import ReplayServer

    saved = dict(os.environ)
    try:
        with ReplayServer(site, as_of=as_of) as server:
            os.environ.update(env)
            os.environ["TIME2BET_SOURCE_URL"] = server.url
            settings = Settings.from_env()
            ingested = run_ingest(settings, None, None, True)
            return ingested, ingested and run_training(settings)
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Traffic(threading.Thread):
    """Requests in a loop (predict, model info, matches) until stopped; every answer's status is kept."""

    def __init__(self, url: str, match: dict):
        super().__init__(daemon=True)
        self.url, self.match = url, match
        self.statuses: list[tuple[str, int]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as c:
            for _ in range(MAX_TRAFFIC_ROUNDS):
                if self.stop_event.is_set():
                    return
                for method, path, body in (("POST", "/predict", self.match), ("GET", "/model/info", None),
                                           ("GET", "/matches", None)):
                    try:
                        status = c.request(method, path, json=body).status_code
                    except httpx.HTTPError as exc:
                        status = -1
                        self.statuses.append((f"{path}: {type(exc).__name__}", status))
                        continue
                    self.statuses.append((path, status))
                time.sleep(TRAFFIC_PAUSE_S)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_env(request) -> dict[str, str]:
    return {} if request.param == "duckdb" else {"TIME2BET_WAREHOUSE_URL": request.getfixturevalue("postgres_db")}


def test_new_features_are_served_without_restart(warehouse_env, tmp_path, platform_builder, start_bento_server):
    from time2bet.settings import Settings
    from time2bet.source.sample_site import DEFAULT_AS_OF

    env = platform_builder(tmp_path, warehouse_env)
    settings = Settings.from_env(env)
    assert (settings.serving_snapshot_dir / "current.json").exists(), "the platform's jobs exported no snapshot"
    server = start_bento_server({**env, "TIME2BET_SNAPSHOT_POLL_S": str(SNAPSHOT_POLL_S)})
    with httpx.Client(base_url=server.url, timeout=30) as c:
        before = c.get("/model/info").json()
        matches = c.get("/matches").json()["matches"]
        assert matches, "the platform has no upcoming fixtures"
        fixture = matches[0]
        old_fixture = {"home_team": fixture["home_team"], "away_team": fixture["away_team"],
                       "division": fixture["division"], "kickoff_date": fixture["match_date"]}
        assert c.post("/predict", json=old_fixture).status_code == 200
        if settings.warehouse_url.startswith("duckdb:///"):   # the service holds no lock on the warehouse file
            import duckdb

            duckdb.connect(settings.warehouse_url.removeprefix("duckdb:///")).close()

        traffic = Traffic(server.url, {k: v for k, v in old_fixture.items() if k != "kickoff_date"})
        traffic.start()
        try:
            ingested, trained = _reingest(env, tmp_path / "site", DEFAULT_AS_OF + dt.timedelta(days=LATER))
            assert ingested, "the ingest runs failed while the service was serving"
            assert trained, "build_features / train_and_promote failed while the service was serving"
            deadline = time.monotonic() + REFRESH_TIMEOUT_S
            while True:
                after = c.get("/model/info").json()
                if after.get("features_as_of") and after["features_as_of"] > before["features_as_of"]:
                    break
                assert time.monotonic() < deadline, f"features_as_of still {after.get('features_as_of')} " \
                    f"{REFRESH_TIMEOUT_S}s after the new features were built"
                time.sleep(0.5)
            time.sleep(2 * SNAPSHOT_POLL_S)   # a little traffic on the new snapshot too
        finally:
            traffic.stop_event.set()
            traffic.join(timeout=60)

        assert traffic.statuses, "no request was made during the refresh"
        failed = [s for s in traffic.statuses if s[1] != 200]
        assert not failed, f"{len(failed)} of {len(traffic.statuses)} requests failed during the refresh: {failed[:5]}"
        assert after["snapshot_version"] and after["snapshot_version"] != before["snapshot_version"]
        assert dt.date.fromisoformat(after["features_as_of"]) > DEFAULT_AS_OF
        # the fixture that was upcoming has been played: its date is no longer after the teams' latest match
        refused = c.post("/predict", json=old_fixture)
        assert refused.status_code == 422 and refused.json()["error"] == "kickoff_not_after_latest_match", refused.text
        new_matches = c.get("/matches").json()["matches"]
        assert {m["match_id"] for m in new_matches} != {m["match_id"] for m in matches}
        assert after["features_as_of"] >= fixture["match_date"]
    server.stop()
