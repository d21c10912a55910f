"""The promotion gate: a challenger becomes ``champion`` only if the held-out latest season says it should.

On that window the challenger must not be worse than the champion by the tolerance, judged by a paired bootstrap
interval of the per-match log-loss difference over matchdays (not the point estimate alone: on a season a
difference of a few thousandths can be noise); it must be no worse than the logistic-regression baseline and the
Elo-only model, and its calibration error under a threshold (see :func:`promotion_gate`). Its numbers, interval
and verdict are written on the challenger's version in the registry (tags ``gate.*``) and its MLflow run, so the
registry alone explains every promotion. When a simpler model (the baseline or the Elo-only model) beats the
chosen candidate, the best of them is registered and gated in its place (:func:`gate_with_baseline_fallback`), so
no champion is worse than the simplest model, and a simpler model winning never leaves the platform without a
champion; the two versions point at each other (``gate.fallback_version``, ``gate.fallback_of``).

Models are compared within their family only (time2bet.ml.families): a challenger faces its own family's champion,
``champion`` for the configured family (``champion_family``), ``champion-<family>`` for another
(time2bet.ml.registry.family_aliases), and a champion alias held by a version of another family (the configured
family was changed) counts as no champion, so the first passing challenger of the configured family takes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow.entities import Metric, RunTag

from time2bet.ml.bootstrap import BootstrapInterval, paired_block_bootstrap
from time2bet.ml.metrics import calibrated_ece_quantile, encode_outcomes, expected_calibration_error, log_losses
from time2bet.ml.registry import (
    alias_version,
    append_audit,
    family_aliases,
    promote,
    register_challenger,
    utc_now,
    version_family,
)
from time2bet.ml.tracking import LoggedRun
from time2bet.ml.training import BASELINE_MODEL, ELO_ONLY_MODEL, season_order
from time2bet.mlflow_store import registry_client
from time2bet.serving_contract import DEFAULT_FAMILY, model_input


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
    elo_only_log_loss: float | None = None  # the Elo-only model on this window (None: no ratings, no such model)
    interval: BootstrapInterval | None = None  # (challenger - champion) per-match log-loss; None without a champion
    family: str = DEFAULT_FAMILY  # the challenger's model family; the champion it faced is of the same family
    champion_alias: str = "champion"  # its family's champion alias (registry.family_aliases), which it would take

    @property
    def promoted(self) -> bool:
        return not self.failed

    def tags(self) -> dict[str, str]:
        """The ``gate.*`` tags written on the challenger's version (floats at full precision)."""
        ci = self.interval
        return {
            "gate.decision": "promoted" if self.promoted else "rejected",
            "gate.family": self.family, "gate.champion_alias": self.champion_alias,
            "gate.window": self.window, "gate.n": str(self.n),
            "gate.challenger_log_loss": repr(self.challenger_log_loss),
            "gate.champion_version": self.champion_version or "",
            "gate.champion_log_loss": "" if self.champion_log_loss is None else repr(self.champion_log_loss),
            "gate.challenger_ece": repr(self.challenger_ece), "gate.max_ece": repr(self.max_ece),
            "gate.ece_threshold": repr(self.ece_threshold),
            "gate.baseline_log_loss": repr(self.baseline_log_loss), "gate.tolerance": repr(self.tolerance),
            "gate.elo_only_log_loss": "" if self.elo_only_log_loss is None else repr(self.elo_only_log_loss),
            **({} if ci is None else {
                "gate.log_loss_diff": repr(ci.estimate), "gate.ci_lo": repr(ci.lo), "gate.ci_hi": repr(ci.hi),
                "gate.ci_level": repr(ci.level), "gate.ci_n_resamples": str(ci.n_resamples),
                "gate.ci_seed": str(ci.seed), "gate.ci_block": ci.block, "gate.ci_n_blocks": str(ci.n_blocks)}),
            "gate.passed": "; ".join(self.passed), "gate.failed": "; ".join(self.failed),
        }

    def run_metrics(self) -> dict[str, float]:
        """The gate's numbers as metrics of the challenger's MLflow run (and so in the service's /model/info)."""
        values = {"gate.log_loss": self.challenger_log_loss, "gate.champion_log_loss": self.champion_log_loss,
                  "gate.baseline_log_loss": self.baseline_log_loss, "gate.elo_only_log_loss": self.elo_only_log_loss,
                  "gate.ece": self.challenger_ece, "gate.n": float(self.n),
                  **({} if self.interval is None else {"gate.log_loss_diff": self.interval.estimate,
                                                       "gate.ci_lo": self.interval.lo, "gate.ci_hi": self.interval.hi})}
        return {key: float(value) for key, value in values.items() if value is not None}

    def describe(self) -> str:
        verdict = f"PROMOTED to {self.champion_alias}" if self.promoted else "REJECTED"
        lines = [(f"Promotion gate: v{self.challenger_version} ({self.family} family) {verdict} on {self.window} "
                  f"(n={self.n}).")]
        lines += [f"  passed: {text}" for text in self.passed] + [f"  failed: {text}" for text in self.failed]
        return "\n".join(lines)


