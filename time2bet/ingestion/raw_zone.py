"""The raw zone: immutable, content-addressed copies of every source file we have landed.

Layout (the same on a local disk and in an S3 bucket):

    <root>/football-data/<subject>/<landed_at>_<sha256>.csv
    e.g. football-data/season-files/E0/2019-20/20261128T063000123456Z_3f2a...c0d1.csv
         football-data/fixtures/20261128T063000123456Z_9a8b...3a2b.csv

A new object is written only when the content differs from the latest one under its subject, so an
unchanged re-crawl writes nothing, and no object is ever overwritten or deleted: the history of what
the source published is kept, and "the current file" is simply the newest object under the subject.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

NAMESPACE = "football-data"


@dataclass(frozen=True)
class LandedFile:
    uri: str
    sha256: str
    landed_at: str  # UTC, e.g. 20261128T063000123456Z


def _object_name(sha256: str, landed_at: str) -> str:
    return f"{landed_at}_{sha256}.csv"


def _parse_object_name(name: str) -> tuple[str, str]:
    stamp, sha = name.removesuffix(".csv").split("_", 1)
    return stamp, sha


def _utc_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


class RawZone(Protocol):
    def land(self, subject: str, data: bytes) -> tuple[LandedFile, bool]: ...
    def latest(self, subject: str) -> LandedFile | None: ...
    def read(self, landed: LandedFile) -> bytes: ...


def season_subject(division: str, season: str) -> str:
    return f"season-files/{division}/{season}"


FIXTURES_SUBJECT = "fixtures"


class LocalRawZone:
    """Raw zone on a local directory. Objects are written to a temp file, made read-only and renamed into
    place, so a crash never leaves a half-written object."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _dir(self, subject: str) -> Path:
        return self.root / NAMESPACE / subject

    def latest(self, subject: str) -> LandedFile | None:
        d = self._dir(subject)
        if not d.is_dir():
            return None
        names = sorted(n for n in os.listdir(d) if n.endswith(".csv") and not n.startswith("."))
        if not names:
            return None
        stamp, sha = _parse_object_name(names[-1])
        return LandedFile(uri=str(d / names[-1]), sha256=sha, landed_at=stamp)

    def land(self, subject: str, data: bytes) -> tuple[LandedFile, bool]:
        """Store ``data`` unless it equals the latest object; returns (current file, whether it is new)."""
        sha256 = hashlib.sha256(data).hexdigest()
        current = self.latest(subject)
        if current is not None and current.sha256 == sha256:
            return current, False
        d = self._dir(subject)
        d.mkdir(parents=True, exist_ok=True)
        stamp = _utc_stamp()
        final = d / _object_name(sha256, stamp)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".landing-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o444)
        os.rename(tmp, final)
        return LandedFile(uri=str(final), sha256=sha256, landed_at=stamp), True

    def read(self, landed: LandedFile) -> bytes:
        return Path(landed.uri).read_bytes()


class S3RawZone:
    """Raw zone in an S3-compatible bucket (AWS S3, MinIO). Writes are single PUTs, which S3 makes
    visible atomically, so readers never see half an object."""

    def __init__(self, client: Any, bucket: str, prefix: str = ""):
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def _key(self, subject: str, name: str = "") -> str:
        parts = [p for p in (self.prefix, NAMESPACE, subject) if p]
        return "/".join(parts) + "/" + name

    def latest(self, subject: str) -> LandedFile | None:
        prefix = self._key(subject)
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".csv")]
        keys = [k for k in keys if "/" not in k[len(prefix):]]
        if not keys:
            return None
        key = max(keys)
        stamp, sha = _parse_object_name(key.rsplit("/", 1)[1])
        return LandedFile(uri=f"s3://{self.bucket}/{key}", sha256=sha, landed_at=stamp)

    def land(self, subject: str, data: bytes) -> tuple[LandedFile, bool]:
        sha256 = hashlib.sha256(data).hexdigest()
        current = self.latest(subject)
        if current is not None and current.sha256 == sha256:
            return current, False
        stamp = _utc_stamp()
        key = self._key(subject, _object_name(sha256, stamp))
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, Metadata={"sha256": sha256},
                               ContentType="text/csv")
        return LandedFile(uri=f"s3://{self.bucket}/{key}", sha256=sha256, landed_at=stamp), True

    def read(self, landed: LandedFile) -> bytes:
        bucket, key = landed.uri.removeprefix("s3://").split("/", 1)
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()


def open_raw_zone(location: str, s3_client: Any | None = None) -> RawZone:
    """``/some/dir`` -> LocalRawZone; ``s3://bucket/prefix`` -> S3RawZone (client from boto3 if not given;
    boto3 honours AWS_ENDPOINT_URL for MinIO and other S3-compatible servers)."""
    if location.startswith("s3://"):
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return S3RawZone(s3_client, bucket, prefix)
    return LocalRawZone(location)
