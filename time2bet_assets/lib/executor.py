"""What executes the steps of a launched run, chosen by configuration (TIME2BET_DAGSTER_EXECUTOR): Dagster's own
default (a multiprocess executor in the run worker), or dagster-celery, which sends every step as a Celery task to
TIME2BET_CELERY_BROKER_URL's queue TIME2BET_CELERY_QUEUE, where `dagster-celery worker start` processes (one
machine or many) run it. In-process execution (``execute_in_process``, the `time2bet` commands) ignores it.
"""

from __future__ import annotations

import dagster as dg

from time2bet.settings import Settings


def executor_for(settings: Settings) -> dg.ExecutorDefinition | None:
    """The executor of every job of the code location; None leaves Dagster's default."""
    if settings.dagster_executor != "celery":
        return None
    from dagster_celery import celery_executor

    return celery_executor.configured(celery_config(settings), name="celery")


def celery_config(settings: Settings) -> dict:
    """dagster-celery's executor config: the same block the workers get in their `--config-yaml` (under
    ``execution.config``), so that both sides agree on broker and queue. Results come back over the broker (rpc)."""
    return {"broker": settings.celery_broker_url, "backend": "rpc://",
            "config_source": {"task_default_queue": settings.celery_queue}}