def _window(frame: pd.DataFrame) -> str:
    seasons = ",".join(season_order(frame["season"]))
    if "match_date" not in frame.columns:
        return f"seasons {seasons}"
    return f"seasons {seasons}, {frame['match_date'].min()}..{frame['match_date'].max()}"


def log_loss_interval(y, challenger_p, champion_p, kickoff_dates) -> BootstrapInterval:
    """The gate's evidence against the champion: the paired bootstrap interval (time2bet.ml.bootstrap) of the
    challenger's minus the champion's per-match log-loss on the same matches, resampling kickoff dates."""
    dates = pd.to_datetime(pd.Series(kickoff_dates)).dt.normalize().to_numpy()
    return paired_block_bootstrap(log_losses(y, challenger_p) - log_losses(y, champion_p), dates)


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
    elo_only_logloss: float | None = None,
    tolerance: float = 0.002,
    max_ece: float = 0.05,
    tracking_uri: str,
    training_reason: str | None = None,
    champion_family: str = DEFAULT_FAMILY,
) -> GateDecision:
    """Score challenger and its family's current champion on the same recent window and promote only if the challenger

    1. is not worse than the champion by ``tolerance`` or more in log-loss *with 95% confidence*: the upper bound
       of the paired bootstrap interval of (challenger - champion) per-match log-loss, resampling the window's
       matchdays (:func:`log_loss_interval`), is below ``tolerance`` (skipped without a champion, so the first
       passing challenger becomes champion),
    2. is at least as good as the logistic-regression baseline (``training.baseline_log_loss`` on this
       window; a challenger that is that baseline ties and passes),
    3. is at least as good as the Elo-only model (``training.elo_only_log_loss``; skipped when None: no ratings),
       so no champion is worse than the simplest model, and
    4. has class-wise ECE below ``max_ece`` (10 bins; ECE's sampling noise is about 0.03 at n = 300, so
       the window should hold a season of several divisions).

    ``eval_frame`` must be later than every model's training window. The decision goes to the challenger's
    tags and description, and a promotion is made and recorded through :func:`promote`; ``training_reason`` (why
    the training ran, e.g. ``automatic: new season: ...``) goes with it into the audit trail and the champion's
    reason. The challenger's family is its version's ``family`` tag; its champion is the version of that family
    holding the family's champion alias (``champion`` when it is ``champion_family``, the configured one; else
    ``champion-<family>``), and a promotion moves that alias.
    """
    client = registry_client(tracking_uri)
    challenger_version = str(challenger_version)
    family = version_family(client, name, challenger_version)
    champion_alias, _ = family_aliases(family, champion_family)
    champion = alias_version(client, name, champion_alias)
    if champion == challenger_version:
        raise ValueError(f"{name} v{challenger_version} is already {champion_alias}")
    if champion is not None and version_family(client, name, champion) != family:
        champion = None   # the configured family changed: another family's champion is no measure for this one
    y = encode_outcomes(eval_frame["result"])
    p = _probabilities(name, challenger_version, eval_frame, features)
    challenger_ll = float(log_losses(y, p).mean())
    ece = expected_calibration_error(y, p).ece
    champion_ll = interval = None
    if champion is not None:
        champion_p = _probabilities(name, champion, eval_frame, None)
        champion_ll = float(log_losses(y, champion_p).mean())
        interval = log_loss_interval(y, p, champion_p, eval_frame["match_date"])

    passed, failed = [], []

    def check(ok: bool, text: str) -> None:
        (passed if ok else failed).append(text)

    if champion_ll is None:
        passed.append(f"no {family} champion yet: the first {family} challenger that passes becomes {champion_alias}")
    else:
        ok = interval.hi < tolerance
        check(ok, f"log-loss {challenger_ll:.5f} vs champion v{champion} {champion_ll:.5f}: difference "
                  f"{interval.estimate:+.5f}, {interval.level:.0%} bootstrap interval [{interval.lo:+.5f}, "
                  f"{interval.hi:+.5f}] over {interval.n_blocks} {interval.block} blocks; upper bound "
                  f"{'<' if ok else '>='} tolerance {tolerance}")
    ok = challenger_ll <= baseline_logloss
    check(ok, f"log-loss {challenger_ll:.5f} {'<=' if ok else '>'} logistic-regression baseline "
              f"{baseline_logloss:.5f}")
    if elo_only_logloss is not None:
        ok = challenger_ll <= elo_only_logloss
        check(ok, f"log-loss {challenger_ll:.5f} {'<=' if ok else '>'} Elo-only model {elo_only_logloss:.5f}")
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
        elo_only_log_loss=None if elo_only_logloss is None else float(elo_only_logloss), interval=interval,
        family=family, champion_alias=champion_alias,
    )
    tags = decision.tags()
    for key, value in {**tags, "gate.decided_at": utc_now()}.items():
        client.set_model_version_tag(name, challenger_version, key, value)
    client.update_model_version(name, challenger_version, description=decision.describe())
    _log_to_run(client, name, challenger_version, decision)
    append_audit(client, name, f"gate v{challenger_version}: {tags['gate.decision']}"
                         + ("" if interval is None else f"; log-loss - champion v{champion}: {interval}")
                         + ("" if decision.promoted else f" ({tags['gate.failed']})")
                         + (f"; trained because {training_reason}" if training_reason else ""))
    if decision.promoted:
        promote(name, challenger_version, (f"{training_reason}; " if training_reason else "")
                + f"passed the promotion gate on {decision.window}: " + "; ".join(decision.passed),
                tracking_uri=tracking_uri, alias=champion_alias)
    return decision


