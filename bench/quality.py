"""Forecast-quality benchmark: the platform's own ingestion, features and training code on the matches before a
cutoff date; every match on or after it is predicted from its features as of kickoff and scored against the
bookmaker market.

    python bench/quality.py --root ../shared/data/football-data --cutoff 2018-07-01 [--divisions E0,D1,SP1,I1,F1]
        [--family independent|market-aware]

Last line: ``n=<matches> model_logloss=<x> market_logloss=<y> gap=<x-y> model_rps=<a> market_rps=<b> ece=<c>
family=<f> gap_ci=<lo>:<hi> ou_gap=<z>`` (market figures over the matches that have odds; the model's over the
same matches; gap_ci: 95% bootstrap interval of the gap, 2,000 resamples of matchdays, fixed seed; ou_gap: the
goals model's over/under 2.5 log-loss, its P(over) recalibrated walk-forward by season, minus the de-margined
market's). Lines before it give the per-division figures, the candidates' walk-forward scores, the goals model's
markets (over/under with ou_raw_gap before the recalibration, Asian handicap) and the time of each stage.

Every choice (candidate, whether the goals model's outputs are inputs of the others) is made by walk-forward
validation inside the training window; the matches after the cutoff are only scored.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import start_mirror  # (same folder)

BIG_FIVE = "E0,D1,SP1,I1,F1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--cutoff", required=True, help="YYYY-MM-DD: train before, predict on or after")
    parser.add_argument("--divisions", default=BIG_FIVE)
    parser.add_argument("--work", type=Path, default=None, help="TIME2BET_HOME for the run (default: a temp dir)")
    parser.add_argument("--family", default="independent", choices=("independent", "market-aware"))
    args = parser.parse_args()
    divisions = [d.strip() for d in args.divisions.split(",") if d.strip()]
    cutoff = pd.Timestamp(args.cutoff)

    work = args.work or Path(tempfile.mkdtemp(prefix="time2bet-quality-"))
    os.environ.update({"TIME2BET_HOME": str(work), "DAGSTER_HOME": str(work / "dagster"),
                       "TIME2BET_DIVISIONS": ",".join(divisions)})
    mirror, url = start_mirror(args.root.resolve())
    os.environ["TIME2BET_SOURCE_URL"] = url
    try:
        import dagster as dg

        from time2bet.cli.main import QUIET_CONSOLE, prepare_dagster_home
        from time2bet.ingestion.discovery import discover_season_files
        from time2bet.ml.bootstrap import paired_block_bootstrap
        from time2bet.ml.families import family_features, with_family_columns
        from time2bet.ml.markets import evaluate_markets, market_asian_handicap, market_over_under
        from time2bet.ml.metrics import encode_outcomes, evaluate
        from time2bet.ml.training import CANDIDATES, GOALS_CANDIDATE, train_candidate
        from time2bet.serving_contract import model_input
        from time2bet.settings import Settings
        from time2bet.warehouse.client import Warehouse
        from time2bet_assets.definitions import build_definitions
        from time2bet_assets.defs.ingestion.backfill import run_season_file_backfill
        from time2bet_assets.defs.ml.assets import MODEL_FEATURES, PLAYED_MATCHES_SQL

        settings = Settings.from_env()
        prepare_dagster_home(settings)
        defs = build_definitions(settings)
        instance = dg.DagsterInstance.get()

        t0 = time.perf_counter()
        links = [l for l in discover_season_files(url) if l.division in divisions]
        ingest = run_season_file_backfill(defs, instance, divisions, sorted({l.season for l in links}),
                                          run_config=QUIET_CONSOLE)
        assert all(r.success for r in ingest), "ingestion failed"
        t_ingest = time.perf_counter() - t0

        t0 = time.perf_counter()
        features_run = defs.resolve_job_def("build_features").execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET_CONSOLE)
        assert features_run.success, "build_features failed (Great Expectations, dbt or ratings)"
        t_features = time.perf_counter() - t0

        warehouse = Warehouse.from_url(settings.warehouse_url)
        frame = warehouse.read_sql(PLAYED_MATCHES_SQL)
        frame["match_date"] = pd.to_datetime(frame["match_date"])
        t0 = time.perf_counter()
        frame = with_family_columns(frame, args.family)
        t_goals = time.perf_counter() - t0
        print(f"goals model walk-forward (+ {args.family} columns): {t_goals:.1f}s", flush=True)
        train, test = frame[frame["match_date"] < cutoff], frame[frame["match_date"] >= cutoff]

        t0 = time.perf_counter()
        # the goals model's outputs as inputs of the others (stacking) or not: chosen in-window like a candidate
        # (the goals candidate reads the goals columns, so it runs with the stacked set)
        results = {
            stacked: train_candidate(train, family_features(MODEL_FEATURES, args.family, goals=stacked), n_folds=3,
                                     candidates=(*CANDIDATES, GOALS_CANDIDATE) if stacked else CANDIDATES,
                                     family=args.family)
            for stacked in (False, True)
        }
        t_train = time.perf_counter() - t0
        for stacked, res in results.items():
            print(f"walk-forward in the training window, goals outputs as inputs={stacked}: "
                  f"pooled log-loss per candidate {res.candidate_log_loss}")
        result = min(results.values(), key=lambda r: r.candidate_log_loss[r.model_name])
        print(f"chosen: {result.model_name} on {len(result.features)} features (family {args.family})")

        p_model = np.asarray(result.model.predict_proba(model_input(test, list(result.features))), dtype=float)
        market = test[["market_prob_home", "market_prob_draw", "market_prob_away"]].to_numpy(dtype=float)
        has_odds = ~np.isnan(market).any(axis=1)
        y = encode_outcomes(test["result"])
        rows = []
        for division in divisions + ["ALL"]:
            sel = has_odds & ((test["division"] == division).to_numpy() if division != "ALL" else True)
            if not sel.any():
                continue
            m, k = evaluate(y[sel], p_model[sel]), evaluate(y[sel], market[sel])
            rows.append({"division": division, "n": int(sel.sum()), "model_logloss": m["log_loss"],
                         "market_logloss": k["log_loss"], "gap": m["log_loss"] - k["log_loss"],
                         "model_rps": m["rps"], "market_rps": k["rps"], "ece": m["ece"]})
        table = pd.DataFrame(rows)
        print(table.round(4).to_string(index=False))
        print(f"matches after cutoff: {len(test)}, with odds: {int(has_odds.sum())}; train matches: {len(train)}")
        def per_match(p: np.ndarray) -> np.ndarray:
            return -np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1.0))[has_odds]

        gap = per_match(p_model) - per_match(np.nan_to_num(market, nan=1 / 3))
        interval = paired_block_bootstrap(gap, test["match_date"].to_numpy()[has_odds])
        print(f"1X2 gap to the market: {interval}")

        raw = warehouse.read_sql(
            "SELECT s.match_id, r.* FROM analytics.stg_matches s JOIN raw.matches r ON r.division = s.division "
            "AND r.season = s.season AND r.home_team = s.home_team AND r.away_team = s.away_team "
            f"AND CAST(r.match_date AS DATE) = s.match_date WHERE s.match_date >= DATE '{cutoff.date()}'")
        raw = raw.drop_duplicates("match_id").set_index("match_id")
        prices = pd.concat([market_over_under(raw), market_asian_handicap(raw["extra"])], axis=1)
        scored = test.join(prices, on="match_id")
        markets = evaluate_markets(scored)
        print(f"goals model markets after the cutoff (sources: {scored['market_over_under_source'].value_counts().to_dict()}"
              f", AH {scored['market_ah_source'].value_counts().to_dict()}): "
              + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in markets.items()))
        print(f"timings: ingest {t_ingest:.1f}s, features rebuild (GE + dbt + ratings) {t_features:.1f}s, "
              f"goals model walk-forward (+ family columns) {t_goals:.1f}s, "
              f"training (CV of 3 candidates x 2 feature sets + fits) {t_train:.1f}s")
        total = table[table["division"] == "ALL"].iloc[0]
        print(f"n={int(total['n'])} model_logloss={total['model_logloss']:.4f} market_logloss={total['market_logloss']:.4f} "
              f"gap={total['gap']:.4f} model_rps={total['model_rps']:.4f} market_rps={total['market_rps']:.4f} "
              f"ece={total['ece']:.4f} family={args.family} gap_ci={interval.lo:.4f}:{interval.hi:.4f} "
              f"ou_gap={markets['ou_gap']:.4f}")
    finally:
        mirror.terminate()
        mirror.wait(timeout=10)


if __name__ == "__main__":
    main()
