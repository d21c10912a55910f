"""Fixtures shared across test areas: real services on loopback, started once per test run."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "football-data"
PG_ADMIN_URL = os.environ.get("TIME2BET_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    if not (REAL_DATA / "MANIFEST.csv").exists():
        pytest.skip(f"real football-data mirror not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The PostgreSQL server on 127.0.0.1:5432; tests create (and drop) their own databases on it."""
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=5).close()
    except psycopg.OperationalError as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    return PG_ADMIN_URL


@pytest.fixture
def postgres_db(postgres_server_url: str):
    """A fresh database of our own, dropped afterwards; yields its URL."""
    import psycopg

    name = f"time2bet_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    url = postgres_server_url.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with psycopg.connect(postgres_server_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-compatible server (moto in server mode) on loopback, for the raw zone's S3 path."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