def _log_to_run(client, name: str, version: str, decision: GateDecision) -> None:
    """The gate's numbers on the version's MLflow run: metrics ``gate.*`` and the interval in words (tag
    ``gate.ci``); written before any promotion, so a service loading the new champion reads them."""
    mv = client.get_model_version(name, version)
    run_id = (mv.tags or {}).get("mlflow_run_id") or mv.run_id
    if not run_id:
        return
    timestamp = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
    client.log_batch(run_id, metrics=[Metric(key, value, timestamp, 0) for key, value in decision.run_metrics().items()],
                     tags=[RunTag("gate.decision", decision.tags()["gate.decision"]), RunTag("gate.version", version),
                           RunTag("gate.ci", "" if decision.interval is None else str(decision.interval))])


# the simpler models a chosen candidate falls back to, simplest first (a tie goes to the simpler): (short, long) names
FALLBACKS = {ELO_ONLY_MODEL: ("Elo-only", "Elo-only model"), BASELINE_MODEL: ("baseline", "logistic-regression baseline")}


@dataclass(frozen=True)
class GateOutcome:
    """Where one training run ended in the registry: the last gate decision and, when a simpler model (the
    logistic-regression baseline or the Elo-only model) beat the chosen candidate, the candidate's rejection (the
    simpler model was gated in its place)."""

    decision: GateDecision  # the candidate's, or the fallback's when there was one
    rejected: GateDecision | None = None  # the candidate the fallback replaced (None: no fallback)
    fallback_model: str | None = None  # BASELINE_MODEL or ELO_ONLY_MODEL when there was a fallback

    @property
    def version(self) -> str:
        return self.decision.challenger_version

    def describe(self) -> str:
        if self.rejected is None:
            return self.decision.describe()
        short, long = FALLBACKS[self.fallback_model]
        verdict = f"PROMOTED to {self.decision.champion_alias}" if self.decision.promoted else "REJECTED"
        return "\n".join([(f"{short[0].upper()}{short[1:]} fallback v{self.version} {verdict}: the {long} beat the "
                          f"chosen candidate v{self.rejected.challenger_version}, so it was registered and gated "
                          f"instead."), self.rejected.describe(), self.decision.describe()])


