"""Waiting on the running service (a hot swap, a snapshot refresh) in the serving tests: bounded, and a failure
says what never happened."""

from __future__ import annotations

import time

import httpx
import pytest

WAIT_S = 60


def wait_for(what: str, check, timeout: float = WAIT_S):
    """Poll ``check`` until it returns something truthy (bounded); fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout}s still waiting for: {what}")
        time.sleep(0.2)
