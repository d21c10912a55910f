"""Request bodies are bounded however they arrive (bento_service.metrics.ObserveRequests): against the session's
real `bentoml serve`, a chunked upload far over the limit is answered 413 at once, and the worker process never
holds more than the limit of it; a body a little over the limit, sent whole by a client that reads the answer
only afterwards, still gets the 413 (the server drains a bounded amount); chunked bodies under it are served."""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
import time
from pathlib import Path
from typing import Self

import pandas as pd
import pytest

from bento_service.metrics import MAX_BODY_BYTES

MB = 1024 * 1024
UPLOAD_BYTES = 400 * MB       # the abusive upload (a body is limited to 4 MB)
ANSWER_WITHIN_S = 10           # functional bound for the 413 (it takes well under a second)
MAX_RSS_GROWTH = 50 * MB       # of the worker process, at its peak during the upload
SAMPLE_EVERY_S = 0.005


def _chunk() -> bytes:
    """~1 MB of a plausible batch body (a JSON prefix, then matches): parsing it would allocate, not just hold."""
    match = b'{"home_team": "Arsenal", "away_team": "Chelsea", "division": "E0", "kickoff_date": "2025-03-01"},'
    return match * (MB // len(match))


def _worker(server):
    """The BentoML worker serving the requests: the `_bentoml_impl.worker` child of the `bentoml serve`."""
    psutil = pytest.importorskip("psutil")
    root = psutil.Process(server.process.proc.pid)
    workers = [p for p in root.children(recursive=True) if "_bentoml_impl.worker" in " ".join(p.cmdline())]
    assert len(workers) == 1, [(p.pid, p.cmdline()) for p in root.children(recursive=True)]
    return workers[0]


class PeakRss:
    """The worker's peak resident set while the block runs: its kernel high-water mark (VmHWM, reset at the start
    through /proc/<pid>/clear_refs) where that can be reset, and samples every few ms in any case."""

    def __init__(self, process):
        self.process, self.peak, self._stop = process, 0, threading.Event()
        self._hwm_reset = False
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _status_kb(self, field: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.process.pid}/status")

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> Self:
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")   # 5: reset the peak RSS (Linux >= 4.0)
            self._hwm_reset = True
        except OSError:
            pass
        self.before = self.process.memory_info().rss
        self.peak = self.before
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, self.process.memory_info().rss)
        if self._hwm_reset:
            self.peak = max(self.peak, self._status_kb("VmHWM") * 1024)

    @property
    def growth(self) -> int:
        return self.peak - self.before


def chunked_upload(port: int, path: str, total: int, deadline_s: float) -> tuple[http.client.HTTPResponse, bytes,
                                                                                 int, float]:
    """POST ``total`` bytes to ``path`` with Transfer-Encoding: chunked, 1 MB a chunk, stopping as soon as the
    server answers (its socket is readable) or stops taking the body (reset, closed); then read the answer.
    Returns (response, body, bytes sent, seconds to the answer). Bounded by ``deadline_s`` throughout."""
    start = time.monotonic()
    chunk = _chunk()
    piece = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=deadline_s)
    try:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode() + b'd\r\n{"matches": [\r\n')
        sent = 13
        try:
            while sent < total:
                remaining = deadline_s - (time.monotonic() - start)
                assert remaining > 0, f"the server took {sent // MB} MB in {deadline_s}s without answering"
                if select.select([sock], [], [], 0)[0]:   # an answer (or a close) is waiting: stop sending
                    break
                sock.settimeout(remaining)
                sock.sendall(piece)
                sent += len(chunk)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):   # the server stopped reading and closed: read its answer
            pass
        sock.settimeout(max(0.1, deadline_s - (time.monotonic() - start)))
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        return response, body, sent, time.monotonic() - start
    finally:
        sock.close()


@pytest.mark.parametrize("path", ["/predict/batch", "/jobs"])
def test_a_huge_chunked_body_is_refused_at_once_in_bounded_memory(bento_server, client, path):
    worker = _worker(bento_server)
    with PeakRss(worker) as rss:
        response, body, sent, took = chunked_upload(bento_server.port, path, UPLOAD_BYTES, ANSWER_WITHIN_S)
    assert response.status == 413, (response.status, body[:300])
    assert json.loads(body)["error"] == "body_too_large"
    assert took < ANSWER_WITHIN_S
    assert sent < UPLOAD_BYTES, "the whole upload was taken before the answer"
    assert response.getheader("connection", "").lower() == "close"   # the rest of the upload is not read
    assert rss.growth < MAX_RSS_GROWTH, f"worker RSS grew by {rss.growth / MB:.0f} MB (sent {sent / MB:.0f} MB)"
    assert client.get("/readyz").status_code == 200   # and the worker serves on


@pytest.mark.parametrize("path", ["/predict/batch", "/predict", "/jobs"])
def test_a_chunked_body_a_little_over_the_limit_sent_whole_gets_the_413(client, path):
    # httpx sends a generator's body chunked, all of it, and reads the answer only then: the server must have
    # drained it (a bounded amount) instead of resetting the connection mid-upload
    pieces = (b"[" if i == 0 else b" " * MB for i in range(MAX_BODY_BYTES // MB + 2))
    got = client.post(path, content=pieces, headers={"content-type": "application/json"})
    assert got.status_code == 413 and got.json()["error"] == "body_too_large", got.text
    assert got.headers.get("connection", "").lower() != "close"   # all of it was read: the connection is kept
    assert client.get("/readyz").status_code == 200


def test_chunked_bodies_under_the_limit_are_served(client, batch_features):
    matches = [{"home_team": r.home_team, "away_team": r.away_team, "division": r.division,
                "kickoff_date": pd.Timestamp(r.match_date).date().isoformat()} for r in batch_features.itertuples()]
    raw = json.dumps({"matches": matches}).encode()

    def pieces(data: bytes, size: int = 7):
        yield from (data[i:i + size] for i in range(0, len(data), size))

    chunked = client.post("/predict/batch", content=pieces(raw), headers={"content-type": "application/json"})
    whole = client.post("/predict/batch", json={"matches": matches})
    assert chunked.status_code == 200, chunked.text
    assert chunked.json() == whole.json()
    job = client.post("/jobs", content=pieces(raw), headers={"content-type": "application/json"})
    assert job.status_code == 202, job.text
    single = client.post("/predict", content=pieces(json.dumps(matches[0]).encode()),
                         headers={"content-type": "application/json"})
    assert single.status_code == 200, single.text
