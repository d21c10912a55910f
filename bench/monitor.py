"""Monitoring benchmark: a season replayed through the whole loop (`time2bet simulate`), then the ledger's price.

    python bench/monitor.py --root ../shared/data/football-data --from 2019-08-01 --to 2020-07-31
    python bench/monitor.py --root ... --from ... --to ... --divisions E0,D1 --step 7d --home /tmp/replay

1. ``time2bet simulate`` (the real command, in a child process) on the big five by default, weekly steps, on a new
   platform home: the first ingestion and training (everything published before ``--from``) and every step are
   counted in ``sim_s`` (the command's wall time).
2. From the replay's own warehouse: ``predicted`` (ledger rows of the champion variant made in the replay window),
   ``played`` (matches played from ``--from`` to the end of the last kickoff week that ended before ``--to``: the
   weeks the replay monitors), ``joined`` (what the live-quality asset scored: its weekly rows of
   the champion variant, per division, summed) and ``expected_joined``, counted independently in SQL: played
   matches that have a ledger prediction of the champion variant made before kickoff (``as_of`` <= the match day,
   00:00 UTC, the rule of time2bet.monitoring.live_quality), one per (match, model version). ``missing`` is
   expected minus joined: the target is 0. ``live_logloss`` and ``market_logloss`` are over the same weekly rows
   (the market's on the matches with odds, beside the model's on those: ``model_logloss_on_odds``).
3. Unless ``--no-ledger-ratio``: ``bench/serve.py --workload real --ledger-ratio --horizon-days 365`` (five
   divisions' pairs need a year of dates to give every phase bodies of its own) on the replay's final platform
   (not counted in ``sim_s``): ``ledger_ratio`` = saturation throughput of POST /predict with the ledger on over
   off, ``ledger_batch_ratio`` the same for batch rows/s, in the same run.

The last line is ``steps=<n> predicted=<n> played=<n> joined=<n> live_logloss=<x> market_logloss=<y> sim_s=<s>
ledger_ratio=<r>`` followed by ``expected_joined``, ``missing``, ``model_logloss_on_odds`` and
``ledger_batch_ratio``. The replay's home is kept (its path is printed): open its Dagster UI with
``TIME2BET_HOME=<home> time2bet ui`` or read the report CSV beside it; ``python bench/replay_steps.py <home>``
says where the time went (run and step durations by job).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BIG_FIVE = "E0,D1,SP1,I1,F1"
SIMULATE_TIMEOUT_S = 4 * 3600
SERVE_TIMEOUT_S = 1800


def replay_figures(warehouse_url: str, first: dt.date, last: dt.date, divisions: list[str]) -> dict:
    """The replay's counts and log-losses, from its warehouse (see the module's docstring)."""
    from time2bet.monitoring import store
    from time2bet.monitoring.live_quality import pooled
    from time2bet.warehouse.client import Warehouse

    wh = Warehouse.from_url(warehouse_url)
    names = ", ".join(f"'{d}'" for d in divisions)
    monitored = last - dt.timedelta(days=last.weekday())   # the replay monitors the kickoff weeks ended before it
    window = f"DATE '{first}' AND m.match_date < DATE '{monitored}'"
    predicted = wh.read_sql(f"SELECT count(*) AS n FROM {store.LEDGER_TABLE} WHERE variant = 'champion' AND "
                            f"as_of > TIMESTAMP '{first} 00:00:00' AND as_of <= TIMESTAMP '{last} 23:59:59'")
    played = wh.read_sql(f"SELECT count(*) AS n FROM analytics.stg_matches m WHERE m.division IN ({names}) "
                         f"AND m.match_date >= {window}")
    expected = wh.read_sql(
        f"SELECT count(*) AS n FROM (SELECT DISTINCT m.match_id, l.model_version FROM analytics.stg_matches m "
        f"JOIN {store.LEDGER_TABLE} l ON l.match_id = m.match_id AND l.variant = 'champion' "
        f"AND l.as_of <= CAST(m.match_date AS TIMESTAMP) WHERE m.division IN ({names}) "
        f"AND m.match_date >= {window}) AS eligible")
    weeks = wh.read_sql(f"SELECT * FROM {store.LIVE_QUALITY_TABLE} WHERE \"window\" = 'week' AND variant = "
                        f"'champion' AND division IN ({names}) AND week < DATE '{monitored}'")

    def weighted(score: str, weight: str) -> float:
        return pooled(weeks, score, weight)[0]

    return {"predicted": int(predicted["n"].iloc[0]), "played": int(played["n"].iloc[0]),
            "joined": int(weeks["n"].sum()), "expected_joined": int(expected["n"].iloc[0]),
            "live_logloss": weighted("log_loss", "n"), "market_logloss": weighted("market_log_loss", "n_with_odds"),
            "model_logloss_on_odds": weighted("model_log_loss_on_odds", "n_with_odds")}


def ledger_ratio(home: Path) -> dict:
    """bench/serve.py --workload real --ledger-ratio on the replay's platform: (ledger_ratio, ledger_batch_ratio)."""
    out = subprocess.run([sys.executable, str(REPO / "bench" / "serve.py"), "--workload", "real", "--home",
                          str(home), "--runs", "1", "--ledger-ratio", "--horizon-days", "365"], capture_output=True, text=True,
                         timeout=SERVE_TIMEOUT_S, check=False)
    sys.stdout.write("".join(f"  serve: {line}\n" for line in out.stdout.splitlines()))
    if out.returncode != 0:
        raise RuntimeError(f"bench/serve.py failed ({out.returncode}):\n{out.stderr[-3000:]}")
    last = out.stdout.strip().splitlines()[-1]
    return {k: float(re.search(rf"\b{k}=([0-9.]+)", last).group(1)) for k in ("ledger_ratio", "ledger_batch_ratio")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", required=True, help="a site in football-data.co.uk's layout")
    p.add_argument("--from", dest="first", required=True, type=dt.date.fromisoformat)
    p.add_argument("--to", dest="last", required=True, type=dt.date.fromisoformat)
    p.add_argument("--step", default="7d")
    p.add_argument("--divisions", default=BIG_FIVE, help=f"default: the big five ({BIG_FIVE})")
    p.add_argument("--home", help="the replay's platform home (default: a new temporary directory, kept)")
    p.add_argument("--no-ledger-ratio", dest="ratio", action="store_false", help="skip the ledger's price")
    p.add_argument("--figures-only", action="store_true",
                   help="no replay: the figures (and the ledger's price) of the replay already in --home (sim_s=nan)")
    args = p.parse_args(argv)

    from time2bet.cli.sample_platform import env_for_home

    home = Path(args.home or tempfile.mkdtemp(prefix="time2bet-bench-monitor-")).absolute()
    report = home.with_name(home.name + "-report.csv")
    divisions = [d.strip() for d in args.divisions.split(",") if d.strip()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIME2BET_")}   # the replay's own platform
    argv = [sys.executable, "-m", "time2bet.cli.main", "simulate", "--root", args.root, "--from",
            args.first.isoformat(), "--to", args.last.isoformat(), "--step", args.step, "--divisions",
            ",".join(divisions), "--home", str(home), "--report", str(report)]
    print(f"replay home {home}; report {report}", flush=True)
    started = time.perf_counter()
    if args.figures_only:
        if not args.home or not report.exists():
            p.error("--figures-only needs the --home of a finished replay (its report beside it)")
        done, sim_s = subprocess.CompletedProcess(argv, 0), float("nan")
    else:
        done = subprocess.run(argv, env=env, timeout=SIMULATE_TIMEOUT_S, check=False)   # its progress bar shows
        sim_s = time.perf_counter() - started
    if done.returncode != 0:
        print(f"time2bet simulate failed ({done.returncode}): see {home / 'logs'}", file=sys.stderr)
        return 1
    import pandas as pd

    steps = pd.read_csv(report)["step_date"].nunique()
    figures = replay_figures(env_for_home(home)["TIME2BET_WAREHOUSE_URL"], args.first, args.last, divisions)
    ratios = ledger_ratio(home) if args.ratio else {"ledger_ratio": float("nan"), "ledger_batch_ratio": float("nan")}
    print(f"steps={steps} predicted={figures['predicted']} played={figures['played']} joined={figures['joined']} "
          f"live_logloss={figures['live_logloss']:.4f} market_logloss={figures['market_logloss']:.4f} "
          f"sim_s={sim_s:.0f} ledger_ratio={ratios['ledger_ratio']:.2f} "
          f"expected_joined={figures['expected_joined']} missing={figures['expected_joined'] - figures['joined']} "
          f"model_logloss_on_odds={figures['model_logloss_on_odds']:.4f} "
          f"ledger_batch_ratio={ratios['ledger_batch_ratio']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
