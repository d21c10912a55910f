"""Every prediction the service answers is in the prediction ledger, and survives a kill -9 after the flush bound:
a real `bentoml serve` on the session platform with a ledger of its own answers single, batch and async-job
predictions; after the flush bound its whole process group is killed with SIGKILL; every answered prediction is
in the ledger (same probabilities, to the bit; model version; before-kickoff clock), the chains verify, and the
ledger counter says how many were appended."""

from __future__ import annotations

import signal
import time

import httpx
import pandas as pd
import psutil

FLUSH_MS = 200
KEY = ["source", "division", "kickoff_date", "home_team", "away_team"]


def flat(prediction: dict, source: str) -> dict:
    """A response's prediction as a ledger row's columns."""
    probabilities = prediction["probabilities"]
    return {"source": source, "division": prediction["division"], "kickoff_date": prediction["kickoff_date"],
            "home_team": prediction["home_team"], "away_team": prediction["away_team"],
            "p_home": probabilities["home"], "p_draw": probabilities["draw"], "p_away": probabilities["away"],
            "model_version": prediction["model"]["version"], "model_family": prediction["model"]["family"]}
SETTLE_S = 1.5                          # > the flush bound plus one write, before the kill
JOB_TIMEOUT_S = 60


def test_answered_predictions_survive_a_kill_9(platform_env, tmp_path, start_bento_server):
    from time2bet.ledger import read_records, verify

    ledger_dir = tmp_path / "ledger"
    server = start_bento_server({**platform_env, "TIME2BET_LEDGER_DIR": str(ledger_dir),
                                 "TIME2BET_LEDGER_FLUSH_MS": str(FLUSH_MS)})
    answered: list[dict] = []
    with httpx.Client(base_url=server.url, timeout=30) as c:
        matches = c.get("/matches").json()["matches"]
        assert matches
        bodies = [{"home_team": m["home_team"], "away_team": m["away_team"], "division": m["division"],
                   "kickoff_date": m["match_date"]} for m in matches]
        for body in bodies:
            r = c.post("/predict", json=body)
            assert r.status_code == 200, r.text
            answered.append(flat(r.json(), "service:/predict"))
        r = c.post("/predict/batch", json={"matches": bodies})
        assert r.status_code == 200, r.text
        answered += [flat(p, "service:/predict/batch") for p in r.json()["predictions"]]
        job = c.post("/jobs", json={"matches": bodies[:3]}).json()["job_id"]
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while c.get(f"/jobs/{job}").json()["status"] not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
        result = c.get(f"/jobs/{job}/result")
        assert result.status_code == 200, result.text
        answered += [flat(p, "service:job") for p in result.json()["predictions"]]
        metrics = c.get("/metrics").text

    time.sleep(SETTLE_S)
    # the whole service crashes: BentoML's arbiter and its worker (which runs in a process group of its own), so
    # no shutdown hook runs anywhere and only what was flushed remains
    service = psutil.Process(server.process.proc.pid)
    processes = [service, *service.children(recursive=True)]
    assert len(processes) > 1, "no worker process found under the server"
    for process in processes:
        process.send_signal(signal.SIGKILL)
    _gone, alive = psutil.wait_procs(processes, timeout=30)
    assert not alive, alive
    server.process.proc.wait(timeout=30)
    server.process = None

    ledger = read_records(ledger_dir)
    assert len(ledger) == len(answered)
    ledger["kickoff_date"] = pd.to_datetime(ledger["kickoff_date"]).dt.strftime("%Y-%m-%d")
    got = ledger.sort_values(KEY).reset_index(drop=True)
    want = pd.DataFrame(answered).sort_values(KEY).reset_index(drop=True)
    assert got[KEY].values.tolist() == want[KEY].values.tolist()
    assert got["match_id"].notna().all()
    for column in ("p_home", "p_draw", "p_away"):
        assert got[column].tolist() == want[column].tolist(), column   # the bits the client saw
    assert (got["model_version"].astype(str) == want["model_version"].astype(str)).all()
    assert got["model_family"].tolist() == want["model_family"].tolist() and set(want["model_family"]) == {"independent"}
    assert (pd.to_datetime(got["as_of"]) <= pd.to_datetime(got["created_at"])).all()
    # single answers of one flush share a record (bento_service.ledger._Answered.records_of), each row keeping
    # its own clock: sent one after the other, they are in request order
    singles = ledger[ledger["source"] == "service:/predict"].sort_values(["created_at"])
    assert len(bodies) >= 3 and singles["prediction_id"].nunique() < len(bodies)
    assert singles["created_at"].is_unique and (singles["as_of"] == singles["created_at"]).all()
    assert singles["match_key"].str.split("|").str[2].tolist() == [b["home_team"] for b in bodies]
    assert verify(ledger_dir, {}).ok
    appended = [line for line in metrics.splitlines()
                if line.startswith('time2bet_ledger_predictions_total{outcome="appended"}')]
    assert appended and float(appended[0].split()[-1]) == len(answered), appended
