"""Forecast-quality benchmark: the platform's own ingestion, features and training code on the matches before a
cutoff date; every match on or after it is predicted from its features as of kickoff and scored against the
bookmaker market.

    python bench/quality.py --root ../shared/data/football-data --cutoff 2018-07-01 [--divisions E0,D1,SP1,I1,F1]

Last line: ``n=<matches> model_logloss=<x> market_logloss=<y> gap=<x-y> model_rps=<a> market_rps=<b> ece=<c>``
(market figures over the matches that have odds; the model's over the same matches). Lines before it give the
per-division figures, the candidates' walk-forward scores and the time of each stage.
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
        from time2bet.ml.metrics import encode_outcomes, evaluate
        from time2bet.ml.training import train_candidate
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

        frame = Warehouse.from_url(settings.warehouse_url).read_sql(PLAYED_MATCHES_SQL)
        frame["match_date"] = pd.to_datetime(frame["match_date"])
        train, test = frame[frame["match_date"] < cutoff], frame[frame["match_date"] >= cutoff]

        t0 = time.perf_counter()
        result = train_candidate(train, list(MODEL_FEATURES), n_folds=3)
        t_train = time.perf_counter() - t0
        print(f"chosen by walk-forward CV inside the training window: {result.model_name}; "
              f"pooled log-loss per candidate {result.candidate_log_loss}")

        p_model = np.asarray(result.model.predict_proba(model_input(test, list(MODEL_FEATURES))), dtype=float)
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
        print(f"timings: ingest {t_ingest:.1f}s, features rebuild (GE + dbt + ratings) {t_features:.1f}s, "
              f"training (CV of 2 candidates + fit) {t_train:.1f}s; features+training {t_features + t_train:.1f}s")
        total = table[table["division"] == "ALL"].iloc[0]
        print(f"n={int(total['n'])} model_logloss={total['model_logloss']:.4f} market_logloss={total['market_logloss']:.4f} "
              f"gap={total['gap']:.4f} model_rps={total['model_rps']:.4f} market_rps={total['market_rps']:.4f} "
              f"ece={total['ece']:.4f}")
    finally:
        mirror.terminate()
        mirror.wait(timeout=10)


if __name__ == "__main__":
    main()
