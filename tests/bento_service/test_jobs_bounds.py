"""The bounded batch-job queue (bento_service/jobs.py): against the real Redis on loopback, under a prefix of each
test's own, the count and byte bounds hold under concurrent submits (the check and the enqueue are one script)
and a job's bytes are released when it finishes; over HTTP, the session's server answers a full queue with 429,
Retry-After and a JSON error, and documents it."""

from __future__ import annotations

import os
import threading
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bento_service.jobs import RETRY_AFTER_S, JobStore
from time2bet.settings import Settings

REDIS_URL = os.environ.get("TIME2BET_REDIS_URL") or "redis://127.0.0.1:6379/0"
THREADS = 16
JOIN_S = 30


@pytest.fixture
def make_store():
    """make_store(**bounds) -> a JobStore under a fresh prefix; every key of it is deleted afterwards."""
    stores = []

    def make(**bounds) -> JobStore:
        store = JobStore(REDIS_URL, f"time2bet:test:{uuid.uuid4().hex}:jobs:", **bounds)
        try:
            store.redis.ping()
        except Exception as exc:  # noqa: BLE001 - the machine has no Redis: say so
            pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
        stores.append(store)
        return store

    yield make
    for store in stores:
        keys = list(store.redis.scan_iter(match=f"{store.prefix}*", count=500))
        if keys:
            store.redis.delete(*keys)
        store.redis.close()


def submit_concurrently(store: JobStore, bodies: list[dict]) -> tuple[list[dict], list[JobStore.Full]]:
    """Every body submitted from THREADS threads released at once; (accepted records, refusals)."""
    accepted, refused, errors = [], [], []
    start = threading.Barrier(THREADS)
    share = [bodies[i::THREADS] for i in range(THREADS)]

    def run(mine: list[dict]) -> None:
        try:
            start.wait(timeout=JOIN_S)
            for body in mine:
                try:
                    accepted.append(store.submit(body))
                except JobStore.Full as full:
                    refused.append(full)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(mine,)) for mine in share]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=JOIN_S)
    assert not any(t.is_alive() for t in threads), "submits did not finish"
    assert not errors, errors
    return accepted, refused


def body_of(size: int) -> dict:
    """A job body whose stored request (its JSON) is exactly ``size`` bytes."""
    return {"matches": "x" * (size - len('{"matches": ""}'))}


def test_the_count_bound_holds_under_concurrent_submits(make_store):
    store = make_store(max_pending=5)
    accepted, refused = submit_concurrently(store, [body_of(100) for _ in range(THREADS * 4)])
    assert len(accepted) == 5 and len(refused) == THREADS * 4 - 5
    assert {r.limit for r in refused} == {"jobs"} and all(r.retry_after_s == RETRY_AFTER_S for r in refused)
    assert store.levels() == (5, 500)
    assert store.redis.hlen(store.sizes_key) == 5


def test_the_byte_bound_holds_under_concurrent_submits(make_store):
    store = make_store(max_pending=1000, max_pending_bytes=10 * 1000 + 999)
    accepted, refused = submit_concurrently(store, [body_of(1000) for _ in range(THREADS * 4)])
    assert len(accepted) == 10 and {r.limit for r in refused} == {"bytes"}
    assert store.levels() == (10, 10 * 1000)


def test_bytes_are_released_as_jobs_finish_and_records_expire(make_store):
    store = make_store(max_pending=10, max_pending_bytes=2500, result_ttl_s=120)
    first, second = store.submit(body_of(1000)), store.submit(body_of(1000))
    with pytest.raises(JobStore.Full, match="2000 bytes") as full:
        store.submit(body_of(1000))
    assert full.value.limit == "bytes"

    assert store.take(timeout=1) == first["job_id"]
    assert store.levels() == (1, 2000)   # taken, not finished: its request is still held
    store.start(first["job_id"])
    store.finish(first["job_id"], result='{"predictions": []}')
    assert store.levels() == (1, 1000)
    assert 0 < store.redis.ttl(store.result_key(first["job_id"])) <= 120
    assert 0 < store.redis.ttl(store.job_key(first["job_id"])) <= 120
    assert "request" not in store.redis.hgetall(store.job_key(first["job_id"]))
    store.finish(first["job_id"], error="again")   # a second release of the same job releases nothing
    assert store.levels() == (1, 1000)

    third = store.submit(body_of(1000))   # room again
    assert store.take(timeout=1) == second["job_id"]
    store.redis.delete(store.job_key(second["job_id"]))   # its record is gone: the worker drops it
    store.drop(second["job_id"])
    assert store.take(timeout=1) == third["job_id"]
    store.finish(third["job_id"], error="bad input")
    assert store.levels() == (0, 0) and store.redis.hlen(store.sizes_key) == 0


def test_the_bounds_come_from_the_settings(tmp_path):
    settings = Settings.from_env({"TIME2BET_HOME": str(tmp_path), "TIME2BET_JOBS_MAX_PENDING": "7",
                                  "TIME2BET_JOBS_MAX_PENDING_BYTES": "12345", "TIME2BET_JOBS_RESULT_TTL_S": "60"})
    store = JobStore.from_settings(settings)
    assert (store.max_pending, store.max_pending_bytes, store.result_ttl_s) == (7, 12345, 60)
    defaults = JobStore.from_settings(Settings.from_env({"TIME2BET_HOME": str(tmp_path)}))
    assert (defaults.max_pending, defaults.max_pending_bytes, defaults.result_ttl_s) == (1000, 256 * 1024 * 1024,
                                                                                          24 * 3600)
    store.redis.close()
    defaults.redis.close()


def _metric(client: httpx.Client, name: str) -> float | None:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return None


def test_a_full_queue_is_answered_429_with_retry_after(client, bento_server):
    # the session's server (its worker consumes the queue): its byte counter is raised past the bound for the
    # duration of the test, so the refusal does not race the worker; the count bound is the same script
    store = JobStore(bento_server.env["TIME2BET_REDIS_URL"], bento_server.env["TIME2BET_JOBS_PREFIX"])
    bound = Settings.from_env(bento_server.env).jobs_max_pending_bytes
    store.redis.incrby(store.bytes_key, bound)
    try:
        got = client.post("/jobs", json={"matches": []})
        assert got.status_code == 429, got.text
        assert got.headers["retry-after"] == str(RETRY_AFTER_S)
        assert got.json()["error"] == "jobs_queue_full" and got.json()["limit"] == "bytes"
        assert got.json()["message"]
        assert _metric(client, "time2bet_jobs_queue_bytes") >= bound
    finally:
        store.redis.decrby(store.bytes_key, bound)
        store.redis.close()
    assert client.post("/jobs", json={"matches": []}).status_code == 202
    documented = client.get("/openapi.json").json()["paths"]["/jobs"]["post"]["responses"]["429"]
    assert "Retry-After" in documented["headers"]
    assert documented["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
