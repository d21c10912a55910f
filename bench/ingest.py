"""Ingestion benchmark: the whole dev mirror through the replay server into the default warehouse, with the
platform's own Dagster assets (one single-run backfill of every partition), then an unchanged re-crawl (an
observation of source_season_files: one crawl, and no materialization when nothing changed).

    python bench/ingest.py --root ../shared/data/football-data

Last line: ``ingest_matches=<n> ingest_s=<seconds> recrawl_s=<seconds>``. Lines before it break the time
down (crawl, landing, parsing, loading, Dagster's own bookkeeping) from the runs' metadata.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd

from time2bet.background import free_port


def start_mirror(root: Path) -> tuple[subprocess.Popen, str]:
    """The replay server runs in its own process so that it does not compete with Dagster for the GIL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "time2bet.cli.main", "mirror", "serve", "--root", str(root), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/robots.txt", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("replay server did not start within 30 s")


def _metadata_breakdown(results) -> dict[str, float]:
    totals: dict[str, float] = {}
    for result in results:
        for node in ("raw_match_files", "raw_matches"):
            if not result.asset_materializations_for_node(node):
                continue
            md = result.asset_materializations_for_node(node)[0].metadata
            for key in ("crawl_seconds", "land_seconds", "parse_seconds", "load_seconds"):
                if key in md:
                    totals[key] = max(totals.get(key, 0.0), md[key].value)  # same value on every partition
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="site directory in football-data.co.uk layout")
    parser.add_argument("--work", type=Path, default=None, help="TIME2BET_HOME for the run (default: a temp dir)")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="time2bet-bench-"))
    os.environ["TIME2BET_HOME"] = str(work)
    os.environ["DAGSTER_HOME"] = str(work / "dagster")
    mirror, url = start_mirror(args.root.resolve())
    os.environ["TIME2BET_SOURCE_URL"] = url
    try:
        import dagster as dg

        from time2bet.cli.main import prepare_dagster_home
        from time2bet.ingestion.discovery import discover_season_files
        from time2bet.settings import Settings
        from time2bet.warehouse.client import Warehouse
        from time2bet_assets.definitions import build_definitions
        from time2bet_assets.defs.ingestion.backfill import run_season_file_backfill

        settings = Settings.from_env()
        defs = build_definitions(settings)
        prepare_dagster_home(settings)
        instance = dg.DagsterInstance.get()

        def ingest_once() -> tuple[float, list]:
            t0 = time.perf_counter()
            links = discover_season_files(url)
            divisions = list(dict.fromkeys(l.division for l in links))
            seasons = sorted({l.season for l in links})
            results = run_season_file_backfill(defs, instance, divisions, seasons)
            if not all(r.success for r in results):
                raise SystemExit(f"a backfill run failed: {[r.run_id for r in results if not r.success]}")
            return time.perf_counter() - t0, results

        def describe(what: str, seconds: float, results: list) -> None:
            stages = _metadata_breakdown(results)
            runs = ", ".join(r.job_def.name for r in results) or "none"
            print(f"{what}: {seconds:.2f}s; runs: {runs}; stages {stages}; Dagster and the rest "
                  f"{seconds - sum(stages.values()):.2f}s")

        ingest_s, first = ingest_once()
        describe("first ingest", ingest_s, first)
        recrawl_s, second = ingest_once()
        describe("unchanged re-crawl", recrawl_s, second)

        wh = Warehouse.from_url(settings.warehouse_url)
        per_file = wh.read_sql("SELECT division, season, count(*) AS n FROM raw.matches GROUP BY 1, 2")
        manifest = pd.read_csv(args.root / "MANIFEST.csv") if (args.root / "MANIFEST.csv").exists() else None
        n = int(per_file["n"].sum())
        if manifest is not None:
            merged = manifest.merge(per_file, on=["division", "season"], how="left").fillna({"n": 0})
            short = merged[merged["rows"] != merged["n"]]
            print(f"files in manifest: {len(manifest)}, rows in manifest: {int(manifest['rows'].sum())}, "
                  f"files whose row count differs: {len(short)}")
            if len(short):
                print(short[["path", "rows", "n"]].to_string(index=False))
        print(f"ingest_matches={n} ingest_s={ingest_s:.2f} recrawl_s={recrawl_s:.2f}")
    finally:
        mirror.terminate()
        mirror.wait(timeout=10)


if __name__ == "__main__":
    main()
