"""A Locust user mix against a running Time2Bet service (load and soak testing; for saturation throughput and
open-loop latency use bench/serve.py, whose generator is much lighter than Locust's).

    time2bet serve --port 3000        # or: bentoml serve bento_service.service:Time2BetService --port 3000
    locust -f bench/locustfile.py --headless -u 50 -r 10 -t 30s --host http://127.0.0.1:3000

Each user first reads the upcoming fixtures (GET /matches), then mixes, by weight: POST /predict of a fixture
(10), POST /predict/batch of 2-20 fixtures (2), GET /predict/{match_id} (3), GET /matches (1) and
GET /model/info (1), with 10-100 ms between requests. A response that is not 200 (or a prediction without
probabilities) counts as a failure. Locust patches the standard library with gevent when imported, so run it
as its own process (pytest runs with ``-p no:locust``).
"""

from __future__ import annotations

import random

from locust import HttpUser, between, events, task

FIXTURES: list[dict] = []   # shared by every user of the process: the service's upcoming fixtures


def _fixtures(client) -> list[dict]:
    if not FIXTURES:
        with client.get("/matches", name="GET /matches", catch_response=True) as r:
            if r.status_code != 200 or not r.json().get("matches"):
                r.failure(f"GET /matches: {r.status_code} {r.text[:200]}")
                return []
            FIXTURES.extend(r.json()["matches"])
    return FIXTURES


def _body(match: dict) -> dict:
    return {"home_team": match["home_team"], "away_team": match["away_team"], "division": match["division"],
            "kickoff_date": match["match_date"]}


class ServiceUser(HttpUser):
    wait_time = between(0.01, 0.1)

    def on_start(self):
        self.fixtures = _fixtures(self.client)

    def _check(self, r, want_key: str | None = None):
        if r.status_code != 200:
            r.failure(f"{r.status_code}: {r.text[:200]}")
        elif want_key and want_key not in r.text:
            r.failure(f"no {want_key!r} in the answer")
        else:
            r.success()

    @task(10)
    def predict(self):
        if not self.fixtures:
            return
        with self.client.post("/predict", json=_body(random.choice(self.fixtures)), name="POST /predict",
                              catch_response=True) as r:
            self._check(r, "probabilities")

    @task(2)
    def predict_batch(self):
        if not self.fixtures:
            return
        matches = [_body(random.choice(self.fixtures)) for _ in range(random.randint(2, 20))]
        with self.client.post("/predict/batch", json={"matches": matches}, name="POST /predict/batch (2-20)",
                              catch_response=True) as r:
            self._check(r, "predictions")

    @task(3)
    def stored_prediction(self):
        if not self.fixtures:
            return
        match_id = random.choice(self.fixtures)["match_id"]
        with self.client.get(f"/predict/{match_id}", name="GET /predict/{match_id}", catch_response=True) as r:
            self._check(r, "p_home")

    @task(1)
    def matches(self):
        with self.client.get("/matches", name="GET /matches", catch_response=True) as r:
            self._check(r, "matches")

    @task(1)
    def model_info(self):
        with self.client.get("/model/info", name="GET /model/info", catch_response=True) as r:
            self._check(r, "version")


@events.quitting.add_listener
def _fail_on_errors(environment, **_):
    """Exit code 1 when any request failed (for CI)."""
    if environment.stats.total.fail_ratio > 0:
        environment.process_exit_code = 1
