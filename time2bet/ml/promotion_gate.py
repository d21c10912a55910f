"""The promotion gate: a challenger becomes ``champion`` only if the held-out latest season says it should.

On that window the challenger's log-loss must be within a tolerance of the champion's, no worse than the
logistic-regression baseline's, and its calibration error under a threshold (see :func:`promotion_gate`). Its
numbers and verdict are written on the challenger's version in the registry (tags ``gate.*``), so the registry
alone explains every promotion. When the baseline beats the chosen candidate, the baseline is registered and
gated in its place (:func:`gate_with_baseline_fallback`), so the simpler model winning never leaves the
platform without a champion; the two versions point at each other (``gate.fallback_version``,
``gate.fallback_of``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import mlflow
import pandas as pd

from time2bet.ml.metrics import calibrated_ece_quantile, encode_outcomes, expected_calibration_error, log_loss
from time2bet.ml.registry import alias_version, append_audit, promote, register_challenger, utc_now
from time2bet.ml.tracking import LoggedRun
from time2bet.ml.training import BASELINE_MODEL, season_order
from time2bet.mlflow_store import registry_client
from time2bet.serving_contract import CHAMPION, model_input


@dataclass(frozen=True)
class GateDecision:
    """The promotion gate's verdict on one challenger, with every number it rests on."""

    name: str
    challenger_version: str
    champion_version: str | None  # the champion when the gate ran (None: there was none)
    window: str
    n: int
    challenger_log_loss: float
    champion_log_loss: float | None
    challenger_ece: float
    ece_threshold: float  # max(max_ece, the noise floor of a calibrated model on this window)
    baseline_log_loss: float
    tolerance: float
    max_ece: float
    passed: tuple[str, ...]  # the checks met, in words
    failed: tuple[str, ...]  # the checks missed; empty means promoted

    @property
    def promoted(self) -> bool:
        return not self.failed

    def tags(self) -> dict[str, str]:
        """The ``gate.*`` tags written on the challenger's version (floats at full precision)."""
        return {
            "gate.decision": "promoted" if self.promoted else "rejected",
            "gate.window": self.window, "gate.n": str(self.n),
            "gate.challenger_log_loss": repr(self.challenger_log_loss),
            "gate.champion_version": self.champion_version or "",
            "gate.champion_log_loss": "" if self.champion_log_loss is None else repr(self.champion_log_loss),
            "gate.challenger_ece": repr(self.challenger_ece), "gate.max_ece": repr(self.max_ece),
            "gate.ece_threshold": repr(self.ece_threshold),
            "gate.baseline_log_loss": repr(self.baseline_log_loss), "gate.tolerance": repr(self.tolerance),
            "gate.passed": "; ".join(self.passed), "gate.failed": "; ".join(self.failed),
        }

    def describe(self) -> str:
        verdict = "PROMOTED to champion" if self.promoted else "REJECTED"
        lines = [f"Promotion gate: v{self.challenger_version} {verdict} on {self.window} (n={self.n})."]
        lines += [f"  passed: {text}" for text in self.passed] + [f"  failed: {text}" for text in self.failed]
        return "\n".join(lines)


def _window(frame: pd.DataFrame) -> str:
    seasons = ",".join(season_order(frame["season"]))
    if "match_date" not in frame.columns:
        return f"seasons {seasons}"
    return f"seasons {seasons}, {frame['match_date'].min()}..{frame['match_date'].max()}"


def _probabilities(name: str, version: str, frame: pd.DataFrame, features: Sequence[str] | None):
    """A registered version's pyfunc predictions (exactly what the service would return). Without
    ``features`` the model's own signature names its inputs, so a champion trained on other features is
    still scored on the same matches."""
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    columns = features if features is not None else model.metadata.get_input_schema().input_names()
    return model.predict(model_input(frame, columns))


