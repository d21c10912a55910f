"""The service with N > 1 workers (TIME2BET_SERVICE_WORKERS): a real `bentoml serve` on the session platform runs
two worker processes, both answer (each worker's prediction-ledger writer is named after its pid), and /metrics,
whichever worker answers the scrape, counts the requests of both (BentoML's multiprocess collector)."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil

WORKERS = 2
REQUESTS = 96
CLIENTS = 8
READY_TIMEOUT_S = 120
FLUSH_MS = 200
PREDICT_2XX = re.compile(r'^time2bet_requests_total\{route="/predict",status="2xx",variant="[a-z]+"\} ([0-9.]+)$',
                         re.MULTILINE)


def _worker_pids(server) -> set[int]:
    arbiter = psutil.Process(server.process.proc.pid)
    return {p.pid for p in arbiter.children(recursive=True) if "_bentoml_impl.worker.service" in " ".join(p.cmdline())}


def _every_worker_ready(url: str) -> None:
    """/readyz 200 on 20 fresh connections in a row: the server reports ready when its first worker is."""
    deadline, in_a_row = time.monotonic() + READY_TIMEOUT_S, 0
    while in_a_row < 20:
        assert time.monotonic() < deadline, f"the {WORKERS} workers not all ready after {READY_TIMEOUT_S}s"
        in_a_row = in_a_row + 1 if httpx.get(f"{url}/readyz", timeout=10).status_code == 200 else 0
        time.sleep(0.05)


def test_two_workers_both_answer_and_metrics_add_up_their_requests(platform_env, tmp_path, start_bento_server):
    ledger_dir = tmp_path / "ledger"
    server = start_bento_server({**platform_env, "TIME2BET_SERVICE_WORKERS": str(WORKERS),
                                 "TIME2BET_LEDGER_DIR": str(ledger_dir), "TIME2BET_LEDGER_FLUSH_MS": str(FLUSH_MS)})
    workers = _worker_pids(server)
    assert len(workers) == WORKERS, workers
    _every_worker_ready(server.url)
    matches = httpx.get(f"{server.url}/matches", timeout=30).json()["matches"]
    bodies = [{"home_team": m["home_team"], "away_team": m["away_team"], "division": m["division"],
               "kickoff_date": m["match_date"]} for m in matches]

    def predict(i: int) -> int:   # a connection of its own per request: the kernel spreads them over the workers
        return httpx.post(f"{server.url}/predict", json=bodies[i % len(bodies)], timeout=30).status_code

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(predict, range(REQUESTS)))
    assert statuses == [200] * REQUESTS

    time.sleep(3 * FLUSH_MS / 1000)
    writers = {int(path.stem.rsplit("-", 2)[1]) for path in ledger_dir.rglob("*.jsonl")}
    assert writers == workers, f"ledger writers {writers}: not every worker {workers} answered"

    for _ in range(2 * WORKERS):   # fresh connections: scrapes answered by either worker
        text = httpx.get(f"{server.url}/metrics", timeout=30).text
        assert sum(float(n) for n in PREDICT_2XX.findall(text)) == REQUESTS, text[:2000]
    server.stop()
