"""Live quality: what the model predicted before kickoff, scored once the matches are played.

The input is the prediction ledger (rows as :func:`time2bet.ledger.read_records` gives them) and the played matches
(``analytics.stg_matches``: match_id, division, match_date, teams, result, goals and the market's reference odds
``market_odds_*``). :func:`join_predictions` keeps, for every played match and every model version and A/B variant
that predicted it, the **last prediction made before kickoff**; :func:`quality_table` scores them per version,
variant and division (and over every division, ``ALL``) with :mod:`time2bet.ml.metrics`, beside

- the market: the reference odds de-margined proportionally (:func:`time2bet.ml.metrics.demargin`, as the feature
  mart does), on the matches that have odds, with the model's log-loss on exactly those matches;
- the Elo-only reference of the version's own training run (:mod:`time2bet.monitoring.versions`), on the matches
  whose pre-match ratings are in ``fct_match_features``, with the model's log-loss on exactly those matches.

**Before kickoff** is judged on the record's ``as_of`` (the platform's clock), never on ``created_at``. The ledger
and the source know a kickoff by its date only (times are local, missing in older seasons and in fixtures), and
any hour of the match day can be after kickoff somewhere, so a date-only kickoff counts as the start of that day
in UTC: a prediction is scored when ``as_of <= match day 00:00 UTC``. Predictions made later on the match day are
left out (the batch predictions are made days ahead); that is the price of never scoring one made after kickoff. A
replay's clock (``time2bet simulate``: the replay date at midnight, UTC) predicts that day's matches in time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from time2bet.ledger import match_key
from time2bet.ml.metrics import accuracy, brier, demargin, encode_outcomes, evaluate, log_loss, rps
from time2bet.ml.training import _FORM_PROXY_INPUTS, ELO_REFERENCE, reference_probabilities

PROBABILITIES = ("p_home", "p_draw", "p_away")
MARKET = ("market_p_home", "market_p_draw", "market_p_away")
ELO = ("elo_p_home", "elo_p_draw", "elo_p_away")
ODDS = ("market_odds_home", "market_odds_draw", "market_odds_away")
MODEL_KEY = ("model_name", "model_version", "variant")
PREDICTION_KEY = ("match_id", *MODEL_KEY)
ALL_DIVISIONS = "ALL"
REFERENCE_INPUTS = (ELO_REFERENCE, *_FORM_PROXY_INPUTS)   # what an Elo-only reference reads (or its form proxy)
_EPS = 1e-15   # the clip of time2bet.ml.metrics.log_loss


def kickoff_cutoff(match_date) -> pd.Series:
    """The latest instant a prediction of a match on ``match_date`` counts for: 00:00 UTC of that day."""
    return pd.to_datetime(pd.Series(match_date)).dt.normalize().dt.tz_localize("UTC")


@dataclass(frozen=True)
class Joined:
    """Ledger predictions of played matches, one row per match, model version and variant."""

    frame: pd.DataFrame     # PREDICTION_KEY, the prediction (as_of, p_*), the match (division, date, result, y,
                            # goals) and the market's probabilities (NaN without odds)
    predictions: int        # ledger rows (predictions) given
    of_played: int          # ... of a played match among those given
    after_kickoff: int      # ... of which made after the start of the match day (kickoff, for all we know)
    superseded: int         # ... made before kickoff but followed by a later one of the same version and variant


def _played_keys(matches: pd.DataFrame) -> pd.Series:
    days = pd.to_datetime(matches["match_date"]).dt.date
    return pd.Series([match_key(d, day, h, a) for d, day, h, a in
                      zip(matches["division"], days, matches["home_team"], matches["away_team"])],
                     index=matches.index)


def resolve_match_ids(ledger: pd.DataFrame, matches: pd.DataFrame) -> pd.DataFrame:
    """``ledger`` with each row's ``match_id`` one of ``matches``' (match_id, division, match_date, home_team,
    away_team): its own when it is one, else the one its ``match_key`` names, else None."""
    by_key = dict(zip(_played_keys(matches), matches["match_id"]))
    rows = ledger.copy()
    ids = rows["match_id"].where(rows["match_id"].isin(set(matches["match_id"])))
    rows["match_id"] = ids.fillna(rows["match_key"].map(by_key)).astype(object)
    rows["match_id"] = rows["match_id"].where(rows["match_id"].notna(), None)
    return rows


def market_probabilities(matches: pd.DataFrame) -> np.ndarray:
    """(n, 3) de-margined market probabilities from the reference odds; NaN rows without three prices > 1."""
    out = np.full((len(matches), 3), np.nan)
    if not set(ODDS) <= set(matches.columns) or not len(matches):
        return out
    odds = matches[list(ODDS)].to_numpy(dtype="float64")
    complete = np.isfinite(odds).all(axis=1) & (odds > 1).all(axis=1)
    if complete.any():
        out[complete] = demargin(*odds[complete].T)
    return out


def join_predictions(ledger: pd.DataFrame, matches: pd.DataFrame) -> Joined:
    """The last prediction before kickoff per played match, model version and variant (see the module docstring).

    A ledger row names its match by ``match_id`` (the warehouse's id) and by ``match_key``; a row whose id is
    missing or not a played match's is matched by its key (division, date and team names)."""
    played = matches.drop_duplicates("match_id").reset_index(drop=True)
    rows = resolve_match_ids(ledger, played)
    rows = rows[rows["match_id"].notna()]
    rows["model_version"] = rows["model_version"].astype(str)
    keep = [c for c in ("match_id", "division", "season", "match_date", "home_team", "away_team", "result",
                        "home_goals", "away_goals", *ODDS) if c in played.columns]
    frame = rows.drop(columns=[c for c in ("division", "home_team", "away_team") if c in rows.columns]).merge(
        played[keep], on="match_id", how="inner", validate="many_to_one")
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
    before = (frame["as_of"] <= kickoff_cutoff(frame["match_date"])).to_numpy()
    scored = frame[before]
    order = [c for c in ("as_of", "created_at", "writer", "seq", "row") if c in scored.columns]
    scored = scored.sort_values(order, kind="stable").drop_duplicates(list(PREDICTION_KEY), keep="last")
    scored = scored.sort_values(["match_date", "match_id", *MODEL_KEY], kind="stable").reset_index(drop=True)
    scored["y"] = encode_outcomes(scored["result"]) if len(scored) else np.zeros(0, dtype=np.int64)
    scored[list(MARKET)] = market_probabilities(scored)
    return Joined(scored, predictions=len(ledger), of_played=len(frame), after_kickoff=int((~before).sum()),
                  superseded=int(before.sum()) - len(scored))


def add_reference(frame: pd.DataFrame, inputs: pd.DataFrame,
                  references: Mapping[tuple[str, str], Mapping | None]) -> pd.DataFrame:
    """``frame`` with the Elo-only reference's probabilities (``elo_p_*``): each row scored by the reference of its
    (model_name, model_version) on its match's pre-match inputs (``inputs``: match_id and the reference's input
    columns, from fct_match_features). NaN where the version has no reference or the match has no inputs yet."""
    out = frame.copy()
    out[list(ELO)] = np.nan
    if not len(out):
        return out
    by_id = inputs.drop_duplicates("match_id").set_index("match_id")
    for (name, version), rows in out.groupby(["model_name", "model_version"], sort=False):
        parameters = references.get((name, str(version)))
        known = rows[rows["match_id"].isin(by_id.index)]
        if parameters is None or not len(known):
            continue
        x = by_id.loc[known["match_id"]].reset_index()
        out.loc[known.index, list(ELO)] = reference_probabilities(parameters, x)
    return out


# --- scores -----------------------------------------------------------------------------------------------------

def _probabilities(frame: pd.DataFrame, columns: Iterable[str]) -> np.ndarray:
    return frame[list(columns)].to_numpy(dtype="float64")


def match_log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-match log-loss (mean of it = time2bet.ml.metrics.log_loss)."""
    return -np.log(np.clip(p[np.arange(len(y)), y], _EPS, 1.0))


def scores(frame: pd.DataFrame) -> dict[str, float]:
    """Every figure of one group of joined rows (its schema is store.LIVE_QUALITY's score columns)."""
    y, p = frame["y"].to_numpy(dtype=np.int64), _probabilities(frame, PROBABILITIES)
    out: dict[str, float] = {"n": len(y), **evaluate(y, p)}
    for source, columns in (("market", MARKET), ("elo", ELO)):
        q = _probabilities(frame, columns) if set(columns) <= set(frame.columns) else np.full((len(y), 3), np.nan)
        on = np.isfinite(q).all(axis=1)
        count = "n_with_odds" if source == "market" else "n_elo"
        out[count] = int(on.sum())
        if on.any():
            out[f"model_log_loss_on_{'odds' if source == 'market' else 'elo'}"] = log_loss(y[on], p[on])
            out |= {f"{source}_log_loss": log_loss(y[on], q[on]), f"{source}_rps": rps(y[on], q[on]),
                    f"{source}_brier": brier(y[on], q[on]), f"{source}_accuracy": accuracy(y[on], q[on])}
        else:
            out[f"model_log_loss_on_{'odds' if source == 'market' else 'elo'}"] = math.nan
            out |= {f"{source}_{k}": math.nan for k in ("log_loss", "rps", "brier", "accuracy")}
    out["first_kickoff"] = pd.to_datetime(frame["match_date"]).min()
    out["last_kickoff"] = pd.to_datetime(frame["match_date"]).max()
    return out


def quality_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Scores per model, version, variant and division, and per model, version and variant over every division
    (division ``ALL``); no rows for no matches."""
    rows = []
    for key, group in frame.groupby([*MODEL_KEY, "division"], sort=True):
        rows.append({**dict(zip([*MODEL_KEY, "division"], key)), **scores(group)})
    for key, group in frame.groupby(list(MODEL_KEY), sort=True):
        rows.append({**dict(zip(MODEL_KEY, key)), "division": ALL_DIVISIONS, **scores(group)})
    return pd.DataFrame(rows)


# --- the checks' verdicts ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    model_name: str
    model_version: str
    variant: str
    n: int
    live_log_loss: float
    bar: float | None         # what the live log-loss is held against
    passed: bool
    note: str

    def row(self) -> dict:
        return {"model": self.model_name, "version": self.model_version, "variant": self.variant, "n": self.n,
                "live_log_loss": round(self.live_log_loss, 5) if np.isfinite(self.live_log_loss) else None,
                "bar": None if self.bar is None else round(self.bar, 5), "passed": self.passed, "note": self.note}


def pooled(rows: pd.DataFrame, score: str, weight: str) -> tuple[float, int]:
    """A score of :func:`quality_table`'s rows (say several kickoff weeks) combined over them: their mean weighted by
    their match counts ``weight`` (``n``, ``n_with_odds``, ``n_elo``), rows without the score left out; (score or
    NaN, matches)."""
    w = rows[weight].fillna(0).astype(float).where(rows[score].notna(), 0) if len(rows) else pd.Series(dtype=float)
    total = float(w.sum())
    return (float((rows[score].fillna(0) * w).sum() / total) if total else float("nan")), int(total)


def too_few(n: int, min_matches: int) -> str:
    se = 0.35 / math.sqrt(max(n, 1))
    return (f"not judged: {n} matches < {min_matches} (the mean log-loss of n matches varies by about 0.35/sqrt(n) "
            f"= {se:.3f} here, more than the differences this check looks for)")


def check_against_estimate(overall: pd.DataFrame, estimates: Mapping[tuple[str, str], float | None], *,
                           margin: float, min_matches: int) -> list[Verdict]:
    """Per version and variant (rows of :func:`quality_table` with division ALL): passed unless its live
    log-loss exceeds the version's promotion-time estimate plus ``margin`` on at least ``min_matches`` matches."""
    verdicts = []
    for row in overall.itertuples(index=False):
        estimate = estimates.get((row.model_name, str(row.model_version)))
        live = float(row.log_loss)
        if int(row.n) < min_matches:
            verdicts.append(Verdict(row.model_name, str(row.model_version), row.variant, int(row.n), live,
                                    estimate, True, too_few(int(row.n), min_matches)))
        elif estimate is None:
            verdicts.append(Verdict(row.model_name, str(row.model_version), row.variant, int(row.n), live, None,
                                    True, "not judged: the version has no promotion-time estimate (no gate.* tags)"))
        else:
            ok = live <= estimate + margin
            verdicts.append(Verdict(row.model_name, str(row.model_version), row.variant, int(row.n), live,
                                    estimate + margin, ok,
                                    f"live {live:.4f} {'<=' if ok else '>'} promotion-time estimate {estimate:.4f} "
                                    f"+ margin {margin}"))
    return verdicts


def check_against_reference(overall: pd.DataFrame, *, min_matches: int) -> list[Verdict]:
    """Per version and variant: passed unless the model's live log-loss is worse than its Elo-only reference's on
    the same matches (at least ``min_matches`` of them)."""
    verdicts = []
    for row in overall.itertuples(index=False):
        n, live, elo = int(row.n_elo), float(row.model_log_loss_on_elo), float(row.elo_log_loss)
        key = (row.model_name, str(row.model_version), row.variant)
        if n < min_matches:
            note = (too_few(n, min_matches) if n or not np.isnan(elo) else
                    "not judged: no Elo-only reference for this version, or no pre-match ratings of its matches yet")
            verdicts.append(Verdict(*key, n, live, None if np.isnan(elo) else elo, True, note))
        else:
            ok = live <= elo
            verdicts.append(Verdict(*key, n, live, elo, ok, f"live {live:.4f} {'<=' if ok else '>'} Elo-only "
                                                            f"reference {elo:.4f} on the same {n} matches"))
    return verdicts


# --- the picture ------------------------------------------------------------------------------------------------

def _cumulative_by_day(dates: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kickoff days, mean log-loss of every match up to the end of that day)."""
    days, first = np.unique(dates, return_index=True)
    ends = np.r_[first[1:], len(dates)]
    return days, np.cumsum(losses)[ends - 1] / ends


def cumulative_figure(frame: pd.DataFrame, title: str = "") -> Figure:
    """Cumulative mean log-loss over the matches in kickoff order (a point per kickoff day), per version and variant:
    the model (solid), the market on the matches with odds (dashed) and the Elo-only reference (dotted)."""
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    for (_name, version, variant), rows in frame.groupby(list(MODEL_KEY), sort=True):
        rows = rows.sort_values(["match_date", "match_id"], kind="stable")
        dates = pd.to_datetime(rows["match_date"]).dt.normalize().to_numpy()
        y = rows["y"].to_numpy(dtype=np.int64)
        label = f"v{version} {variant}"
        line, = ax.plot(*_cumulative_by_day(dates, match_log_loss(y, _probabilities(rows, PROBABILITIES))),
                        marker="o", label=f"{label} model")
        for columns, style, source in ((MARKET, "--", "market"), (ELO, ":", "Elo-only")):
            if not set(columns) <= set(rows.columns):
                continue
            q = _probabilities(rows, columns)
            on = np.isfinite(q).all(axis=1)
            if on.any():
                ax.plot(*_cumulative_by_day(dates[on], match_log_loss(y[on], q[on])), ls=style, marker=".",
                        color=line.get_color(), label=f"{label} {source}")
    ax.set(xlabel="kickoff", ylabel="cumulative mean log-loss", title=title or "live log-loss")
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    if len(frame):
        ax.legend(fontsize="small")
    fig.autofmt_xdate()
    return fig