def _fallback(decision: GateDecision, model_name: str, trainers: Mapping[str, Callable[[], LoggedRun] | None]
              ) -> str | None:
    """The simpler model that beat the rejected candidate by the most on the gate window (a tie: the simpler), or
    None when none did (the candidate was rejected for another reason, which a simpler model would not cure)."""
    scores = {ELO_ONLY_MODEL: decision.elo_only_log_loss, BASELINE_MODEL: decision.baseline_log_loss}
    better = {model: score for model, score in scores.items()
              if model != model_name and trainers.get(model) is not None and score is not None
              and score < decision.challenger_log_loss}
    return min(better, key=better.__getitem__) if better and not decision.promoted else None


def gate_with_baseline_fallback(
    name: str,
    candidate: LoggedRun,
    model_name: str,
    eval_frame: pd.DataFrame,
    features: Sequence[str],
    *,
    baseline_logloss: float,
    train_baseline: Callable[[], LoggedRun],
    elo_only_logloss: float | None = None,
    train_elo_only: Callable[[], LoggedRun] | None = None,
    tags: Mapping[str, str] | None = None,
    tolerance: float = 0.002,
    max_ece: float = 0.05,
    tracking_uri: str,
    training_reason: str | None = None,
    family: str = DEFAULT_FAMILY,
    champion_family: str = DEFAULT_FAMILY,
) -> GateOutcome:
    """Register the logged ``candidate`` (a ``model_name`` model) as challenger and gate it (:func:`promotion_gate`).

    If the gate rejects it and a simpler model beat it on the window (the logistic-regression baseline, or the
    Elo-only model when ``elo_only_logloss`` is given; the one with the lower log-loss, a tie going to the Elo-only
    model), that model is the better one on the latest data: ``train_baseline`` or ``train_elo_only`` trains and
    logs it as the candidate was (same window, walk-forward validation and MLflow run), and it is registered as a
    further version and gated the same way, so it still has to hold up against the champion and be calibrated.
    Both versions get ``tags`` and their own ``mlflow_run_id``; ``gate.fallback_version`` and ``gate.fallback_of``
    link them, ``gate.fallback_model`` names the fallback's model. Every version is registered as ``family`` (the
    candidate's; the fallbacks are trained on its features) and gated within it; ``champion_family`` is the configured
    family, which holds ``champion`` (see :func:`promotion_gate`).
    """
    client = registry_client(tracking_uri)

    def register_and_gate(run: LoggedRun, extra_tags: Mapping[str, str]) -> GateDecision:
        version = register_challenger(run.model_uri, name, {**(tags or {}), "mlflow_run_id": run.run_id, **extra_tags},
                                      tracking_uri=tracking_uri, family=family, champion_family=champion_family)
        return promotion_gate(name, version, eval_frame, features, baseline_logloss=baseline_logloss,
                              elo_only_logloss=elo_only_logloss, tolerance=tolerance, max_ece=max_ece,
                              tracking_uri=tracking_uri, training_reason=training_reason,
                              champion_family=champion_family)

    trainers = {BASELINE_MODEL: train_baseline, ELO_ONLY_MODEL: train_elo_only}
    first = register_and_gate(candidate, {})
    fallback_model = _fallback(first, model_name, trainers)
    if fallback_model is None:
        return GateOutcome(first)
    short, long = FALLBACKS[fallback_model]
    rejected = first.challenger_version
    append_audit(client, name, f"{short} fallback: v{rejected} ({model_name}) lost to the {long}; "
                         f"registering the {long}")
    decision = register_and_gate(trainers[fallback_model](),
                                 {"gate.fallback_of": rejected, "gate.fallback_model": fallback_model})
    fallback = decision.challenger_version
    client.set_model_version_tag(name, rejected, "gate.fallback_version", fallback)
    client.update_model_version(name, rejected, description=f"{first.describe()}\nThe {long} beat it on this window "
                                f"and was registered instead as v{fallback}.")
    client.update_model_version(name, fallback, description=f"Registered as the {long} fallback of v{rejected}, "
                                f"which it beat on this window.\n{decision.describe()}")
    return GateOutcome(decision, rejected=first, fallback_model=fallback_model)
