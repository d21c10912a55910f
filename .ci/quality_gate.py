"""CI quality gate (issue 15): a short, fixed training on the sample site whose metrics must stay within the
thresholds below. Run by .ci/run after the tests; exits non-zero, with one line per breach, when a metric is out of
bounds or missing (it cannot pass vacuously: every checked metric must be present and finite).

It builds the small sample platform (time2bet.cli.sample_platform.build_platform: sample site -> replay server ->
ingest -> features -> train -> promotion gate), then reads the champion's numbers from MLflow:

- the promotion gate's held-out window (tags ``gate.*`` on the champion's registered version):
  ``gate.challenger_log_loss``, ``gate.challenger_ece`` and the Elo-only model on the same window,
  ``gate.elo_only_log_loss`` (issue 16: no champion is worse than the simplest model);
- the training run's walk-forward scores, pooled over every validation match (metrics ``cv.*``):
  ``cv.model_log_loss``, ``cv.model_ece`` and the Elo-only reference on the same matches, ``cv.elo_log_loss``.

Artefacts (``$CI_ARTIFACTS_DIR``, default ``artifacts/`` at the repository root), written pass or fail:
``quality/data-docs/`` (the Great Expectations Data Docs of the build) and ``quality/mlflow_metrics.json`` (every
metric of the champion's run, its gate tags, the thresholds and the verdict).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Thresholds. The sample site is generated deterministically, so today's values are fixed; each bound leaves a
# margin over today's value (in brackets, measured by running this script on 2026-12-07; today's champion is the
# logistic-regression baseline, promoted by the gate's fallback) and catches a real regression.
UNIFORM_LOG_LOSS = 1.0986  # ln 3: the log-loss of guessing 1/3 each; a model no better than that has regressed
MAX_GATE_LOG_LOSS = UNIFORM_LOG_LOSS  # [today 1.0631] log-loss on the gate's held-out season (n=180)
MAX_GATE_ECE = 0.10  # [today 0.0617] class-wise ECE (10 bins) on that season; the promotion gate itself allows
#                      max(0.05, the noise floor of a calibrated model: 0.079 at n=180), this catches a collapse
MAX_CV_LOG_LOSS = UNIFORM_LOG_LOSS  # [today 1.0836] walk-forward out-of-fold log-loss over every validation match
MAX_CV_ECE = 0.15  # [today 0.1095] walk-forward class-wise ECE over the same matches (n=540)
# Not worse than the Elo-only reference on the same out-of-fold matches by more than this (log-loss). Issue #11
# (forecasting) is to make the model beat Elo-only, when this becomes 0; until then, the margin that holds today.
MAX_CV_LOG_LOSS_OVER_ELO = 0.08  # [today +0.0573: model 1.0836, Elo-only 1.0264]
# On the gate's window the champion is never worse than the Elo-only model: the gate's fallback ladder registers the
# Elo-only model when it beats the candidate (issue 16), so this holds by construction and a breach is a broken gate.
MAX_GATE_LOG_LOSS_OVER_ELO_ONLY = 0.0  # [today -0.0215: champion 1.0631, Elo-only model 1.0846]


def _float(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def champion_numbers(tracking_uri: str, model_name: str) -> dict:
    """The champion's version, gate tags and run metrics; raises LookupError when there is no champion."""
    from time2bet.ml.registry import alias_version
    from time2bet.mlflow_store import registry_client
    from time2bet.serving_contract import CHAMPION

    client = registry_client(tracking_uri)
    version = alias_version(client, model_name, CHAMPION)
    if version is None:
        raise LookupError(f"no {CHAMPION} alias on {model_name}: the sample training promoted nothing")
    mv = client.get_model_version(model_name, version)
    run = client.get_run(mv.run_id) if mv.run_id else None
    return {
        "model_name": model_name,
        "champion_version": str(version),
        "run_id": mv.run_id,
        "gate_tags": {k: v for k, v in mv.tags.items() if k.startswith("gate.")},
        "run_metrics": dict(run.data.metrics) if run is not None else {},
    }


