"""The shipped Prometheus alert rules evaluated over a replay's metric series: the ``fired_alerts`` column of
`time2bet simulate` (``alerts`` there are the Dagster asset checks that warned or failed).

After each step the replay records the monitoring figures the platform exported
(``<home>/monitoring/prometheus/<asset>.prom``, time2bet.monitoring.prometheus.export: what the Pushgateway would
hold, each asset's latest export replacing its previous one, with the labels a Pushgateway scrape adds: ``job``,
``asset``). The series are then laid on a synthetic timeline, **one step = one hour scraped every minute**, and
``promtool test rules`` evaluates every rule of ``deploy/prometheus/rules/*.yml`` over them, expecting no alert at
the last minute of each step: the alerts it reports instead are the step's fired alerts (an alert with a ``for:``
of up to 59 minutes fires when its condition held through the step).

Only alerts whose input series a replay has can fire: the model's (FeatureDrift, PredictionDrift, TargetDrift,
LiveLogLossAboveEstimate, LiveLogLossWorseThanEloReference, from drift_report and live_quality) and the ledger's
verification (LedgerChainProblems, from prediction_ledger). The freshness figures are left out: they are wall-clock
ages of a replay that runs in minutes, meaningless on its clock. The service's alerts (no service is scraped), the
ingestion's and the failed-run alerts (their sensors' figures are not exported by the replay), never fire here.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from time2bet.background import REPO_ROOT
from time2bet.monitoring.prometheus import JOB, PARTS, monitoring_dir

RULES_DIR = REPO_ROOT / "deploy" / "prometheus" / "rules"
STEP_MINUTES = 60
WALL_CLOCK_FIGURES = ("time2bet_freshness_seconds", "time2bet_freshness_last_update_timestamp_seconds")
PROMTOOL_TIMEOUT_S = 600
_FAILED = re.compile(r"alertname: (\S+), time: (\S+),")
_DURATION = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_MINUTES = {"y": 525600, "w": 10080, "d": 1440, "h": 60, "m": 1, "s": 1 / 60, "ms": 1 / 60000}


def _selector(name: str, labels: dict[str, str]) -> str:
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    return name + "{" + ",".join(f"{k}={quoted(v)}" for k, v in sorted(labels.items())) + "}"


@dataclass
class MetricSeries:
    """The exported monitoring figures after each step: ``samples[series][step index] = value``."""

    steps: list[str] = field(default_factory=list)
    samples: dict[str, dict[int, float]] = field(default_factory=dict)

    def record(self, step: str, home: Path | str) -> None:
        """The figures exported under ``home`` as they stand after the step ``step`` (its label, e.g. the date)."""
        index = len(self.steps)
        self.steps.append(step)
        for part in sorted((monitoring_dir(home) / PARTS).glob("*.prom")):
            for family in text_string_to_metric_families(part.read_text()):
                for sample in family.samples:
                    if sample.name in WALL_CLOCK_FIGURES or not math.isfinite(sample.value):
                        continue
                    labels = {**sample.labels, "job": JOB, "asset": part.stem}
                    self.samples.setdefault(_selector(sample.name, labels), {})[index] = float(sample.value)

    def values(self, series: str) -> str:
        """promtool's notation of one series over the timeline: the step's value every minute, or missing."""
        recorded = self.samples[series]
        return " ".join(f"{recorded[k]!r}+0x{STEP_MINUTES - 1}" if k in recorded else f"_x{STEP_MINUTES}"
                        for k in range(len(self.steps)))


def rule_files(rules_dir: Path = RULES_DIR) -> list[Path]:
    return sorted(Path(rules_dir).glob("*.yml"))


def alert_names(files: list[Path]) -> list[str]:
    names = []
    for path in files:
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", []):
            names += [rule["alert"] for rule in group.get("rules", []) if "alert" in rule]
    return sorted(set(names))


def promtool_path() -> str | None:
    return shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)


def unit_test(series: MetricSeries, files: list[Path]) -> dict:
    """The ``promtool test rules`` file: every series, and no alert expected at the end of any step."""
    evaluations = [{"eval_time": f"{k * STEP_MINUTES + STEP_MINUTES - 1}m", "alertname": name, "exp_alerts": []}
                   for k in range(len(series.steps)) for name in alert_names(files)]
    return {"rule_files": [str(p.resolve()) for p in files], "evaluation_interval": "1m",
            "tests": [{"interval": "1m",
                       "input_series": [{"series": s, "values": series.values(s)} for s in sorted(series.samples)],
                       "alert_rule_test": evaluations}]}


def _minutes(duration: str) -> float:
    return sum(int(n) * _MINUTES[unit] for n, unit in _DURATION.findall(duration))


def fired_alerts(series: MetricSeries, rules_dir: Path = RULES_DIR, promtool: str | None = None) -> list[list[str]]:
    """Per step, the names of the shipped alerts firing at its end (sorted). Raises FileNotFoundError without
    promtool (Debian's ``prometheus`` package) and RuntimeError when promtool fails for another reason."""
    promtool = promtool or promtool_path()
    if promtool is None:
        raise FileNotFoundError("promtool not found (apt-get install prometheus)")
    fired: list[set[str]] = [set() for _ in series.steps]
    files = rule_files(rules_dir)
    if not series.steps or not files:
        return [[] for _ in series.steps]
    with tempfile.TemporaryDirectory(prefix="time2bet-alerts-") as folder:
        test = Path(folder) / "replay.yml"
        test.write_text(yaml.safe_dump(unit_test(series, files), sort_keys=False))
        done = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True,
                              timeout=PROMTOOL_TIMEOUT_S)
    output = done.stdout + done.stderr
    # each failed expectation: "alertname: X, time: 1h59m, exp:[], got:[ ... Labels:{...} ... ]"
    blocks = _FAILED.split(output)
    for name, when, body in zip(blocks[1::3], blocks[2::3], blocks[3::3], strict=True):
        if "Labels:" in body:
            fired[int(_minutes(when) // STEP_MINUTES)].add(name)
    if done.returncode != 0 and not any(fired):
        raise RuntimeError(f"promtool test rules failed: {output[-3000:]}")
    return [sorted(names) for names in fired]


__all__ = ["RULES_DIR", "STEP_MINUTES", "MetricSeries", "alert_names", "fired_alerts", "promtool_path", "rule_files",
           "unit_test"]
