"""Durable async batch jobs in Redis (BentoML's own task store is wiped at every start, so it is not used).

Layout under a key prefix (TIME2BET_JOBS_PREFIX, default ``time2bet:jobs:``) of TIME2BET_REDIS_URL (default
``redis://127.0.0.1:6379/0``):

- ``{prefix}job:{id}``     hash: job_id, status (pending|running|completed|failed), created_at, started_at,
                           finished_at, error, and the submitted body (``request``, dropped once finished);
                           expires TIME2BET_JOBS_RESULT_TTL_S (default a day) after it finished;
- ``{prefix}result:{id}``  the result JSON (the same body POST /predict/batch returns), expires as the record;
- ``{prefix}pending``      list of job ids waiting (LPUSH on submit, taken from the right: first in, first out);
- ``{prefix}processing``   list of job ids being worked on: a job is moved here atomically (BLMOVE) when taken
                           and removed once its outcome is stored, so a job in flight survives a crash; at start
                           every id left here is put back at the head of ``pending``;
- ``{prefix}sizes``        hash: job id -> bytes of its stored ``request``, for every job not finished yet;
- ``{prefix}pending_bytes`` their sum: the request bytes Redis holds for unfinished jobs (pending or running).

The queue is bounded: a submit is refused (``JobStore.Full``; POST /jobs answers 429 with Retry-After) when
TIME2BET_JOBS_MAX_PENDING jobs are waiting, or when its request would take the bytes held for unfinished jobs
past TIME2BET_JOBS_MAX_PENDING_BYTES. The check and the enqueue are one Lua script (atomic in Redis), so
concurrent submits from any number of workers cannot overshoot; a job's bytes are released, in the same
transaction, when its outcome is stored (and its ``request`` dropped). The levels and the bounds are exported:
``time2bet_jobs_queue_depth`` / ``_bytes`` and ``time2bet_jobs_queue_max_pending`` / ``_max_bytes``.

The worker (``JobWorker``) is one thread in the service's worker process; it takes jobs only once the service
is ready (model and snapshot loaded) and never dies on an error (Redis unreachable: retried with a pause).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Callable

import redis
from prometheus_client import Counter, Gauge

from time2bet.settings import (
    DEFAULT_JOBS_MAX_PENDING,
    DEFAULT_JOBS_MAX_PENDING_BYTES,
    DEFAULT_JOBS_PREFIX,
    DEFAULT_JOBS_RESULT_TTL_S,
    DEFAULT_REDIS_URL,
    Settings,
)

logger = logging.getLogger("time2bet.serving.jobs")

RESULT_TTL_S = DEFAULT_JOBS_RESULT_TTL_S   # the default; TIME2BET_JOBS_RESULT_TTL_S
RETRY_AFTER_S = 5          # a refused submit's Retry-After: a queue of small jobs drains in about that
POP_TIMEOUT_S = 1          # BLMOVE blocks at most this long, so the worker notices a stop request promptly
RETRY_PAUSE_S = 1.0        # after a Redis error
STATES = ("pending", "running", "completed", "failed")
FINISHED = ("completed", "failed")
MAX_JOB_ID = 64
MAX_ATTEMPTS = 3           # a job whose run was cut short this often (the worker died each time) fails

JOBS = Counter("time2bet_jobs_total", "batch jobs entering each state (pending = submitted)", ["state"])
QUEUE_DEPTH = Gauge("time2bet_jobs_queue_depth", "batch jobs waiting in the pending queue",
                    multiprocess_mode="livemax")
QUEUE_BYTES = Gauge("time2bet_jobs_queue_bytes", "bytes of the requests of unfinished batch jobs (pending or "
                    "running) held in Redis", multiprocess_mode="livemax")
# the two bounds the queue is held to (set by every JobStore: the service's, at start), so that the alert rules
# divide the levels above by the bounds configured rather than by the defaults
QUEUE_MAX_PENDING = Gauge("time2bet_jobs_queue_max_pending", "the bound on batch jobs waiting in the pending queue "
                          "(TIME2BET_JOBS_MAX_PENDING): at it POST /jobs answers 429", multiprocess_mode="livemax")
QUEUE_MAX_BYTES = Gauge("time2bet_jobs_queue_max_bytes", "the bound on the request bytes held for unfinished batch "
                        "jobs (TIME2BET_JOBS_MAX_PENDING_BYTES): past it POST /jobs answers 429",
                        multiprocess_mode="livemax")

# KEYS: pending, pending_bytes, sizes, the job's record; ARGV: max pending, max bytes, the request's size, job id,
# then the record's fields and values. Returns {1 (queued) | 0 (too many jobs) | -1 (too many bytes), depth, bytes}.
_SUBMIT = """
local depth = redis.call('LLEN', KEYS[1])
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
local size = tonumber(ARGV[3])
if depth >= tonumber(ARGV[1]) then return {0, depth, held} end
if held + size > tonumber(ARGV[2]) then return {-1, depth, held} end
redis.call('HSET', KEYS[4], unpack(ARGV, 5))
redis.call('HSET', KEYS[3], ARGV[4], size)
redis.call('LPUSH', KEYS[1], ARGV[4])
return {1, depth + 1, redis.call('INCRBY', KEYS[2], size)}
"""
# KEYS: pending_bytes, sizes; ARGV: job id. Releases the job's bytes (once: a job without a size releases none,
# say one queued before sizes were kept); returns the bytes still held.
_RELEASE = """
local size = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if size == 0 then return tonumber(redis.call('GET', KEYS[1]) or '0') end
redis.call('HDEL', KEYS[2], ARGV[1])
local held = redis.call('DECRBY', KEYS[1], size)
if held < 0 then redis.call('SET', KEYS[1], 0) held = 0 end
return held
"""


class JobInputError(ValueError):
    """The job's input is invalid: the job fails with this (readable) reason."""


