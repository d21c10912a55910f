"""Over HTTP: durable async batch jobs (POST /jobs, GET /jobs/{id}, GET /jobs/{id}/result) against the session's
server, whose jobs live in Redis under this session's prefix (conftest); includes a restart of that server."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bento_service.jobs import JobStore

WAIT_S = 60


@pytest.fixture(scope="module")
def body(batch_features) -> dict:
    return {"matches": [{"home_team": r.home_team, "away_team": r.away_team, "division": r.division,
                         "kickoff_date": pd.Timestamp(r.match_date).date().isoformat()}
                        for r in batch_features.itertuples()]}


@pytest.fixture(scope="module")
def store(bento_server):
    """The server's job store (same Redis, same prefix), for inspecting and for staging records."""
    s = JobStore(bento_server.env["TIME2BET_REDIS_URL"], bento_server.env["TIME2BET_JOBS_PREFIX"])
    yield s
    s.redis.close()


def wait_finished(client, job_id: str, timeout: float = WAIT_S) -> dict:
    """Poll GET /jobs/{id} until the job is completed or failed (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = client.get(f"/jobs/{job_id}")
            if got.status_code == 200 and got.json()["status"] in ("completed", "failed"):
                return got.json()
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} not finished after {timeout}s")
        time.sleep(0.2)


def submit(client, payload) -> str:
    got = client.post("/jobs", json=payload)
    assert got.status_code == 202, got.text
    assert got.json()["status"] == "pending" and got.json()["job_id"]
    return got.json()["job_id"]


def metric(client, name: str, **labels) -> float | None:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def test_job_completes_with_the_batch_result(client, body):
    job_id = submit(client, body)
    record = wait_finished(client, job_id)
    assert record["status"] == "completed", record
    assert record["job_id"] == job_id and record["error"] is None
    assert dt.datetime.fromisoformat(record["finished_at"]) >= dt.datetime.fromisoformat(record["created_at"])
    result = client.get(f"/jobs/{job_id}/result")
    assert result.status_code == 200, result.text
    batch = client.post("/predict/batch", json=body)
    assert batch.status_code == 200, batch.text
    assert result.json() == batch.json()
    assert len(result.json()["predictions"]) == len(body["matches"])
    assert metric(client, "time2bet_jobs_total", state="completed") >= 1
    assert metric(client, "time2bet_jobs_total", state="pending") >= 1
    assert metric(client, "time2bet_jobs_queue_depth") is not None


@pytest.mark.parametrize("change, reason", [
    ({"home_team": "Nobody FC"}, "unknown_team"),
    ({"division": "XX9"}, "unknown_division"),
    ({"kickoff_date": "yesterday"}, "kickoff_date"),
    ({"home_team": 42}, "home_team"),
    ({"extra": 1}, "extra_forbidden"),
])
def test_bad_input_fails_with_a_reason(client, body, change, reason):
    matches = [body["matches"][0], {**body["matches"][0], **change}]
    job_id = submit(client, {"matches": matches})
    record = wait_finished(client, job_id)
    assert record["status"] == "failed" and reason in record["error"], record
    result = client.get(f"/jobs/{job_id}/result")
    assert result.status_code == 409 and result.json()["error"] == "job_failed", result.text
    assert reason in result.json()["message"]


@pytest.mark.parametrize("payload, reason", [
    ({"matches": []}, "too_short"),
    ({"games": []}, "missing"),
])
def test_bad_batch_fails_with_a_reason(client, payload, reason):
    record = wait_finished(client, submit(client, payload))
    assert record["status"] == "failed" and reason in record["error"], record


def test_a_body_that_is_not_an_object_is_refused(client):
    got = client.post("/jobs", json=[1, 2])
    assert got.status_code == 422 and got.json()["error"], got.text


def test_unknown_job_is_404(client):
    for path in (f"/jobs/{uuid.uuid4().hex}", f"/jobs/{uuid.uuid4().hex}/result", f"/jobs/{'x' * 200}"):
        got = client.get(path)
        assert got.status_code == 404 and got.json()["error"] == "unknown_job", got.text


@pytest.mark.parametrize("status", ["pending", "running"])
def test_result_of_an_unfinished_job_is_409(client, store, status):
    # a record staged in Redis but not queued: it stays in this state whatever the worker does
    job_id = uuid.uuid4().hex
    store.redis.hset(store.job_key(job_id), mapping={"job_id": job_id, "status": status,
                                                      "created_at": dt.datetime.now(dt.UTC).isoformat()})
    got = client.get(f"/jobs/{job_id}")
    assert got.status_code == 200 and got.json()["status"] == status and got.json()["finished_at"] is None
    result = client.get(f"/jobs/{job_id}/result")
    assert result.status_code == 409, result.text
    assert result.json()["error"] == "job_not_finished" and result.json()["status"] == status


def test_jobs_survive_a_restart(client, bento_server, store, body):
    done = submit(client, body)
    assert wait_finished(client, done)["status"] == "completed"
    before = client.get(f"/jobs/{done}/result").json()

    bento_server.stop()
    # while the server is down: a job a worker had taken (BLMOVE into processing) when it died, and one queued
    crashed, queued = uuid.uuid4().hex, uuid.uuid4().hex
    now = dt.datetime.now(dt.UTC).isoformat()
    store.redis.hset(store.job_key(crashed), mapping={"job_id": crashed, "status": "running", "created_at": now,
                                                      "started_at": now, "attempts": 1, "request": json.dumps(body)})
    store.redis.lpush(store.processing_key, crashed)
    store.redis.hset(store.job_key(queued), mapping={"job_id": queued, "status": "pending", "created_at": now,
                                                     "request": json.dumps(body)})
    store.redis.lpush(store.pending_key, queued)
    bento_server.start()

    after = client.get(f"/jobs/{done}/result")
    assert after.status_code == 200, after.text
    assert after.json() == before
    for job_id in (crashed, queued):
        record = wait_finished(client, job_id)
        assert record["status"] == "completed", record
        got = client.get(f"/jobs/{job_id}/result").json()
        assert [p["probabilities"] for p in got["predictions"]] == [p["probabilities"] for p in before["predictions"]]
    assert store.redis.llen(store.processing_key) == 0
