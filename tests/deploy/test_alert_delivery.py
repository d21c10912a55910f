"""End to end, an outage reaches the people on call: a real `bentoml serve` of the session platform, scraped by a
real Prometheus that loads deploy/prometheus/rules/*.yml unchanged and sends to a real Alertmanager configured by
deploy/alertmanager/alertmanager.yml, which delivers to a webhook this test runs. The configurations are copies with
free loopback ports and shorter scrape/evaluation intervals and group_wait; the rules, routes and inhibitions are
the shipped ones. The service is stopped: ServiceDown reaches the page receiver once its `for: 1m` has passed; then
request alerts (error ratio, latency) of the stopped instance and of another one are sent to Alertmanager (a stopped
service cannot raise them itself): the stopped instance's are inhibited, the other's delivered."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import httpx
import pytest
import yaml

from time2bet.background import free_port

from .conftest import started, wait_until

pytestmark = pytest.mark.heavy

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"
RULES = REPO / "deploy" / "prometheus" / "rules"
ALERTMANAGER_YML = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
RUNBOOK_BASE = "docs/runbooks/"
SERVICE_JOB = "time2bet-service"
MONITORING_JOB = "time2bet_monitoring"   # what time2bet.monitoring.prometheus pushes as

INTERVAL = "1s"            # scrape and evaluation (15s shipped): the outage is seen within a second or two
GROUP_WAIT = "1s"          # (10s for pages shipped)
SERVICE_DOWN_FOR_S = 60    # ServiceDown's `for:` in rules/service.yml
START_S = 30               # each server ready, each target up, a pushed figure scraped
DELIVERY_S = SERVICE_DOWN_FOR_S + 30
INHIBITION_S = 20


class Webhook:
    """Alertmanager's webhook receiver on a free loopback port, recording every notification (path, body)."""

    def __init__(self) -> None:
        self.notifications: list[tuple[str, dict]] = []
        self.changed = threading.Condition()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with webhook.changed:
                    webhook.notifications.append((self.path, body))
                    webhook.changed.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):   # the test's output stays readable
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def delivered(self) -> list[tuple[str, dict]]:
        """(receiver path, alert) of every alert of every notification so far."""
        with self.changed:
            return [(path, alert) for path, body in self.notifications for alert in body["alerts"]]

    def wait_for(self, wanted: Callable[[str, dict], bool], timeout_s: float) -> tuple[str, dict] | None:
        """The first delivered (path, alert) that is ``wanted``, waiting at most ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while True:
                found = next(((p, a) for p, a in self.delivered() if wanted(p, a)), None)
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return found
                self.changed.wait(min(left, 1.0))


def alertmanager_config(webhook_port: int) -> dict:
    """The shipped configuration delivering to the test's webhook (same paths), with a shorter group_wait."""
    config = yaml.safe_load(ALERTMANAGER_YML.read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            url = httpx.URL(hook["url"])
            assert url.host == "127.0.0.1", hook["url"]   # the shipped default stays on loopback
            hook["url"] = str(url.copy_with(port=webhook_port))
    routes = [config["route"]]
    while routes:
        route = routes.pop()
        if route is config["route"] or "group_wait" in route:
            route["group_wait"] = GROUP_WAIT
        routes.extend(route.get("routes", []))
    return config


def prometheus_config(ports: dict[str, int], alertmanager_port: int) -> dict:
    """The shipped configuration on the test's ports, scraping and evaluating every second, loading the shipped
    rule files where they are."""
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"].update(scrape_interval=INTERVAL, scrape_timeout=INTERVAL, evaluation_interval=INTERVAL)
    config["rule_files"] = [str(PROMETHEUS_YML.parent / pattern) for pattern in config["rule_files"]]
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    alertmanagers["static_configs"] = [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # a job this test does not know would scrape its default port: whatever runs there on this machine
    assert set(jobs) == set(ports), sorted(jobs)
    for name, job in jobs.items():
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[name]}"]}]
    return config


def query(prometheus: str, promql: str) -> list[dict]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def api_alert(name: str, instance: str, **labels: str) -> dict:
    now = dt.datetime.now(dt.UTC)
    return {"labels": {"alertname": name, "severity": "page", "job": SERVICE_JOB, "instance": instance, **labels},
            "annotations": {"summary": f"{name} on {instance} (sent by the test)"},
            "startsAt": now.isoformat(), "endsAt": (now + dt.timedelta(minutes=10)).isoformat()}


def test_service_down_pages_and_inhibits_its_request_alerts(platform_env, start_bento_server, binary, tmp_path):
    from time2bet.monitoring import prometheus as figures

    commands = {name: binary(name) for name in ("prometheus", "prometheus-alertmanager", "prometheus-pushgateway")}
    ports = {"prometheus": free_port(), "alertmanager": free_port(), "pushgateway": free_port()}
    prometheus = f"http://127.0.0.1:{ports['prometheus']}"
    alertmanager = f"http://127.0.0.1:{ports['alertmanager']}"
    with contextlib.ExitStack() as stack:
        webhook = stack.enter_context(Webhook())
        service = start_bento_server(platform_env)   # a service of its own: this test stops it
        stack.callback(service.stop)
        instance = f"127.0.0.1:{service.port}"
        ports[SERVICE_JOB] = service.port

        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config(webhook.port)))
        started(stack, "alertmanager", [
            commands["prometheus-alertmanager"], f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
            "--cluster.listen-address="],   # no gossip port (9094 by default)
            f"{alertmanager}/-/ready", tmp_path / "alertmanager.log", START_S)
        started(stack, "pushgateway", [
            commands["prometheus-pushgateway"], f"--web.listen-address=127.0.0.1:{ports['pushgateway']}"],
            f"http://127.0.0.1:{ports['pushgateway']}/-/ready", tmp_path / "pushgateway.log", START_S)
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(ports, ports["alertmanager"])))
        started(stack, "prometheus", [
            commands["prometheus"], f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}"],
            f"{prometheus}/-/ready", tmp_path / "prometheus.log", START_S)

        # every shipped rule loaded, and evaluated without error
        shipped = [group["name"] for path in sorted(RULES.glob("*.yml"))
                   for group in yaml.safe_load(path.read_text())["groups"]]

        def evaluated():
            groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return groups if all(r["health"] != "unknown" for r in rules) else None
        groups = wait_until(evaluated, "every rule evaluated once", START_S)
        assert sorted(g["name"] for g in groups) == sorted(shipped)
        failing = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
        assert not failing, failing

        # every scrape job's target up: the service's /metrics among them
        def targets_up():
            active = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
            return {t["labels"]["job"] for t in active if t["health"] == "up"} == set(ports)
        wait_until(targets_up, f"every target up ({sorted(ports)})", START_S)
        assert query(prometheus, f'time2bet_model_info{{job="{SERVICE_JOB}", variant="champion"}} == 1')

        # the monitoring figures, pushed as the assets push them, keep their own job (honor_labels): the label
        # the pipeline and model rules select on
        exported = figures.export(
            figures.ledger_figures("2025-03-01", predictions=1, records=1, chains=1, problems=0, problems_elsewhere=0,
                                   torn_tails=0, freshness={"features": dt.datetime.now(dt.UTC)}),
            asset="prediction_ledger", home=tmp_path / "home",
            pushgateway_url=f"http://127.0.0.1:{ports['pushgateway']}")
        assert exported.pushed, exported.push_error
        wait_until(lambda: query(prometheus, f'push_time_seconds{{job="{MONITORING_JOB}", asset="prediction_ledger"}}'),
                   "the pushed figures scraped under their own job", START_S)

        # the outage
        stopped_at = time.monotonic()
        service.stop()
        found = webhook.wait_for(lambda path, alert: alert["labels"].get("alertname") == "ServiceDown"
                                 and alert["status"] == "firing", DELIVERY_S)
        waited = time.monotonic() - stopped_at
        assert found, (f"ServiceDown not delivered within {DELIVERY_S}s; delivered: {webhook.delivered()}; "
                       f"Alertmanager has {httpx.get(f'{alertmanager}/api/v2/alerts', timeout=10).json()}")
        path, alert = found
        assert path == "/alerts/page"   # routed by severity
        assert alert["labels"] == {"alertname": "ServiceDown", "severity": "page", "job": SERVICE_JOB,
                                   "instance": instance}
        assert alert["annotations"]["runbook_url"] == f"{RUNBOOK_BASE}ServiceDown.md"
        assert instance in alert["annotations"]["description"]
        # (a scrape under way when the service stopped, up to a second before, is the first to fail)
        assert waited >= SERVICE_DOWN_FOR_S - 1, f"delivered after {waited:.1f}s, before the rule's for: had passed"

        # while it is down, the request alerts of its instance are held back; another instance's go out
        other = "127.0.0.1:1"
        sent = [api_alert("ServiceErrorRatioHigh", instance), api_alert("ServiceErrorRatioHigh", other),
                api_alert("ServiceLatencyP99High", instance, route="/predict"),
                api_alert("ServiceLatencyP99High", other, route="/predict")]
        httpx.post(f"{alertmanager}/api/v2/alerts", json=sent, timeout=10).raise_for_status()
        for name in ("ServiceErrorRatioHigh", "ServiceLatencyP99High"):
            assert webhook.wait_for(lambda p, a, name=name: a["labels"].get("alertname") == name
                                    and a["labels"].get("instance") == other, INHIBITION_S), \
                f"{name} of another instance not delivered within {INHIBITION_S}s: {webhook.delivered()}"
        held = httpx.get(f"{alertmanager}/api/v2/alerts", params={"filter": f'instance="{instance}"'},
                         timeout=10).json()
        inhibited = {a["labels"]["alertname"] for a in held if a["status"]["inhibitedBy"]}
        assert inhibited == {"ServiceErrorRatioHigh", "ServiceLatencyP99High"}, held
        # their groups were sent (with the other instance's alert): had they not been inhibited, they were in it
        leaked = [(p, a["labels"]) for p, a in webhook.delivered()
                  if a["labels"].get("instance") == instance and a["labels"].get("alertname") != "ServiceDown"]
        assert not leaked, leaked