class QueueFull(Exception):
    """A submit refused: the queue is at one of its bounds (``limit``: "jobs" or "bytes"). Also ``JobStore.Full``."""

    def __init__(self, limit: str, message: str, retry_after_s: int = RETRY_AFTER_S):
        super().__init__(message)
        self.limit, self.retry_after_s = limit, retry_after_s


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class JobStore:
    """The Redis side of the jobs: records, results, the two lists and the bytes held. Every call is bounded by
    socket timeouts. ``submit`` raises ``JobStore.Full`` when the queue is at a bound."""

    Full = QueueFull

    def __init__(self, url: str | None = None, prefix: str | None = None, *, client: redis.Redis | None = None,
                 max_pending: int = DEFAULT_JOBS_MAX_PENDING, max_pending_bytes: int = DEFAULT_JOBS_MAX_PENDING_BYTES,
                 result_ttl_s: int = DEFAULT_JOBS_RESULT_TTL_S):
        self.url = url or DEFAULT_REDIS_URL
        self.prefix = prefix if prefix is not None else DEFAULT_JOBS_PREFIX
        self.max_pending, self.max_pending_bytes, self.result_ttl_s = max_pending, max_pending_bytes, result_ttl_s
        QUEUE_MAX_PENDING.set(max_pending)
        QUEUE_MAX_BYTES.set(max_pending_bytes)
        # socket_timeout above the BLMOVE block time, so a blocking pop never trips it
        self.redis = client or redis.Redis.from_url(self.url, socket_connect_timeout=5,
                                                    socket_timeout=POP_TIMEOUT_S + 5, decode_responses=True)
        self.pending_key = f"{self.prefix}pending"
        self.processing_key = f"{self.prefix}processing"
        self.sizes_key = f"{self.prefix}sizes"
        self.bytes_key = f"{self.prefix}pending_bytes"
        self._submit = self.redis.register_script(_SUBMIT)
        self._release = self.redis.register_script(_RELEASE)

    @classmethod
    def from_settings(cls, settings: Settings) -> JobStore:
        return cls(settings.redis_url, settings.jobs_prefix, max_pending=settings.jobs_max_pending,
                   max_pending_bytes=settings.jobs_max_pending_bytes, result_ttl_s=settings.jobs_result_ttl_s)

    def job_key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def result_key(self, job_id: str) -> str:
        return f"{self.prefix}result:{job_id}"

    # --- API side ---------------------------------------------------------------------------------------

    def submit(self, body: dict) -> dict:
        """Store a pending job and queue it, if the queue has room for it (one atomic script); returns its public
        record, or raises ``JobStore.Full``."""
        job_id = uuid.uuid4().hex
        request = json.dumps(body)   # ASCII (ensure_ascii): its length is its size in bytes
        record = {"job_id": job_id, "status": "pending", "created_at": _now(), "request": request}
        fields = [part for item in record.items() for part in item]
        queued, depth, held = self._submit(keys=[self.pending_key, self.bytes_key, self.sizes_key,
                                                 self.job_key(job_id)],
                                           args=[self.max_pending, self.max_pending_bytes, len(request), job_id,
                                                 *fields])
        QUEUE_DEPTH.set(depth)
        QUEUE_BYTES.set(held)
        if queued == 0:
            raise QueueFull("jobs", f"the jobs queue is full: {depth} jobs waiting (at most {self.max_pending}); "
                            f"retry in {RETRY_AFTER_S} s")
        if queued != 1:
            raise QueueFull("bytes", f"the jobs queue is full: unfinished jobs hold {held} bytes of requests and "
                            f"this one has {len(request)} (at most {self.max_pending_bytes} in all); "
                            f"retry in {RETRY_AFTER_S} s")
        JOBS.labels(state="pending").inc()
        return self.public(record)

    def get(self, job_id: str) -> dict | None:
        if not job_id or len(job_id) > MAX_JOB_ID:
            return None
        record = self.redis.hgetall(self.job_key(job_id))
        return self.public(record) if record else None

    def result(self, job_id: str) -> str | None:
        return self.redis.get(self.result_key(job_id))

    @staticmethod
    def public(record: dict) -> dict:
        return {"job_id": record.get("job_id"), "status": record.get("status"),
                "created_at": record.get("created_at"), "started_at": record.get("started_at") or None,
                "finished_at": record.get("finished_at") or None, "error": record.get("error") or None}

    # --- worker side ------------------------------------------------------------------------------------

    def requeue_processing(self) -> int:
        """Put every job left in ``processing`` (a previous run stopped mid-job) back at the head of ``pending``."""
        moved = 0
        while (job_id := self.redis.lmove(self.processing_key, self.pending_key, "LEFT", "RIGHT")) is not None:
            moved += 1
            if self.redis.exists(self.job_key(job_id)):
                self.redis.hset(self.job_key(job_id), "status", "pending")
        return moved

    def take(self, timeout: float = POP_TIMEOUT_S) -> str | None:
        """The next job id (moved atomically into ``processing``), or None after ``timeout`` seconds."""
        return self.redis.blmove(self.pending_key, self.processing_key, timeout, "RIGHT", "LEFT")

    def start(self, job_id: str) -> dict | None:
        """Mark a taken job running and count the attempt; returns its stored record (None if it is gone)."""
        record = self.redis.hgetall(self.job_key(job_id))
        if not record:
            return None
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.job_key(job_id), mapping={"status": "running", "started_at": _now()})
            pipe.hincrby(self.job_key(job_id), "attempts", 1)
            _, attempts = pipe.execute()
        record["attempts"] = attempts
        return record

    def finish(self, job_id: str, *, result: str | None = None, error: str | None = None) -> None:
        """Store the outcome, drop the request and its bytes, and release the job from ``processing`` (one
        transaction)."""
        key = self.job_key(job_id)
        fields = {"status": "completed" if error is None else "failed", "finished_at": _now(), "error": error or ""}
        with self.redis.pipeline(transaction=True) as pipe:
            if result is not None:
                pipe.set(self.result_key(job_id), result, ex=self.result_ttl_s)
            pipe.hset(key, mapping=fields)
            pipe.hdel(key, "request")
            self._release(keys=[self.bytes_key, self.sizes_key], args=[job_id], client=pipe)
            pipe.expire(key, self.result_ttl_s)
            pipe.lrem(self.processing_key, 1, job_id)
            held = pipe.execute()[-3]   # the release script's answer
        QUEUE_BYTES.set(held)

    def drop(self, job_id: str) -> None:
        """A taken job whose record is gone: release it and its bytes (one transaction)."""
        with self.redis.pipeline(transaction=True) as pipe:
            self._release(keys=[self.bytes_key, self.sizes_key], args=[job_id], client=pipe)
            pipe.lrem(self.processing_key, 1, job_id)
            held, _ = pipe.execute()
        QUEUE_BYTES.set(held)

    def depth(self) -> int:
        return int(self.redis.llen(self.pending_key))

    def levels(self) -> tuple[int, int]:
        """(jobs waiting, request bytes held for unfinished jobs), in one round trip; sets the two gauges."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(self.pending_key)
            pipe.get(self.bytes_key)
            depth, held = pipe.execute()
        depth, held = int(depth), int(held or 0)
        QUEUE_DEPTH.set(depth)
        QUEUE_BYTES.set(held)
        return depth, held


class JobWorker:
    """One thread: re-queue what a previous run left in ``processing``, then take and run jobs one at a time.

    ``run(body) -> result JSON`` raises ``JobInputError`` for bad input; any other exception fails the job too
    (with its type and message), so no job stays running."""

    def __init__(self, store: JobStore, run: Callable[[dict], str], ready: Callable[[], bool],
                 stop: threading.Event):
        self.store, self._run, self._ready, self._stop = store, run, ready, stop
        self.thread = threading.Thread(target=self._loop, name="time2bet-jobs", daemon=True)

    def start(self) -> JobWorker:
        self.thread.start()
        return self

    def _loop(self) -> None:
        recovered = False
        while not self._stop.is_set():
            try:
                if not recovered:
                    moved = self.store.requeue_processing()
                    recovered = True
                    if moved:
                        logger.warning("re-queued %d job(s) left in processing by a previous run", moved)
                if not self._ready():   # no model or snapshot yet: leave the jobs queued
                    self.store.levels()
                    self._stop.wait(0.2)
                    continue
                job_id = self.store.take()
                self.store.levels()
                if job_id is not None:
                    self._process(job_id)
            except redis.RedisError:
                logger.exception("jobs: Redis error; retrying in %.0fs", RETRY_PAUSE_S)
                self._stop.wait(RETRY_PAUSE_S)
            except Exception:  # deliberately broad: the worker thread must survive anything
                logger.exception("jobs: unexpected error in the worker loop")
                self._stop.wait(RETRY_PAUSE_S)

    def _process(self, job_id: str) -> None:
        record = self.store.start(job_id)
        if record is None:   # the record was deleted meanwhile: nothing to do
            self.store.drop(job_id)
            return
        JOBS.labels(state="running").inc()
        if int(record["attempts"]) > MAX_ATTEMPTS:
            self._fail(job_id, f"gave up: the worker stopped during each of {MAX_ATTEMPTS} attempts at this job")
            return
        try:
            body = json.loads(record.get("request") or "null")
            result = self._run(body)
        except JobInputError as exc:
            self._fail(job_id, str(exc))
        except Exception as exc:  # deliberately broad: reported on the job
            logger.exception("job %s failed", job_id)
            self._fail(job_id, f"{type(exc).__name__}: {exc}")
        else:
            self.store.finish(job_id, result=result)
            JOBS.labels(state="completed").inc()

    def _fail(self, job_id: str, reason: str) -> None:
        self.store.finish(job_id, error=reason or "failed")
        JOBS.labels(state="failed").inc()


__all__ = ["FINISHED", "RESULT_TTL_S", "RETRY_AFTER_S", "STATES", "JobInputError", "JobStore", "JobWorker",
           "QueueFull"]