def check(numbers: dict) -> tuple[dict, list[str]]:
    """(the checked values, the breaches in words); a missing or non-finite metric is a breach."""
    tags, metrics = numbers["gate_tags"], numbers["run_metrics"]
    values = {
        "gate.challenger_log_loss": _float(tags.get("gate.challenger_log_loss")),
        "gate.challenger_ece": _float(tags.get("gate.challenger_ece")),
        "gate.elo_only_log_loss": _float(tags.get("gate.elo_only_log_loss")),
        "cv.model_log_loss": _float(metrics.get("cv.model_log_loss")),
        "cv.model_ece": _float(metrics.get("cv.model_ece")),
        "cv.elo_log_loss": _float(metrics.get("cv.elo_log_loss")),
    }
    breaches = [f"{name}: missing or not finite in MLflow" for name, v in values.items() if v is None]
    if breaches:
        return values, breaches

    def at_most(name: str, value: float, bound: float) -> None:
        if not value <= bound:
            breaches.append(f"{name} = {value:.4f} > threshold {bound}")

    at_most("gate.challenger_log_loss", values["gate.challenger_log_loss"], MAX_GATE_LOG_LOSS)
    at_most("gate.challenger_ece", values["gate.challenger_ece"], MAX_GATE_ECE)
    at_most("cv.model_log_loss", values["cv.model_log_loss"], MAX_CV_LOG_LOSS)
    at_most("cv.model_ece", values["cv.model_ece"], MAX_CV_ECE)
    values["cv.model_log_loss - cv.elo_log_loss"] = values["cv.model_log_loss"] - values["cv.elo_log_loss"]
    at_most("cv.model_log_loss - cv.elo_log_loss (worse than Elo-only by)",
            values["cv.model_log_loss - cv.elo_log_loss"], MAX_CV_LOG_LOSS_OVER_ELO)
    values["gate.challenger_log_loss - gate.elo_only_log_loss"] = (values["gate.challenger_log_loss"]
                                                                   - values["gate.elo_only_log_loss"])
    at_most("gate.challenger_log_loss - gate.elo_only_log_loss (worse than the Elo-only model by)",
            values["gate.challenger_log_loss - gate.elo_only_log_loss"], MAX_GATE_LOG_LOSS_OVER_ELO_ONLY)
    return values, breaches


def main() -> int:
    from time2bet.cli.sample_platform import build_platform
    from time2bet.settings import Settings

    artifacts = Path(os.environ.get("CI_ARTIFACTS_DIR") or REPO / "artifacts").absolute() / "quality"
    shutil.rmtree(artifacts, ignore_errors=True)  # nothing stale from an earlier run
    artifacts.mkdir(parents=True)
    started = time.monotonic()
    report: dict = {
        "thresholds": {
            "max_gate_log_loss": MAX_GATE_LOG_LOSS, "max_gate_ece": MAX_GATE_ECE,
            "max_cv_log_loss": MAX_CV_LOG_LOSS, "max_cv_ece": MAX_CV_ECE,
            "max_cv_log_loss_over_elo": MAX_CV_LOG_LOSS_OVER_ELO,
            "max_gate_log_loss_over_elo_only": MAX_GATE_LOG_LOSS_OVER_ELO_ONLY,
        },
    }
    with tempfile.TemporaryDirectory(prefix="time2bet-quality-gate-") as tmp:
        root = Path(tmp)
        try:
            env = build_platform(root)
        except Exception as exc:  # noqa: BLE001 - any failure of the build is a failed gate, reported as such
            breaches = [f"building the sample platform failed: {type(exc).__name__}: {exc}"]
            values = {}
        else:
            home = Path(env["TIME2BET_HOME"])
            docs = home / "quality" / "data-docs"
            if docs.is_dir():
                shutil.copytree(docs, artifacts / "data-docs")
            model_name = Settings.from_env().model_name
            try:
                report |= champion_numbers(env["MLFLOW_TRACKING_URI"], model_name)
            except LookupError as exc:
                breaches, values = [str(exc)], {}
            else:
                values, breaches = check(report)
            if not docs.is_dir() or not any(docs.rglob("index.html")):
                breaches.append(f"no Great Expectations Data Docs under {docs}")
    report |= {"checked": values, "breaches": breaches, "passed": not breaches,
               "seconds": round(time.monotonic() - started, 1)}
    (artifacts / "mlflow_metrics.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")

    print(f"\nquality gate ({report['seconds']} s); artefacts in {artifacts}")
    for name, value in values.items():
        print(f"  {name:<40} {value if value is None else f'{value:.4f}'}")
    if breaches:
        print("QUALITY GATE FAILED:", file=sys.stderr)
        for breach in breaches:
            print(f"  - {breach}", file=sys.stderr)
        return 1
    print("quality gate passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
