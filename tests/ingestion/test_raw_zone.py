"""The raw zone keeps every distinct version of a file, never rewrites one, and says which is current."""

from __future__ import annotations

import hashlib
import os
import uuid

import boto3
import pytest

from time2bet.ingestion.raw_zone import LocalRawZone, open_raw_zone, season_subject


@pytest.fixture(params=["local", "s3"])
def zone(request, tmp_path):
    if request.param == "local":
        return LocalRawZone(tmp_path / "raw")
    endpoint = request.getfixturevalue("s3_endpoint")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    bucket = f"raw-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    return open_raw_zone(f"s3://{bucket}/zone", s3_client=client)


def test_landing_the_same_bytes_twice_writes_one_object(zone):
    subject = season_subject("E0", "2019-20")
    first, new1 = zone.land(subject, b"Div,Date\nE0,09/08/2019\n")
    again, new2 = zone.land(subject, b"Div,Date\nE0,09/08/2019\n")
    assert (new1, new2) == (True, False)
    assert again == first
    assert first.sha256 == hashlib.sha256(b"Div,Date\nE0,09/08/2019\n").hexdigest()


def test_a_changed_file_becomes_a_new_version_and_the_old_one_stays_readable(zone):
    subject = season_subject("E0", "2019-20")
    v1, _ = zone.land(subject, b"v1")
    v2, is_new = zone.land(subject, b"v2")
    assert is_new and v2.uri != v1.uri
    assert zone.latest(subject) == v2
    assert zone.read(v1) == b"v1" and zone.read(v2) == b"v2"


def test_subjects_are_independent_and_unknown_subject_has_no_file(zone):
    zone.land(season_subject("E0", "2019-20"), b"a")
    assert zone.latest(season_subject("E0", "2020-21")) is None
    assert zone.latest(season_subject("E1", "2019-20")) is None


def test_local_objects_are_read_only(tmp_path):
    zone = LocalRawZone(tmp_path)
    landed, _ = zone.land("fixtures", b"x")
    assert not os.access(landed.uri, os.W_OK) or os.geteuid() == 0
    assert oct(os.stat(landed.uri).st_mode & 0o777) == "0o444"