def promotion_gate(
    name: str,
    challenger_version: str,
    eval_frame: pd.DataFrame,
    features: Sequence[str],
    *,
    baseline_logloss: float,
    tolerance: float = 0.002,
    max_ece: float = 0.05,
    tracking_uri: str,
    training_reason: str | None = None,
) -> GateDecision:
    """Score challenger and current champion on the same recent window and promote only if the challenger

    1. is not worse than the champion by more than ``tolerance`` in log-loss (skipped without a champion,
       so the first passing challenger becomes champion),
    2. is at least as good as the logistic-regression baseline (``training.baseline_log_loss`` on this
       window; a challenger that is that baseline ties and passes), and
    3. has class-wise ECE below ``max_ece`` (10 bins; ECE's sampling noise is about 0.03 at n = 300, so
       the window should hold a season of several divisions).

    ``eval_frame`` must be later than every model's training window. The decision goes to the challenger's
    tags and description, and a promotion is made and recorded through :func:`promote`; ``training_reason`` (why
    the training ran, e.g. ``automatic: new season: ...``) goes with it into the audit trail and the champion's
    reason.
    """
    client = registry_client(tracking_uri)
    challenger_version = str(challenger_version)
    champion = alias_version(client, name, CHAMPION)
    if champion == challenger_version:
        raise ValueError(f"{name} v{challenger_version} is already champion")
    y = encode_outcomes(eval_frame["result"])
    p = _probabilities(name, challenger_version, eval_frame, features)
    challenger_ll = log_loss(y, p)
    ece = expected_calibration_error(y, p).ece
    champion_ll = None if champion is None else log_loss(y, _probabilities(name, champion, eval_frame, None))

    passed, failed = [], []

    def check(ok: bool, text: str) -> None:
        (passed if ok else failed).append(text)

    if champion_ll is None:
        passed.append("no champion yet: the first challenger that passes becomes champion")
    else:
        ok = challenger_ll <= champion_ll + tolerance
        check(ok, f"log-loss {challenger_ll:.5f} {'<=' if ok else '>'} champion v{champion} "
                  f"{champion_ll:.5f} + tolerance {tolerance}")
    ok = challenger_ll <= baseline_logloss
    check(ok, f"log-loss {challenger_ll:.5f} {'<=' if ok else '>'} logistic-regression baseline "
              f"{baseline_logloss:.5f}")
    threshold = max(max_ece, calibrated_ece_quantile(p))
    ok = ece < threshold
    check(ok, f"class-wise ECE {ece:.4f} {'<' if ok else '>='} {threshold:.4f} (max of {max_ece} and the 95% "
              f"noise floor of a calibrated model on n={len(y)})")

    decision = GateDecision(
        name=name, challenger_version=challenger_version, champion_version=champion, window=_window(eval_frame),
        n=len(y), challenger_log_loss=challenger_ll, champion_log_loss=champion_ll, challenger_ece=ece,
        ece_threshold=threshold,
        baseline_log_loss=float(baseline_logloss), tolerance=tolerance, max_ece=max_ece,
        passed=tuple(passed), failed=tuple(failed),
    )
    tags = decision.tags()
    for key, value in {**tags, "gate.decided_at": utc_now()}.items():
        client.set_model_version_tag(name, challenger_version, key, value)
    client.update_model_version(name, challenger_version, description=decision.describe())
    append_audit(client, name, f"gate v{challenger_version}: {tags['gate.decision']}"
                         + ("" if decision.promoted else f" ({tags['gate.failed']})")
                         + (f"; trained because {training_reason}" if training_reason else ""))
    if decision.promoted:
        promote(name, challenger_version, (f"{training_reason}; " if training_reason else "")
                + f"passed the promotion gate on {decision.window}: " + "; ".join(decision.passed),
                tracking_uri=tracking_uri)
    return decision


@dataclass(frozen=True)
class GateOutcome:
    """Where one training run ended in the registry: the last gate decision and, when the logistic-regression
    baseline beat the chosen candidate, the candidate's rejection (the baseline was gated in its place)."""

    decision: GateDecision  # the candidate's, or the baseline fallback's when there was one
    rejected: GateDecision | None = None  # the candidate the baseline replaced (None: no fallback)

    @property
    def version(self) -> str:
        return self.decision.challenger_version

    def describe(self) -> str:
        if self.rejected is None:
            return self.decision.describe()
        verdict = "PROMOTED to champion" if self.decision.promoted else "REJECTED"
        return "\n".join([(f"Baseline fallback v{self.version} {verdict}: the logistic-regression baseline beat the "
                          f"chosen candidate v{self.rejected.challenger_version}, so it was registered and gated "
                          f"instead."), self.rejected.describe(), self.decision.describe()])


def gate_with_baseline_fallback(
    name: str,
    candidate: LoggedRun,
    model_name: str,
    eval_frame: pd.DataFrame,
    features: Sequence[str],
    *,
    baseline_logloss: float,
    train_baseline: Callable[[], LoggedRun],
    tags: Mapping[str, str] | None = None,
    tolerance: float = 0.002,
    max_ece: float = 0.05,
    tracking_uri: str,
    training_reason: str | None = None,
) -> GateOutcome:
    """Register the logged ``candidate`` (a ``model_name`` model) as challenger and gate it (:func:`promotion_gate`).

    If the gate rejects it because the logistic-regression baseline beats it (and it is not that baseline), the
    baseline is the better model on the latest data: ``train_baseline`` trains and logs it as the candidate was
    (same window, walk-forward validation and MLflow run), and it is registered as a further version and gated
    the same way, so it still has to hold up against the champion and be calibrated. Both versions get ``tags``
    and their own ``mlflow_run_id``; ``gate.fallback_version`` and ``gate.fallback_of`` link them.
    """
    client = registry_client(tracking_uri)

    def register_and_gate(run: LoggedRun, extra_tags: Mapping[str, str]) -> GateDecision:
        version = register_challenger(run.model_uri, name, {**(tags or {}), "mlflow_run_id": run.run_id, **extra_tags},
                                      tracking_uri=tracking_uri)
        return promotion_gate(name, version, eval_frame, features, baseline_logloss=baseline_logloss,
                              tolerance=tolerance, max_ece=max_ece, tracking_uri=tracking_uri,
                              training_reason=training_reason)

    first = register_and_gate(candidate, {})
    if first.promoted or model_name == BASELINE_MODEL or first.challenger_log_loss <= first.baseline_log_loss:
        return GateOutcome(first)
    rejected = first.challenger_version
    append_audit(client, name, f"baseline fallback: v{rejected} ({model_name}) lost to the {BASELINE_MODEL} baseline; "
                         f"registering the baseline")
    decision = register_and_gate(train_baseline(), {"gate.fallback_of": rejected})
    fallback = decision.challenger_version
    client.set_model_version_tag(name, rejected, "gate.fallback_version", fallback)
    client.update_model_version(name, rejected, description=f"{first.describe()}\nThe logistic-regression baseline "
                                f"beat it on this window and was registered instead as v{fallback}.")
    client.update_model_version(name, fallback, description=f"Registered as the logistic-regression baseline "
                                f"fallback of v{rejected}, which it beat on this window.\n{decision.describe()}")
    return GateOutcome(decision, rejected=first)
