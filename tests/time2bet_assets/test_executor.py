"""The executor is configuration: TIME2BET_DAGSTER_EXECUTOR=celery puts every job of the code location on
dagster-celery's executor with the configured broker and queue (the same block the workers are started with);
unset, the jobs keep Dagster's default executor. (tests/cli/test_stack.py runs steps on real Celery workers.)"""

from __future__ import annotations

import pytest

from time2bet.settings import Settings
from time2bet_assets.definitions import build_definitions
from time2bet_assets.lib.executor import celery_config


def _jobs(settings: Settings) -> dict:
    return {job.name: job for job in build_definitions(settings).resolve_all_job_defs() if not job.name.startswith("__")}


def test_celery_is_chosen_by_the_setting_with_its_broker_and_queue(tmp_path):
    settings = Settings.from_env({"TIME2BET_HOME": str(tmp_path), "TIME2BET_DAGSTER_EXECUTOR": "celery",
                                  "TIME2BET_CELERY_BROKER_URL": "pyamqp://guest:guest@127.0.0.1:5672//",
                                  "TIME2BET_CELERY_QUEUE": "stack_a_steps"})
    jobs = _jobs(settings)
    assert {"ingest_season_files", "build_features", "train_and_promote"} <= set(jobs)
    for job in jobs.values():
        assert job.executor_def.name == "celery", job.name
    assert celery_config(settings) == {"broker": "pyamqp://guest:guest@127.0.0.1:5672//", "backend": "rpc://",
                                       "config_source": {"task_default_queue": "stack_a_steps"}}


def test_unset_the_jobs_keep_dagsters_default_executor(tmp_path):
    for job in _jobs(Settings.from_env({"TIME2BET_HOME": str(tmp_path)})).values():
        assert job.executor_def.name != "celery", job.name


def test_an_unknown_executor_is_refused(tmp_path):
    with pytest.raises(ValueError, match="TIME2BET_DAGSTER_EXECUTOR"):
        Settings.from_env({"TIME2BET_HOME": str(tmp_path), "TIME2BET_DAGSTER_EXECUTOR": "k8s"})
