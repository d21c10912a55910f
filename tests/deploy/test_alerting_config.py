"""The shipped alerting configuration passes the checkers of the very versions we deploy (promtool, amtool), and
every alert is complete, routed and unit-tested: deploy/prometheus/{prometheus.yml, rules/*.yml, tests/*.yml} and
deploy/alertmanager/alertmanager.yml."""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
# the one base of every runbook_url (the runbooks live in docs/runbooks/<alertname>.md of the repository)
RUNBOOK_BASE = "docs/runbooks/"
SEVERITIES = ("page", "ticket", "info")   # each routed to the receiver of that name (alertmanager.yml)
ANNOTATIONS = ("summary", "description", "runbook_url")


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, cwd=REPO, check=False)


def alert_rules(files: list[Path] = RULE_FILES) -> dict[str, dict]:
    """alert name -> its rule, over ``files``."""
    found: dict[str, dict] = {}
    for path in files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] not in found, f"alert {rule['alert']} defined twice (one runbook per name)"
                    found[rule["alert"]] = rule
    return found


def test_prometheus_config_is_valid_and_loads_every_rule_file(binary):
    result = run(binary("promtool"), "check", "config", PROMETHEUS / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # rule_files' glob picks up every file of rules/ (check config checks each one it found)
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout, result.stdout


def test_rule_files_are_valid(binary):
    assert RULE_FILES, "no rule files in deploy/prometheus/rules"
    result = run(binary("promtool"), "check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(binary):
    assert UNIT_TESTS, "no promtool unit tests in deploy/prometheus/tests"
    result = run(binary("promtool"), "test", "rules", *UNIT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS), result.stdout


def test_alertmanager_config_is_valid(binary):
    result = run(binary("amtool"), "check-config", ALERTMANAGER)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_routed_to_the_receiver_of_its_severity(binary):
    amtool = binary("amtool")
    for name, rule in alert_rules().items():
        severity = rule["labels"]["severity"]
        result = run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}",
                     f"--verify.receivers={severity}", f"alertname={name}", f"severity={severity}")
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


def test_every_alert_has_a_severity_summary_description_and_runbook():
    rules = alert_rules()
    assert len(rules) >= 16
    for name, rule in rules.items():
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        assert set(ANNOTATIONS) <= set(annotations), f"{name}: {sorted(annotations)}"
        assert annotations["summary"].strip(), name
        # the figures and what they are about, not just a sentence
        assert "{{ $value" in annotations["description"] or "{{ $labels" in annotations["description"], name
        assert annotations["runbook_url"] == f"{RUNBOOK_BASE}{name}.md", name


def test_every_alert_has_unit_tests_firing_and_not_firing():
    rules = alert_rules()
    firing, quiet = defaultdict(list), defaultdict(list)
    for path in UNIT_TESTS:
        spec = yaml.safe_load(path.read_text())
        loaded = alert_rules([(path.parent / f).resolve() for f in spec["rule_files"]])
        for group in spec["tests"]:
            for case in group.get("alert_rule_test", []):
                name = case["alertname"]
                # a case on an alert its file does not load would pass without testing anything
                assert name in loaded, f"{path.name}: {name} is not in its rule_files"
                if not case.get("exp_alerts"):
                    quiet[name].append(case["eval_time"])
                    continue
                for expected in case["exp_alerts"]:
                    # delivered as expected: the severity and every annotation, rendered
                    assert expected["exp_labels"]["severity"] == rules[name]["labels"]["severity"], name
                    assert set(expected.get("exp_annotations", {})) == set(ANNOTATIONS), name
                firing[name].append(case["eval_time"])
    assert not set(rules) - set(firing), f"no unit test shows these firing: {sorted(set(rules) - set(firing))}"
    assert not set(rules) - set(quiet), f"no unit test shows these not firing: {sorted(set(rules) - set(quiet))}"


def test_service_down_inhibits_the_request_alerts_of_its_instance():
    config = yaml.safe_load(ALERTMANAGER.read_text())
    rules = alert_rules()
    inhibitions = [r for r in config["inhibit_rules"] if r["source_matchers"] == ['alertname="ServiceDown"']]
    assert len(inhibitions) == 1, config["inhibit_rules"]
    inhibition = inhibitions[0]
    assert set(inhibition["equal"]) == {"job", "instance"}   # only the service that is down
    (target,) = inhibition["target_matchers"]
    pattern = re.fullmatch(r'alertname=~"(.+)"', target).group(1)
    for name in ("ServiceErrorRatioHigh", "ServiceLatencyP99High"):
        assert re.fullmatch(pattern, name), name
    # a renamed alert would slip out of the inhibition silently
    assert set(pattern.split("|")) <= set(rules), set(pattern.split("|")) - set(rules)
    assert rules["ServiceDown"]["labels"]["severity"] == "page"
