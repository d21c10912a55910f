"""The runbooks of docs/runbooks/ are complete and their commands work.

Statically: every alert of deploy/prometheus/rules has its runbook with the four sections, every `runbook_url`
resolves to one of them, the README indexes them all, and every dashboard panel a runbook names exists.

End to end (heavy): on one sample platform (sample site, replay server, `time2bet serve` started by a runbook),
each scenario first induces a real symptom, then runs the ```bash runbook``` blocks of the runbooks that answer it
(bash -euo pipefail, each with a timeout), then their ```bash runbook-verify``` blocks, which must pass. Scenarios
share the platform, in the order of this file; each leaves it recovered for the next (the last two share a story: the
summer's rotation loads a season in which the game changed, the drift alerts follow)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from time2bet.background import free_port

from .conftest import wait_until

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "docs" / "runbooks"
RULE_FILES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))
SECTIONS = ("## Symptoms", "## Dashboard", "## Commands", "## Verify recovery")
PROCEDURES = ("backfill-range", "rollback-model", "source-file-quarantined", "rerun-failed-partition", "rotate-season")
BLOCK = re.compile(r"^```bash (runbook|runbook-verify)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
BLOCK_TIMEOUT_S = 900   # one block: a Dagster run on a busy machine takes minutes

# which scenario runs which runbooks' blocks (a runbook with marked blocks and no scenario fails the coverage test)
SCENARIOS = {
    "test_service_started_without_a_champion": ("ServiceDown", "ServiceErrorRatioHigh", "ServiceModelNotReady",
                                                "JobsQueueNearBound", "JobsQueueFull"),
    "test_service_at_capacity": ("ServiceLoadSheddingSustained", "ServiceLatencyP99High", "LedgerPredictionsDropped"),
    "test_bad_model_promoted": ("rollback-model", "LiveLogLossAboveEstimate", "LiveLogLossWorseThanEloReference"),
    "test_ledger_record_edited": ("LedgerChainProblems",),
    "test_pushgateway_down": ("PushgatewayDown",),
    "test_monitoring_never_switched_on": ("MonitoringFiguresStale",),
    "test_bad_source_files": ("DagsterRunFailed", "SourceFileRejected", "IngestionStaleInSeason",
                              "source-file-quarantined", "rerun-failed-partition", "FeaturesStale",
                              "BatchPredictionsStale"),
    "test_backfill_a_new_division": ("backfill-range",),
    "test_new_season_published": ("rotate-season",),
    "test_the_game_changed": ("TargetDrift", "FeatureDrift", "PredictionDrift"),
}


def alert_rules() -> dict[str, dict]:
    return {rule["alert"]: rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule}


def blocks(name: str, kind: str) -> list[str]:
    """The ```bash <kind>``` blocks of docs/runbooks/<name>.md, in order."""
    return [body for found, body in BLOCK.findall((RUNBOOKS / f"{name}.md").read_text()) if found == kind]


# --- static --------------------------------------------------------------------------------------------------

def test_every_alert_and_procedure_has_a_runbook_with_every_section():
    names = [*alert_rules(), *PROCEDURES]
    assert len(names) >= 25
    for name in names:
        path = RUNBOOKS / f"{name}.md"
        assert path.exists(), f"no runbook {path.relative_to(REPO)}"
        text = path.read_text()
        positions = [text.find(section + "\n") for section in SECTIONS]
        assert -1 not in positions, f"{name}: missing {[s for s, p in zip(SECTIONS, positions) if p < 0]}"
        assert positions == sorted(positions), f"{name}: sections out of order"
        assert "deploy/grafana" in text or "*Time2Bet / " in text, f"{name}: no dashboard named"


def test_every_runbook_url_resolves_to_its_runbook():
    for name, rule in alert_rules().items():
        url = rule["annotations"]["runbook_url"]
        assert url == f"docs/runbooks/{name}.md", f"{name}: {url}"
        assert (REPO / url).is_file(), url


def test_the_index_lists_every_runbook():
    index = (RUNBOOKS / "README.md").read_text()
    for path in RUNBOOKS.glob("*.md"):
        if path.name != "README.md":
            assert f"({path.name})" in index, f"{path.name} missing from docs/runbooks/README.md"


def test_every_panel_a_runbook_names_exists_on_its_dashboard():
    panels = {json.loads(p.read_text())["title"]: {panel["title"] for panel in json.loads(p.read_text())["panels"]}
              for p in DASHBOARDS}
    for path in RUNBOOKS.glob("*.md"):
        text = path.read_text()
        section = text[text.find("## Dashboard"):text.find("## Commands")]
        # *Time2Bet / Service*, row *Traffic*: **Up**, ...: each bold name belongs to the dashboard named before it
        dashboard = None
        for match in re.finditer(r"\*(Time2Bet / \w+)\*|\*\*([^*]+)\*\*", section):
            if match.group(1):
                dashboard = match.group(1)
                assert dashboard in panels, f"{path.name}: no dashboard {dashboard}"
            elif dashboard:
                panel = " ".join(match.group(2).split())   # as the markdown wrapped it
                assert panel in panels[dashboard], f"{path.name}: no panel {panel!r} on {dashboard}"


def test_every_runbook_has_commands_that_a_scenario_runs():
    exercised = {name for names in SCENARIOS.values() for name in names}
    for path in RUNBOOKS.glob("*.md"):
        name = path.stem
        if name == "README":
            continue
        # every runbook, the drift alerts' too, is induced and run on the sample platform
        assert blocks(name, "runbook"), f"{name}: no marked commands"
        assert blocks(name, "runbook-verify"), f"{name}: commands but no verify block"
        assert name in exercised, f"{name}: marked commands that no test runs"
        assert f"::{next(t for t, names in SCENARIOS.items() if name in names)}" in path.read_text(), \
            f"{name}: 'Where this is tested' does not name its scenario"
    for test, names in SCENARIOS.items():
        assert test in globals(), test
        for name in names:
            assert blocks(name, "runbook-verify"), f"{test}: {name} has no verify block"


# --- end to end ----------------------------------------------------------------------------------------------

class Runbooks:
    """Runs runbook blocks on the sample platform with the environment the runbooks document; remembers the process
    groups they leave running (servers started in the background) to stop them at the end."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, logs
        self.groups: list[int] = []

    def run(self, name: str, kind: str = "runbook", **extra: str) -> str:
        env = {**self.env, **extra}
        output = []
        for number, body in enumerate(blocks(name, kind)):
            process = subprocess.Popen(["bash", "-c", "set -euo pipefail\n" + body], env=env, cwd=REPO, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            self.groups.append(process.pid)
            try:
                out, _ = process.communicate(timeout=BLOCK_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                out, _ = process.communicate()
                pytest.fail(f"{name} {kind} block {number} timed out after {BLOCK_TIMEOUT_S}s:\n{out[-3000:]}")
            (self.logs / f"{name}.{kind}.{number}.log").write_text(out)
            assert process.returncode == 0, f"{name} {kind} block {number} exited {process.returncode}:\n{out[-3000:]}"
            output.append(out)
        assert output, f"{name}: no {kind} block"
        return "\n".join(output)

    def verify(self, name: str, **extra: str) -> str:
        return self.run(name, "runbook-verify", **extra)

    def stop_all(self) -> None:
        """SIGTERM to what the runbooks left running (each block ran in a process group of its own), SIGKILL to what
        lingers."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for group in self.groups:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(group, sig)
            if sig == signal.SIGTERM:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and any(_group_alive(g) for g in self.groups):
                    time.sleep(0.2)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


@pytest.fixture(scope="module")
def platform(platform_builder, service_env_for, tmp_path_factory):
    """A sample platform of this module's own (the scenarios change it), its replay server, and the runbooks'
    environment: the platform's locations, SERVICE_URL (nothing runs there yet), TIME2BET_SOURCE_URL, the venv first
    on PATH, and a deliberately small service (2 requests in flight, a ledger buffer of 2 records, 3 queued jobs) so
    that bursts show its limits."""
    from time2bet.source.mirror import ReplayServer
    from time2bet.source.sample_site import DEFAULT_AS_OF

    root = tmp_path_factory.mktemp("runbooks")
    platform_env = platform_builder(root)
    logs = root / "logs"
    logs.mkdir()
    with ReplayServer(root / "site", as_of=DEFAULT_AS_OF) as source:
        env = {**service_env_for(platform_env, root),
               "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
               "SERVICE_URL": f"http://127.0.0.1:{free_port()}", "TIME2BET_SOURCE_URL": source.url,
               "TIME2BET_SNAPSHOT_POLL_S": "1", "TIME2BET_MAX_IN_FLIGHT": "2", "TIME2BET_LEDGER_MAX_BUFFERED": "2",
               "TIME2BET_JOBS_MAX_PENDING": "3", "TIME2BET_CHALLENGER_SHARE": "0",
               "TIME2BET_JOBS_PREFIX": f"time2bet:test:{uuid.uuid4().hex}:runbooks:"}
        runbooks = Runbooks(env, logs)
        try:
            yield root, env, runbooks, source
        finally:
            runbooks.stop_all()
            _delete_keys(env["TIME2BET_REDIS_URL"], env["TIME2BET_JOBS_PREFIX"])


def _delete_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


def _client(env) -> httpx.Client:
    return httpx.Client(base_url=env["SERVICE_URL"], timeout=30)


def _registry(env):
    from mlflow import MlflowClient

    return MlflowClient(env["MLFLOW_TRACKING_URI"])


def _champion(env) -> str:
    return str(_registry(env).get_registered_model("match_outcome").aliases["champion"])


def _metric(env, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples with ``labels`` on the service's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{env['SERVICE_URL']}/metrics", timeout=30).text
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _upcoming(env, n: int) -> list[dict]:
    from time2bet.warehouse.client import Warehouse

    fixtures = Warehouse.from_url(env["TIME2BET_WAREHOUSE_URL"]).read_sql(
        "SELECT home_team, away_team, division FROM raw.fixtures ORDER BY match_date, division, home_team")
    return fixtures.head(n).to_dict("records")




@pytest.mark.heavy
def test_service_started_without_a_champion(platform):
    _, env, runbooks, _ = platform
    # the symptom: no service on SERVICE_URL, and a registry that lost its champion alias (ServiceDown; once
    # started, ServiceModelNotReady)
    _registry(env).delete_registered_model_alias("match_outcome", "champion")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{env['SERVICE_URL']}/livez", timeout=5)
    runbooks.run("ServiceDown")
    runbooks.verify("ServiceDown")
    with _client(env) as client:
        assert client.get("/readyz").status_code == 503
        # predictions fail (ServiceErrorRatioHigh) and jobs wait for a worker that waits for the model, until the
        # queue is full (JobsQueueNearBound, JobsQueueFull)
        match = _upcoming(env, 1)[0]
        for _ in range(5):
            answer = client.post("/predict", json=match)
            assert answer.status_code == 503 and answer.json()["error"] == "not_ready", answer.text
        batch = {"matches": _upcoming(env, 3)}
        assert [client.post("/jobs", json=batch).status_code for _ in range(4)] == [202, 202, 202, 429]
    diagnosis = runbooks.run("ServiceErrorRatioHigh")
    assert 'status="5xx"' in diagnosis and "not_ready" in diagnosis
    assert "pending 3" in runbooks.run("JobsQueueNearBound")
    assert 'reason="jobs_queue_full"} 1.0' in runbooks.run("JobsQueueFull")
    runbooks.run("ServiceModelNotReady")
    for name in ("ServiceModelNotReady", "ServiceErrorRatioHigh", "JobsQueueNearBound", "JobsQueueFull"):
        runbooks.verify(name)
    assert _champion(env) == "2"   # the alias the audit trail last named, not any version


@pytest.mark.heavy
def test_service_at_capacity(platform):
    _, env, runbooks, _ = platform
    matches = _upcoming(env, 10)

    def predict(i: int) -> int:
        body = {"matches": matches} if i % 2 else matches[i % len(matches)]
        return httpx.post(f"{env['SERVICE_URL']}/predict{'/batch' if i % 2 else ''}", json=body, timeout=30).status_code

    # bursts of concurrent predictions against 2 places in flight and a ledger buffer of 2 records, until both limits
    # showed (bounded): ServiceLoadSheddingSustained, LedgerPredictionsDropped; the latency histogram fills
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for _ in range(20):
            assert set(pool.map(predict, range(64))) <= {200, 503}
            if (_metric(env, "time2bet_requests_shed_total") > 0
                    and _metric(env, "time2bet_ledger_predictions_total", outcome="dropped") > 0):
                break
    assert _metric(env, "time2bet_requests_shed_total") > 0
    assert _metric(env, "time2bet_ledger_predictions_total", outcome="dropped") > 0
    assert "time2bet_requests_shed_total" in runbooks.run("ServiceLoadSheddingSustained")
    assert re.search(r"^/predict/batch +requests +\d+ +p99 <=", runbooks.run("ServiceLatencyP99High"), re.MULTILINE)
    assert 'outcome="dropped"' in runbooks.run("LedgerPredictionsDropped")
    for name in ("ServiceLoadSheddingSustained", "ServiceLatencyP99High", "LedgerPredictionsDropped"):
        runbooks.verify(name)


@pytest.mark.heavy
@pytest.mark.parametrize("runbook", ["LiveLogLossAboveEstimate", "LiveLogLossWorseThanEloReference", "rollback-model"])
def test_bad_model_promoted(platform, runbook):
    from time2bet.ml.registry import promote

    _, env, runbooks, _ = platform
    good = _champion(env)
    bad = next(v.version for v in _registry(env).search_model_versions("name='match_outcome'") if str(v.version) != good)
    # the symptom: the version the gate rejected is promoted by hand, and the running service follows it
    promote("match_outcome", str(bad), "a hand promotion past the gate", tracking_uri=env["MLFLOW_TRACKING_URI"])
    wait_until(lambda: httpx.get(f"{env['SERVICE_URL']}/model/info", timeout=10).json()["version"] == str(bad),
               f"the service serving v{bad}", 60)
    runbooks.run(runbook, MODEL_VERSION=str(bad))
    runbooks.verify(runbook, MODEL_VERSION=str(bad))
    assert _champion(env) == good


@pytest.mark.heavy
def test_ledger_record_edited(platform):
    _, env, runbooks, _ = platform
    segment = next(Path(env["TIME2BET_HOME"], "ledger").glob("*/run-*.jsonl"))   # the training run's batch
    original = segment.read_bytes()
    record = json.loads(original.splitlines()[0])["record"]
    edited = original.replace(f'"features_as_of":"{record["features_as_of"]}"'.encode(),
                              b'"features_as_of":"1999-01-01"', 1)
    assert edited != original
    segment.write_bytes(edited)
    diagnosis = runbooks.run("LedgerChainProblems")
    assert segment.name in diagnosis and "intact" not in diagnosis.split("ledger ")[-1].split(";")[0]
    segment.write_bytes(original)   # the restore from backup (the runbook's unmarked step)
    runbooks.verify("LedgerChainProblems")


@pytest.mark.heavy
def test_pushgateway_down(platform, binary):
    runbooks = platform[2]
    binary("prometheus-pushgateway")
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/-/healthy", timeout=5)
    assert "not answering" in runbooks.run("PushgatewayDown", TIME2BET_PUSHGATEWAY_URL=url)
    runbooks.verify("PushgatewayDown", TIME2BET_PUSHGATEWAY_URL=url)


@pytest.mark.heavy
def test_monitoring_never_switched_on(platform):
    runbooks = platform[2]
    diagnosis = runbooks.run("MonitoringFiguresStale")
    assert "default_automation_condition_sensor [STOPPED]" in diagnosis   # as a fresh deployment leaves it
    runbooks.verify("MonitoringFiguresStale")


@pytest.mark.heavy
def test_bad_source_files(platform):
    from time2bet.source.mirror import ReplayServer
    from time2bet.source.sample_site import DEFAULT_AS_OF

    root, env, runbooks, _ = platform
    started = time.time()
    # the symptoms: the source publishes E0 2024-25 without its home goals column (rejected, "invalid") and E1
    # 2024-25 without its last matches (quarantined); the ingestion of both fails (DagsterRunFailed)
    site = root / "site" / "mmz4281" / "2425"
    e0_good = (site / "E0.csv").read_bytes()
    assert b",FTHG," in e0_good
    (site / "E0.csv").write_bytes(e0_good.replace(b",FTHG,", b",HomeGoals,", 1))
    e1 = site / "E1.csv"
    e1.write_text("".join(e1.read_text().splitlines(keepends=True)[:50]))
    with ReplayServer(root / "site", as_of=DEFAULT_AS_OF) as broken:
        ingest = subprocess.run(["time2bet", "ingest", "--divisions", "E0,E1", "--seasons", "2024-25", "--no-fixtures"],
                                env={**env, "TIME2BET_SOURCE_URL": broken.url}, cwd=REPO, capture_output=True,
                                text=True, timeout=BLOCK_TIMEOUT_S)
    assert ingest.returncode == 1, ingest.stdout[-2000:] + ingest.stderr[-2000:]
    (site / "E0.csv").write_bytes(e0_good)   # the source fixes its file
    e0 = {"DIVISION": "E0", "SEASON": "2024-25", "ALERT_STARTS_AT": str(started)}
    e1_partition = {"DIVISION": "E1", "SEASON": "2024-25"}
    failed = runbooks.run("DagsterRunFailed")
    assert "no_file_rejected" in failed or "no_file_quarantined" in failed, failed
    rejected = runbooks.run("SourceFileRejected", **e0)
    assert re.search(r'division="E0",reason="invalid",season="2024-25"\} 1', rejected), rejected
    assert "latest version rejected: invalid" in runbooks.run("IngestionStaleInSeason", **e0)
    # the source serves E0 again (the module's healthy replay server); E1's shorter file is judged a correction
    # the source is healthy again (a server started after E1's change, so that it serves the new file)
    with ReplayServer(root / "site", as_of=DEFAULT_AS_OF) as healthy:
        e0["TIME2BET_SOURCE_URL"] = e1_partition["TIME2BET_SOURCE_URL"] = healthy.url
        assert re.search(r"drops \d+ loaded match", runbooks.run("source-file-quarantined", **e1_partition))
        runbooks.run("rerun-failed-partition", **e0)
        runbooks.run("FeaturesStale")
        # the scenario runs no daemon: nothing predicted the fixtures from the rebuilt features
        assert "batch_predictions" in runbooks.run("BatchPredictionsStale")
        runbooks.verify("source-file-quarantined", **e1_partition)
        for name in ("rerun-failed-partition", "SourceFileRejected", "IngestionStaleInSeason"):
            runbooks.verify(name, **e0)
    runbooks.verify("DagsterRunFailed", JOB_NAME="ingest_season_files")
    runbooks.verify("FeaturesStale")
    runbooks.verify("BatchPredictionsStale")


@pytest.mark.heavy
def test_backfill_a_new_division(platform, tmp_path):
    from time2bet.source.mirror import ReplayServer
    from time2bet.source.sample_site import DEFAULT_AS_OF, generate_sample_site

    root, env, runbooks, _ = platform
    # the platform has never loaded SC0; the source publishes two seasons of it
    generate_sample_site(tmp_path / "sc0", divisions=("SC0",), seasons=("2023-24", "2024-25"))
    for path in (tmp_path / "sc0" / "mmz4281").glob("*/SC0.csv"):
        shutil.copyfile(path, root / "site" / "mmz4281" / path.parent.name / path.name)
    with ReplayServer(root / "site", as_of=DEFAULT_AS_OF) as source:   # (a server catalogues its files at start)
        backfill = {"DIVISIONS": "SC0", "SEASONS": "2023-24:2024-25", "TIME2BET_SOURCE_URL": source.url}
        before = subprocess.run(["bash", "-c", blocks("backfill-range", "runbook-verify")[0]], env={**env, **backfill},
                                cwd=REPO, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
        assert before.returncode == 1 and "2 published partition(s) in the range, 2 not loaded" in before.stdout, before
        runbooks.run("backfill-range", **backfill)
        assert "2 published partition(s) in the range, 0 not loaded" in runbooks.verify("backfill-range", **backfill)


GAME_CHANGED = dt.date(2025, 3, 1)   # from the sample platform's clock on, the game changes (see _the_game_changed)
SUMMER = dt.date(2025, 9, 8)          # the rotation's clock: the week's fixtures of 2025-26 published, some played
PREDICTED_BEFORE = "2025-02-24"       # the kickoff week of the round of 1 March, predicted when the platform was built
PREDICTED_AFTER = "2025-09-08"        # the kickoff week the rotation's training predicts
_SWAPPED = (("FTHG", "FTAG"), ("HTHG", "HTAG"), ("HS", "AS"), ("HST", "AST"), ("HF", "AF"), ("HC", "AC"),
            ("HY", "AY"), ("HR", "AR"))


def _the_game_changed(path: Path, since: dt.date) -> int:
    """Rewrites a site's season file as if the game had changed on ``since``: from then on the home side plays as the
    away side used to (every home/away pair of columns swapped, the results too) and every count triples (goals,
    shots, fouls, corners, cards). The odds stay: the market did not see it coming. Returns the matches changed."""
    import csv
    import io

    raw = path.read_bytes()
    bom = b"\xef\xbb\xbf" if raw.startswith(b"\xef\xbb\xbf") else b""
    text = raw.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    changed = 0
    for row in rows:
        if dt.datetime.strptime(row["Date"], "%d/%m/%Y").date() < since:
            continue
        for home, away in _SWAPPED:
            row[home], row[away] = str(3 * int(row[away])), str(3 * int(row[home]))
        row["FTR"], row["HTR"] = ({"H": "A", "A": "H", "D": "D"}[row[c]] for c in ("FTR", "HTR"))
        changed += 1
    out = io.StringIO()
    writer = csv.DictWriter(out, list(rows[0]), lineterminator="\r\n" if "\r\n" in text else "\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(bom + out.getvalue().encode())
    return changed


@pytest.mark.heavy
def test_new_season_published(platform, tmp_path):
    from time2bet.source.mirror import ReplayServer
    from time2bet.source.sample_site import DEFAULT_DIVISIONS, DEFAULT_SEASONS, generate_sample_site

    root, _, runbooks, _ = platform
    # early September after the sample site's last season: the source completes 2024-25 and publishes 2025-26, in
    # both of which the game changed on 1 March 2025 (test_the_game_changed follows it up)
    generate_sample_site(tmp_path / "next", seasons=(*DEFAULT_SEASONS, "2025-26"))
    shutil.copytree(tmp_path / "next" / "mmz4281" / "2526", root / "site" / "mmz4281" / "2526")
    changed = sum(_the_game_changed(path, GAME_CHANGED) for path in root.glob("site/mmz4281/2[45]2[56]/*.csv"))
    assert changed > 2 * len(DEFAULT_DIVISIONS) * 5
    rotation = {"DIVISIONS": ",".join(DEFAULT_DIVISIONS), "SEASON": "2025-26"}
    with ReplayServer(root / "site", as_of=SUMMER) as summer:
        out = runbooks.run("rotate-season", TIME2BET_SOURCE_URL=summer.url, **rotation)
        assert "E0 2025-26: HTTP 200" in out
        assert re.search(r"not loaded \[\]; [1-9]\d* upcoming fixtures", runbooks.verify(
            "rotate-season", TIME2BET_SOURCE_URL=summer.url, **rotation))


@contextlib.contextmanager
def _weekly_monitoring(env: dict[str, str]):
    """run(week, load_ledger): what the monitoring's automation runs on Tuesdays (the code location's automation
    sensor, once switched on): the prediction ledger's days loaded (when it has new records), then ``drift_report``
    for the kickoff week; here in this process, on the platform's own Dagster instance, as `time2bet simulate`
    runs them (the code location loaded once)."""
    import gc

    import dagster as dg

    from time2bet.cli.main import QUIET_CONSOLE, prepare_dagster_home
    from time2bet.cli.simulate import platform_environment
    from time2bet.settings import Settings
    from time2bet_assets.definitions import build_definitions

    with platform_environment(env):
        settings = Settings.from_env()
        prepare_dagster_home(settings)
        defs = build_definitions(settings)
        with dg.DagsterInstance.get() as instance:
            def run(week: str, *, load_ledger: bool) -> None:
                days = sorted(p.name for p in settings.ledger_dir.iterdir() if p.is_dir()) if load_ledger else []
                for day in days:
                    result = defs.resolve_job_def("load_prediction_ledger").execute_in_process(
                        instance=instance, partition_key=day, run_config=QUIET_CONSOLE, raise_on_error=False)
                    assert result.success, f"load_prediction_ledger {day} failed"
                result = defs.resolve_job_def("monitor").execute_in_process(
                    instance=instance, partition_key=week, asset_selection=[dg.AssetKey("drift_report")],
                    run_config=QUIET_CONSOLE, raise_on_error=False)
                assert result.success, f"drift_report {week} failed"
                gc.collect()   # the run's warehouse connection: the runbooks' processes may open the warehouse next

            yield run


@pytest.mark.heavy
def test_the_game_changed(platform, binary):
    from time2bet.monitoring.replay_alerts import MetricSeries, fired_alerts

    _, env, runbooks, _ = platform
    promtool = binary("promtool")
    exported = MetricSeries()   # what the Pushgateway holds after each weekly export, for the shipped rules
    with _weekly_monitoring(env) as monitor:
        # the symptom, first: the round of 1 March was predicted by the champion before the game changed; its
        # results (loaded by the summer's rotation) drift from the champion's training window: more goals, home
        # sides losing
        monitor(PREDICTED_BEFORE, load_ledger=True)
        exported.record(PREDICTED_BEFORE, env["TIME2BET_HOME"])
        target = runbooks.run("TargetDrift", WEEK=PREDICTED_BEFORE)
        assert re.search(rf'^time2bet_drift_p_value{{column="goals",kind="target",.*week="{PREDICTED_BEFORE}"}} ',
                         target, re.MULTILINE), target
        assert "trained on 2020-21..2024-25" in target   # the rotation's candidate, trained on the changed weeks
        runbooks.verify("TargetDrift", WEEK=PREDICTED_BEFORE)
        # then: the week the rotation's training predicted, on features of months of the changed game
        monitor(PREDICTED_AFTER, load_ledger=False)   # (its predictions: loaded above)
        exported.record(PREDICTED_AFTER, env["TIME2BET_HOME"])
    features = runbooks.run("FeatureDrift", WEEK=PREDICTED_AFTER)
    assert re.search(rf'^time2bet_drift_dataset_drift{{.*week="{PREDICTED_AFTER}"}} 1\.0$', features, re.MULTILINE), \
        features
    assert 'kind="prediction"' in runbooks.run("PredictionDrift", WEEK=PREDICTED_AFTER)
    for name in ("FeatureDrift", "PredictionDrift"):
        runbooks.verify(name, WEEK=PREDICTED_AFTER)
    # the shipped alert rules fire on what was exported: target drift after the first week, features and
    # predictions after the second (a push replaces the asset's figures of the week before); the earlier
    # scenarios' exports are there too (say SourceFileRejected's: the sensor that refreshes them is not running)
    drift = {"FeatureDrift", "PredictionDrift", "TargetDrift"}
    fired = [[name for name in step if name in drift] for step in fired_alerts(exported, promtool=promtool)]
    assert fired == [["TargetDrift"], ["FeatureDrift", "PredictionDrift"]], fired
