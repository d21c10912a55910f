"""GET /quality serves the live-quality scoreboard the live_quality asset exports (time2bet.scoreboard_store):
404 no_live_quality before any export; then the exported rows, filtered by version, division, start week and
window, scores missing in the table as null; a new export is served without a restart."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


def _rows(weeks: list[dt.date], versions: list[str]) -> pd.DataFrame:
    """Rows in monitoring.live_quality's schema (time2bet.monitoring.store.LIVE_QUALITY)."""
    from time2bet.monitoring.store import LIVE_QUALITY

    rng = np.random.default_rng(0)
    records = []
    for week in weeks:
        for version in versions:
            for window in ("week", "rolling"):
                for division in ("E0", "ALL"):
                    row = {c: rng.uniform(0.2, 1.1) for c, kind in LIVE_QUALITY.items() if kind == "double"}
                    row |= {"week": week, "window": window, "window_start": week, "window_end": week + dt.timedelta(6),
                            "model_name": "match_outcome", "model_version": version, "variant": "champion",
                            "division": division, "n": 10, "n_with_odds": 9, "n_elo": 10, "elo_reference": "logged",
                            "first_kickoff": week, "last_kickoff": week, "computed_at": pd.Timestamp("2026-01-01")}
                    records.append(row)
    frame = pd.DataFrame(records)
    frame.loc[0, "market_log_loss"] = np.nan   # no odds that week: null in the answer
    return frame[list(LIVE_QUALITY)]


def test_the_scoreboard_route(client, settings):
    from time2bet.scoreboard_store import FILE, write_scoreboard

    export = settings.monitoring_dir / FILE
    export.unlink(missing_ok=True)
    r = client.get("/quality")
    assert r.status_code == 404 and r.json()["error"] == "no_live_quality"

    weeks = [dt.date(2025, 2, 3), dt.date(2025, 2, 10)]
    write_scoreboard(_rows(weeks, ["1", "2"]), settings.monitoring_dir)
    try:
        body = client.get("/quality").json()
        assert body["count"] == 2 * 2 * 2 == len(body["rows"])   # weeks x versions x divisions, window=week
        nulls = [r for r in body["rows"] if r["market_log_loss"] is None]
        assert [(r["week"], r["model_version"], r["division"]) for r in nulls] == [("2025-02-03", "1", "E0")]
        only = client.get("/quality", params={"model_version": "2", "division": "ALL", "since": "2025-02-10",
                                              "window": "rolling"}).json()
        assert only["count"] == 1
        row = only["rows"][0]
        assert (row["model_version"], row["division"], row["week"], row["window"]) == ("2", "ALL", "2025-02-10",
                                                                                       "rolling")
        assert client.get("/quality", params={"since": "not-a-date"}).status_code == 422
        write_scoreboard(_rows(weeks[:1], ["1"]), settings.monitoring_dir)   # a new export: served at once
        assert client.get("/quality").json()["count"] == 2
    finally:
        export.unlink(missing_ok=True)
