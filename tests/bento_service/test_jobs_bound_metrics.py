"""The batch-job queue's bounds as Prometheus gauges (bento_service/jobs.py): every JobStore exports the bounds it
enforces, so a service exports those of its settings from its start, before any job is submitted; the alert rules
divide the queue's levels by them (job_bound:time2bet_jobs_queue_fill:ratio in deploy/prometheus/rules/service.yml)."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bento_service.jobs import JobStore
from time2bet.settings import Settings

BOUNDS = {"TIME2BET_JOBS_MAX_PENDING": "7", "TIME2BET_JOBS_MAX_PENDING_BYTES": "12345"}


def test_a_store_exports_the_bounds_it_enforces(tmp_path):
    store = JobStore.from_settings(Settings.from_env({"TIME2BET_HOME": str(tmp_path), **BOUNDS}))
    try:
        assert REGISTRY.get_sample_value("time2bet_jobs_queue_max_pending") == 7 == store.max_pending
        assert REGISTRY.get_sample_value("time2bet_jobs_queue_max_bytes") == 12345 == store.max_pending_bytes
    finally:
        store.redis.close()


def test_a_service_exports_the_bounds_of_its_settings_from_its_start(platform_env, start_bento_server):
    service = start_bento_server({**platform_env, **BOUNDS})   # a service of its own: no job submitted to it
    try:
        text = httpx.get(f"{service.url}/metrics", timeout=30).text
    finally:
        service.stop()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name, bound in (("time2bet_jobs_queue_max_pending", 7), ("time2bet_jobs_queue_max_bytes", 12345)):
        assert families[name].type == "gauge"
        assert [(sample.labels, sample.value) for sample in families[name].samples] == [({}, bound)], name
