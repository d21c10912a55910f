"""The ingestion's state that the alerting needs and Dagster does not record (an unchanged file records nothing),
kept per season-file partition ('E0|2024-25') in the Dagster instance's key-value store: the ingestion assets write
it, the monitoring area's ingestion_figures sensor reads it. One definition of the keys for both areas.

The store is reached through ``instance.daemon_cursor_storage`` (Dagster's key-value store for daemons and
sensors; not a documented public API, hence kept in this one module)."""

from __future__ import annotations

import dagster as dg

LAST_SUCCESS_KEY = "time2bet/ingestion/last_success/{}"   # Unix time the source's file was last fetched successfully
REJECTED_KEY = "time2bet/ingestion/rejected/{}"           # "invalid" | "quarantined" | "" (latest version loaded)
_CHUNK = 500   # keys per statement (SQLite's bound on parameters)


def recall(instance: dg.DagsterInstance, keys: list[str]) -> dict[str, str]:
    """The values of ``keys`` in the instance's key-value store (those it has)."""
    storage, found = instance.daemon_cursor_storage, {}
    for i in range(0, len(keys), _CHUNK):
        found.update(storage.get_cursor_values(set(keys[i:i + _CHUNK])))
    return found


def remember(instance: dg.DagsterInstance, pairs: dict[str, str]) -> None:
    """Record ``pairs`` in the instance's key-value store."""
    storage = instance.daemon_cursor_storage
    existing = set(recall(instance, list(pairs)))
    # set_cursor_values inserts, or updates when a key exists: one call with new and existing keys would update the
    # existing ones only, so each call gets keys of one kind
    for wanted in (True, False):
        items = [(k, v) for k, v in pairs.items() if (k in existing) is wanted]
        for i in range(0, len(items), _CHUNK):
            storage.set_cursor_values(dict(items[i:i + _CHUNK]))
