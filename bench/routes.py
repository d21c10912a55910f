"""Where a per-division model beats the pooled one: the walk-forward table a route ships on (issue 17).

    python bench/routes.py                       # the platform of TIME2BET_HOME (its fct_match_features mart)
    python bench/routes.py --sample /tmp/routes  # builds the sample platform there first (a few minutes)

Per division, inside the training window (the latest season held out, as for training and the gate), the
division's own model and the pooled model are validated walk-forward on the same folds, and scored on the same
matches of that division; a route ships only where the division's model has the lower log-loss
(``time2bet.ml.routes.compare_routes``). Then configure it: TIME2BET_ROUTES="E0=match_outcome_e0".
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=Path, help="build the sample platform under this folder and use it")
    parser.add_argument("--model", default="logreg", help="candidate compared (the same for both)")
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args()

    if args.sample is not None:
        from time2bet.cli.sample_platform import build_platform, env_for

        env = env_for(args.sample) if (args.sample / "home" / "warehouse.duckdb").exists() \
            else build_platform(args.sample)
        os.environ.update(env)

    from time2bet.ml.routes import compare_routes
    from time2bet.settings import Settings
    from time2bet.warehouse.client import Warehouse
    from time2bet_assets.defs.ml.assets import PLAYED_MATCHES_SQL

    settings = Settings.from_env()
    frame = Warehouse.from_url(settings.warehouse_url).read_sql(PLAYED_MATCHES_SQL)
    started = time.perf_counter()
    table = compare_routes(frame, model_name=args.model, n_folds=args.folds,
                           hyperparameters=settings.hyperparameters)
    with pd.option_context("display.width", 160, "display.float_format", "{:.5f}".format):
        print(table.to_string(index=False))
    shipped = table.loc[table["ships"], "division"].tolist()
    print(f"routes that ship: {shipped or 'none'} ({time.perf_counter() - started:.1f} s, {len(frame)} matches, "
          f"{args.model}, {args.folds} folds)")


if __name__ == "__main__":
    main()
