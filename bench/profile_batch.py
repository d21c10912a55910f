"""Where the time of one POST /predict/batch goes, stage by stage, in-process (no sockets, no BentoML).

    python bench/profile_batch.py --home /path/to/TIME2BET_HOME [--rows 10000] [--batches 6] [--repeat 5]
    python bench/profile_batch.py --home ... --cprofile      # also cProfile the whole request (top functions)

Loads the served champion and the serving snapshot the way a worker does (the exported snapshot, else the
warehouse), builds batches of the real workload of bench/serve.py (random pairs of each division's latest-season
teams at dates after the as-of date, no match twice) and times, for each batch, the stages of the batch route
as the service runs them (``Time2BetService.predict_batch`` behind ``fast_path``): parse the body
(``MatchColumns.from_batch_json``), resolve names and dates (``Snapshot.resolve_many``), feature rows
(``Snapshot.feature_matrix``), the model (``ServedModel.predict_matrix``), the response body
(``Scored.predictions_json``), and the whole of it; then, apart, what the ledger's flush thread does with the answer
off the request path (records, JSON, hash-chained lines: bento_service.ledger, time2bet.ledger). Each stage is repeated ``--repeat`` times on each batch; the
figure is the median over batches of the fastest repetition, in ms per batch (the machine is shared: the fastest
of several is the least disturbed), with the CPU time of all the process's threads in that repetition (the model
runs on several: its CPU time is what the cores pay, whoever else uses them). ``--threads 1`` serves the model on
this thread only (no split across cores). Run it from a checkout to measure that checkout's code.

Instruction counts instead of times (deterministic on a busy machine; one batch, each stage once after a warm-up
call), under callgrind with instrumentation off until the stages run:

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg/out.%p \
        python bench/profile_batch.py --home ... --batches 1 --callgrind /tmp/cg
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def best_of(fn, repeat: int) -> tuple[float, float]:
    """(the fastest wall time of ``repeat`` calls, the CPU time of this process's threads during that call)."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        cpu, start = time.process_time(), time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - start, time.process_time() - cpu))
    return best


class Callgrind:
    """Stage counts under ``valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=DIR/...%p``: the
    counters are zeroed before a stage and dumped (named after it) after it, with callgrind_control."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self._control("-i", "on")

    def _control(self, *args: str) -> None:
        control = subprocess.Popen(["callgrind_control", *args, str(os.getpid())], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        while control.poll() is None:   # keep running Python code: valgrind serves the request between blocks
            pass

    def __call__(self, name: str, fn) -> tuple[float, float]:
        fn()   # warm (caches, lazy imports)
        self._control("-z")
        fn()
        self._control("-d", name)
        return 0.0, 0.0

    def report(self) -> None:
        counts = {}
        dumps = self.out_dir.glob(f"*{os.getpid()}.*")
        for path in sorted(dumps, key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0):   # in order
            text = path.read_text(errors="replace")
            name = next((line.split("dump ", 1)[1] for line in text.splitlines() if line.startswith("desc: Trigger")
                         and "dump " in line), None)
            total = next((int(line.split()[1]) for line in text.splitlines() if line.startswith("summary:")), None)
            if name and total is not None:
                counts[name] = total
        print("\ninstructions per batch (callgrind Ir, all threads):")
        for name, total in counts.items():
            print(f"  {name:>40}: {total / 1e6:10.1f} M")


def load(home: Path):
    from time2bet.cli.sample_platform import env_for_home

    os.environ.update(env_for_home(home))
    from bento_service.model import ModelSet, ServedModel, single_threaded_blas

    single_threaded_blas()   # as a service worker does
    from bento_service.snapshot import Snapshot
    from time2bet.settings import Settings

    settings = Settings.from_env()
    snapshot = Snapshot.load_export(settings.serving_snapshot_dir) or Snapshot.load(settings.warehouse_url)
    models = ModelSet(champion=ServedModel.load(settings.mlflow_tracking_uri))
    return settings, snapshot, models


def real_batches(settings, snapshot, rows: int, n: int) -> list[bytes]:
    """``n`` bodies of ``rows`` distinct matches of bench/serve.py's real workload (names the snapshot accepts)."""
    sys.path.insert(0, str(REPO / "bench"))
    from serve import RealBodies, real_teams

    from bento_service.snapshot import RequestError

    teams, as_of = real_teams(settings.warehouse_url)
    kept = {}
    for division, names in teams.items():
        ok = []
        for name in names:
            try:
                snapshot.team_id(division, name)
                ok.append(name)
            except RequestError:
                pass
        if len(ok) >= 2:
            kept[division] = ok
    real = RealBodies(kept, as_of)
    real.take(200)   # as the benchmark: its warm-up bodies
    print(f"real workload: {len(real.pairs)} ordered pairs in {len(kept)} divisions", flush=True)
    return [json.dumps({"matches": real.take(rows)}, separators=(",", ":")).encode() for _ in range(n)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", required=True, help="TIME2BET_HOME of a built platform")
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--batches", type=int, default=6, help="measured batches (after one warm-up batch)")
    p.add_argument("--repeat", type=int, default=5, help="repetitions of each stage on each batch (fastest counts)")
    p.add_argument("--threads", type=int, default=0, help="cores the model may use (0: as the service decides)")
    p.add_argument("--cprofile", action="store_true", help="also profile whole requests with cProfile")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--callgrind", metavar="DIR", help="count instructions per stage (run under valgrind, see above): "
                   "DIR is the directory of --callgrind-out-file")
    args = p.parse_args(argv)

    if args.threads:
        os.sched_setaffinity(0, list(os.sched_getaffinity(0))[:args.threads])
    settings, snapshot, models = load(Path(args.home))
    from bento_service import scoring
    from bento_service.ledger import _Answered
    from bento_service.schemas import MatchColumns
    from time2bet.ledger.chain import GENESIS, encode_line
    from time2bet.ledger.record import record_to_dict, utc_now

    bodies = real_batches(settings, snapshot, args.rows, 1 + args.batches)
    scoring.settle_heap()

    def whole(body: bytes) -> bytes:   # what the batch route does with a valid body
        scored = scoring.score(models, snapshot, MatchColumns.from_batch_json(body), 0.0)
        return b'{"predictions":' + scored.predictions_json() + b"}"

    whole(bodies[0])   # warm-up: the pairs' feature rows cached, as after the benchmark's earlier phases

    counter = Callgrind(Path(args.callgrind)) if args.callgrind else None

    def ledger_lines(scored) -> None:
        """What the ledger's flush thread does with the answer, off the request path: its records, their JSON and
        chained lines (the write and fsync aside)."""
        for record in _Answered(scored, "service:/predict/batch", utc_now()).records():
            encode_line("bench", 0, GENESIS, record_to_dict(record))

    def measure(name: str, fn) -> tuple[float, float]:
        return counter(name, fn) if counter else best_of(fn, args.repeat)

    def stages_of(body: bytes) -> dict[str, tuple[float, float]]:
        times = {"parse (MatchColumns.from_batch_json)": measure("parse", lambda: MatchColumns.from_batch_json(body))}
        columns = MatchColumns.from_batch_json(body)
        times["resolve (Snapshot.resolve_many)"] = measure("resolve", lambda: snapshot.resolve_many(columns))
        fixtures = snapshot.resolve_many(columns)
        variants = scoring.variants_of(models, fixtures, 0.0)
        times["feature rows (Snapshot.feature_matrix)"] = measure("features", lambda: snapshot.feature_matrix(fixtures))
        x = snapshot.feature_matrix(fixtures)
        times["model (predict_matrix)"] = measure("model", lambda: scoring.predict_by_variant(models, variants, x))
        scored = scoring.score(models, snapshot, columns, 0.0)
        times["response JSON (predictions_json)"] = measure("json", scored.predictions_json)
        times["whole request (all of the above)"] = measure("whole", lambda: whole(body))
        times["ledger line (the flush thread's)"] = measure("ledger", lambda: ledger_lines(scored))
        return times

    stages: dict[str, list[tuple[float, float]]] = {}
    for body in bodies[1:]:
        for name, t in stages_of(body).items():
            stages.setdefault(name, []).append(t)
    if counter:
        counter.report()
        return 0
    print(f"\n{args.rows} rows per batch, {args.batches} batches, fastest of {args.repeat} per batch, median over "
          f"batches; model on {len(os.sched_getaffinity(0))} core(s); wall ms (CPU ms of all threads):")
    for name, ts in stages.items():
        wall, cpu = statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)
        print(f"  {name:>40}: {wall * 1e3:7.2f} ms  ({cpu * 1e3:7.2f} ms CPU)  {args.rows / wall:10,.0f} rows/s")
    if args.cprofile:
        prof = cProfile.Profile()
        prof.enable()
        for body in bodies[1:]:
            whole(body)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.top)
        print("\ncProfile of whole requests, top functions by own time (this thread only):")
        print("\n".join(line for line in out.getvalue().splitlines()[4:] if line.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
