"""Scoring on arrays, shared by the service's routes, its batch jobs and the benchmark's bare baseline
(bench/baseline_app.py): requests -> resolved fixtures -> feature rows -> probabilities -> response records.

Why it looks like this (measured with bench/serve.py and bench/profile_request.py on 2 cores):

- one match through ``Snapshot.features`` (pandas) and ``pyfunc.predict`` took ~10-50 ms; through
  ``Snapshot.feature_matrix`` (cached rows) and ``ServedModel.predict_matrix`` (the raw ``predict_proba``) it is
  ~1-2 ms, nearly all of it fixed per-call overhead of sklearn's CalibratedClassifierCV and XGBoost, whatever
  the number of rows. Hence :class:`MicroBatcher`: concurrent single predictions share one model call;
- the response JSON is built from pieces serialised once each (:meth:`Scored.predictions_json`): pydantic models,
  or even a dict per prediction, cost more than scoring them; the bytes are pydantic's own;
- the ``time2bet_predictions_total`` counter is incremented once per (outcome, variant), not once per row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import orjson
from pydantic import TypeAdapter

from bento_service.model import ROUTE_SEP, ModelSet, ServedModel, assign_variant, variant_label
from bento_service.schemas import MatchColumns
from bento_service.snapshot import Fixtures, RequestError, Snapshot
from time2bet.serving_contract import CHAMPION, OUTCOMES

_DATETIME = TypeAdapter(dt.datetime)


@dataclass
class Scored:
    """Predictions for requests, in request order."""

    fixtures: Fixtures               # the requests resolved (their pairs as asked, dates, ids)
    variants: list[str]
    models: dict[str, ServedModel]   # variant -> the model that answered it
    probs: np.ndarray                 # (n, 3) H/D/A
    snapshot: Snapshot
    markets: Markets | None = None    # only when the request asked for them (add_markets)

    def outcome_counts(self) -> dict[tuple[str, str], int]:
        """{(outcome, variant): n}: the most likely outcome of each prediction, by variant."""
        names, rows = self.variant_codes()
        if not len(rows):
            return {}
        counts = np.bincount(self.probs.argmax(axis=1) * len(names) + rows, minlength=3 * len(names))
        return {(OUTCOMES[k // len(names)], names[k % len(names)]): int(n) for k, n in enumerate(counts.tolist()) if n}

    def variant_codes(self) -> tuple[list[str], np.ndarray]:
        """(the variants present, each row's index into them)."""
        names = list(dict.fromkeys(self.variants))
        if len(names) == 1:
            return names, np.zeros(len(self.variants), dtype=np.intp)
        index = {v: i for i, v in enumerate(names)}
        return names, np.fromiter((index[v] for v in self.variants), dtype=np.intp, count=len(self.variants))

    def predictions_json(self) -> bytes:
        """The predictions as a JSON array of schemas.Prediction objects (same fields, order and formats).

        Built from pieces serialised once each by orjson and joined once: every distinct string (variant, team
        name as asked, division) and date, the tail of every variant (model, snapshot dates), and all the
        probabilities in one orjson call. The head of every (pair, variant) present is assembled from those
        strings by one join of all the heads and one split (C loops, no dict or orjson call per head); the rows
        are then 8 pieces each: head, date, home, ',"draw":', draw, ',"away":', away, tail. For 10,000 rows of
        ~7,400 distinct pairs (bench/serve.py's real workload) that is 25% fewer instructions than a dict
        serialised by orjson per head (67M against 90M, bench/profile_batch.py: ~7 ms against ~10 ms), and a dict
        per row cost ~17 ms (the dicts, not the serialising, cost)."""
        n = len(self.probs)
        if not n:
            return b"[]"
        snapshot, fixtures = self.snapshot, self.fixtures
        names, rows = self.variant_codes()
        dates_of_snapshot = (b',"features_as_of":' + orjson.dumps(snapshot.features_as_of) + b',"snapshot_loaded_at":'
                             + orjson.dumps(_DATETIME.dump_python(snapshot.loaded_at, mode="json")) + b"}")
        tails = [b'},"model":' + model_ref_json(m) + dates_of_snapshot + b"," for m in (self.models[v] for v in names)]
        labels = names if len(names) == 1 and ROUTE_SEP not in names[0] else list(map(variant_label, names))
        heads = _heads(fixtures.pairs, labels)   # (pair, variant) -> head, at pair * len(names) + variant
        if len(names) == 1:
            head_of_row = fixtures.codes.tolist()
        else:
            head_of_row = (fixtures.codes * len(names) + rows).tolist()
        dates, date_of_row = _date_pieces(fixtures.ordinals)
        numbers = orjson.dumps(np.ascontiguousarray(self.probs, dtype=np.float64).ravel(),
                               option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
        # row i is pieces[8i:8i+8]: head, date, home, ',"draw":', draw, ',"away":', away, tail (C-level fills)
        pieces = [b',"draw":'] * (8 * n)
        pieces[0::8] = map(heads.__getitem__, head_of_row)
        pieces[1::8] = map(dates.__getitem__, date_of_row)
        pieces[2::8] = numbers[0::3]
        pieces[4::8] = numbers[1::3]
        pieces[5::8] = [b',"away":'] * n
        pieces[6::8] = numbers[2::3]
        pieces[7::8] = [tails[0]] * n if len(names) == 1 else map(tails.__getitem__, rows.tolist())
        if self.markets is not None:   # each row's tail ends '},': the goals model and its markets go before it
            pieces[7::8] = self.markets.tails(pieces[7::8], fixtures.codes.tolist())
        pieces[0], pieces[-1] = b"[" + pieces[0], pieces[-1][:-1] + b"]"   # no comma after the last object
        return b"".join(pieces)


def model_ref_json(model: ServedModel) -> bytes:
    """schemas.ModelRef of a served model as JSON (same fields, same order)."""
    return orjson.dumps({"name": model.name, "version": model.version, "alias": model.alias,
                         "data_version": model.data_version, "family": model.family})


@dataclass(frozen=True)
class Markets:
    """The markets of every distinct pair of a request (schemas.Markets as JSON, in ``Fixtures.pairs`` order) and
    the goals model that gave them. Markets are asked for explicitly (``markets: true``) and never reach the
    default path; they are not sealed in the ledger (which records the 1X2 predictions that are scored)."""

    goals_model: ServedModel
    of_pair: list[bytes]

    def tails(self, tails: list[bytes], pair_of_row: list[int]) -> list[bytes]:
        """Each row's tail ('...},') with ',"goals_model":{..},"markets":{..}' before its closing brace."""
        g = self.goals_model
        ref = b',"goals_model":' + model_ref_json(g) + b',"markets":'
        return [tail[:-2] + ref + self.of_pair[pair] + b"},"
                for tail, pair in zip(tails, pair_of_row, strict=True)]


def add_markets(scored: Scored, goals_model: ServedModel) -> Scored:
    """``scored`` with the goals model's markets of each distinct pair (time2bet.ml.goals_model.markets_of); a pair
    in a division the goals model has no fit for is a 422 markets_unavailable (with ``index`` in a batch). A team
    its division's fit never saw (promoted since) gets the weakest fifth's strengths, as in the goals model's own
    evaluation."""
    from time2bet.ml.goals_model import AH_LINES, markets_of

    fixtures = scored.fixtures
    model = goals_model.pyfunc.unwrap_python_model()
    divisions, homes, aways = (list(column) for column in zip(*fixtures.ids, strict=True))
    lam, mu, rho = model.expected_goals(divisions, homes, aways)
    if np.isnan(lam).any():
        pair = int(np.flatnonzero(np.isnan(lam))[0])
        division = divisions[pair]
        index = {"index": int(np.flatnonzero(fixtures.codes == pair)[0])} if len(fixtures) > 1 else {}
        raise RequestError("markets_unavailable", f"the goals model {goals_model.name} v{goals_model.version} has "
                           f"no fit for division {division} (too few matches in its training window): no markets",
                           division=division, **index)
    m = markets_of(lam, mu, rho)
    one_x_two, over, btts = m["one_x_two"].tolist(), m["over_2_5"].tolist(), m["btts"].tolist()
    handicaps, expected = m["asian_handicap"].tolist(), m["expected_goals"].tolist()
    of_pair = [orjson.dumps({
        "probabilities": dict(zip(OUTCOMES, one_x_two[k], strict=True)),
        "over_under_2_5": {"over": over[k], "under": 1.0 - over[k]},
        "both_teams_to_score": {"yes": btts[k], "no": 1.0 - btts[k]},
        "asian_handicap": [{"line": line, "win": w, "push": p, "lose": lo}
                           for line, (w, p, lo) in zip(AH_LINES, handicaps[k], strict=True)],
        "expected_goals": {"home": expected[k][0], "away": expected[k][1]},
        "most_likely_scores": [{"home_goals": h, "away_goals": a, "probability": p}
                               for h, a, p in m["most_likely_scores"][k]],
    }) for k in range(len(lam))]
    scored.markets = Markets(goals_model, of_pair)
    return scored


# Pieces of the response JSON (Scored.predictions_json): a head is '{"variant":..,"home_team":..,"away_team":..,
# "division":..,"kickoff_date":"', a date piece 'YYYY-MM-DD","probabilities":{"home":'.
_HEAD_END = b',"kickoff_date":"'
_DATE_END = b'","probabilities":{"home":'
_SPLIT = b"\n"   # never in orjson's JSON of a string (it escapes control characters): it separates joined heads


def _heads(pairs: list[tuple[str, str, str]], variants: list[str]) -> list[bytes]:
    """The head of every (pair, variant), at ``pair * len(variants) + variant``: the JSON of each distinct string
    once (orjson, as for the dict it replaces), then all the heads as one join of those pieces and one split."""
    if len(pairs) == 1:   # POST /predict: no join and split
        (division, home, away), = pairs
        return [b'{"variant":' + orjson.dumps(variant) + b',"home_team":' + orjson.dumps(home) + b',"away_team":'
                + orjson.dumps(away) + b',"division":' + orjson.dumps(division) + _HEAD_END for variant in variants]
    divisions, homes, aways = zip(*pairs)
    encoded = {s: orjson.dumps(s) for s in {*divisions, *homes, *aways}}
    homes, aways, divisions = (list(map(encoded.__getitem__, column)) for column in (homes, aways, divisions))
    k = len(variants)
    pieces = [b',"away_team":'] * (7 * k * len(pairs))   # per head: variant, home, away key, away, ...
    for v, variant in enumerate(variants):
        at, step = 7 * v, 7 * k
        pieces[at::step] = [b'{"variant":' + orjson.dumps(variant) + b',"home_team":'] * len(pairs)
        pieces[at + 1::step] = homes
        pieces[at + 3::step] = aways
        pieces[at + 4::step] = [b',"division":'] * len(pairs)
        pieces[at + 5::step] = divisions
        pieces[at + 6::step] = [_HEAD_END + _SPLIT] * len(pairs)
    heads = b"".join(pieces).split(_SPLIT)
    heads.pop()   # after the last separator
    return heads


def _date_pieces(ordinals: np.ndarray) -> tuple[list[bytes], list[int]]:
    """(the date pieces, each row's index into them): one piece per day of the span of the dates when it is short
    (an index is then the ordinal's offset), else per distinct date (np.unique: ~25 us even for one row)."""
    if len(ordinals) == 1:
        return [dt.date.fromordinal(int(ordinals[0])).isoformat().encode() + _DATE_END], [0]
    first, last = int(ordinals.min()), int(ordinals.max())
    if last - first < 2 * len(ordinals) + 64:
        days, index = range(first, last + 1), (ordinals - first).tolist()
    else:
        distinct, inverse = np.unique(ordinals, return_inverse=True)
        days, index = distinct.tolist(), inverse.tolist()
    return [dt.date.fromordinal(d).isoformat().encode() + _DATE_END for d in days], index


def variants_of(models: ModelSet, fixtures: Fixtures, share: float) -> list[str]:
    """Each request's variant, as ``ModelSet.pick`` assigns it (by match id; champion without a challenger); with
    routes, a routed division's requests get their routed model's variant, keyed ``name@alias``."""
    if models.route_of:
        return _routed_variants(models, fixtures, share)
    if models.challenger is None:
        return [CHAMPION] * len(fixtures)
    return [assign_variant(match_id, share) for match_id in fixtures.match_ids()]


def _routed_variants(models: ModelSet, fixtures: Fixtures, share: float) -> list[str]:
    """variants_of with routes: the same A/B draw by match id, within the model that answers the division."""
    keys = {}   # division -> (the set answering it, its key prefix)
    out = []
    for (division, _, _), match_id in zip(map(fixtures.pairs.__getitem__, fixtures.codes.tolist()),
                                          fixtures.match_ids(), strict=True):
        chosen = keys.get(division)
        if chosen is None:
            name = models.route_of.get(division)
            chosen = keys[division] = (models, "") if name is None else (models.routes[name], name + ROUTE_SEP)
        answering, prefix = chosen
        out.append(prefix + (assign_variant(match_id, share) if answering.challenger is not None else CHAMPION))
    return out


def prepare(models: ModelSet, snapshot: Snapshot, matches: MatchColumns | Sequence, share: float):
    """(fixtures, variants, feature rows) of requests; raises RequestError like ``Snapshot.resolve``."""
    fixtures = snapshot.resolve_many(matches)
    return fixtures, variants_of(models, fixtures, share), snapshot.feature_matrix(fixtures)


def model_rows(model: ServedModel, x: np.ndarray, snapshot: Snapshot | None = None,
               fixtures: Fixtures | None = None) -> np.ndarray:
    """The rows ``model`` reads for resolved requests: ``x`` itself (MODEL_FEATURES, computed once per request)
    when those are its inputs, as for the independent family; else its own inputs in its order
    (``Snapshot.model_matrix``: a market-aware model also reads the market-implied ratings), built only then."""
    if model.reads_model_features:
        return x
    if snapshot is None or fixtures is None:
        raise ValueError(f"{model.name} v{model.version} ({model.family}) reads other columns than MODEL_FEATURES: "
                         "its rows need the snapshot and the resolved fixtures")
    return snapshot.model_matrix(fixtures, model.input_features)


def predict_by_variant(models: ModelSet, variants: list[str], x: np.ndarray, snapshot: Snapshot | None = None,
                       fixtures: Fixtures | None = None) -> np.ndarray:
    """One model call per variant present, on the rows that model reads (:func:`model_rows`)."""
    if len(present := set(variants)) == 1:   # no masks: they cost a copy of the rows and a string array
        model = models.get(present.pop())
        return model.predict_matrix(model_rows(model, x, snapshot, fixtures))
    probs = np.empty((len(variants), 3))
    chosen = np.asarray(variants)
    for variant in dict.fromkeys(variants):
        mask = chosen == variant
        model = models.get(variant)
        probs[mask] = model.predict_matrix(model_rows(model, x, snapshot, fixtures)[mask])
    return probs


def score(models: ModelSet, snapshot: Snapshot, matches: MatchColumns | Sequence, share: float) -> Scored:
    """Requests scored in the calling thread (the batch route and the jobs)."""
    fixtures, variants, x = prepare(models, snapshot, matches, share)
    probs = predict_by_variant(models, variants, x, snapshot, fixtures)
    return Scored(fixtures, variants, {v: models.get(v) for v in set(variants)}, probs, snapshot)


async def score_batched(batcher: MicroBatcher, models: ModelSet, snapshot: Snapshot,
                        matches: MatchColumns | Sequence, share: float) -> Scored:
    """Requests scored with the model calls coalesced with other requests' (the single-match route); on Feast
    (TIME2BET_FEATURES=feast) their feature lookups too."""
    if snapshot.online is None:
        fixtures, variants, x = prepare(models, snapshot, matches, share)
    else:
        fixtures = snapshot.resolve_many(matches)
        variants = variants_of(models, fixtures, share)
        x = await snapshot.online.coalesced(snapshot, fixtures)
    chosen = {v: models.get(v) for v in dict.fromkeys(variants)}
    if len(chosen) == 1:
        model = next(iter(chosen.values()))
        probs = await batcher.predict(model, model_rows(model, x, snapshot, fixtures))
    else:
        probs = np.empty((len(variants), 3))
        mask = np.asarray(variants)
        for variant, model in chosen.items():
            rows = mask == variant
            probs[rows] = await batcher.predict(model, model_rows(model, x, snapshot, fixtures)[rows])
    return Scored(fixtures, variants, chosen, probs, snapshot)


def settle_heap() -> None:
    """Call once the model and the snapshot are loaded: moves every object alive then (pandas, sklearn, MLflow,
    the snapshot: ~400k objects) out of the garbage collector's sight (``gc.freeze``). A 10,000-row response
    allocates ~50k containers, enough to trigger full collections that each walked all of them (~100 ms)."""
    gc.collect()
    gc.freeze()


class MicroBatcher:
    """Coalesces concurrent predictions into one model call per model.

    A model call has a fixed cost (~1 ms of sklearn/XGBoost overhead) that dwarfs the per-row cost, so under
    load one call for every request waiting is much cheaper than one call each. Nothing waits on purpose: the
    call runs as soon as the event loop gets to it and takes every row queued by then (at most ``max_rows``); a
    lone request is scored at once. Rows are grouped by model object, so a request keeps the model it took even
    across a swap; each row's numbers do not depend on the rows it is batched with. Used from one event loop.

    ``inline=True`` (the default) runs the call on the event loop itself: while it runs, new requests wait in
    the socket buffers and join the next call. Measured on 2 cores, handing it to a thread instead cost more
    (a wake-up and GIL hand-over per call) than the parsing it let overlap."""

    def __init__(self, max_rows: int = 512, inline: bool = True):
        self.max_rows = max_rows
        self._pending: list[tuple[ServedModel, np.ndarray, asyncio.Future]] = []
        self._draining = False
        self._executor = None if inline else ThreadPoolExecutor(max_workers=1, thread_name_prefix="time2bet-predict")

    async def predict(self, model: ServedModel, x: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((model, x, future))
        if not self._draining:
            self._draining = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, rows = [], 0
                while self._pending and (not batch or rows + len(self._pending[0][1]) <= self.max_rows):
                    batch.append(self._pending.pop(0))
                    rows += len(batch[-1][1])
                try:
                    if self._executor is None:
                        results = _predict_groups(batch)
                    else:
                        results = await loop.run_in_executor(self._executor, _predict_groups, batch)
                except Exception as exc:  # noqa: BLE001 - every request of the call gets the error
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for (*_, future), result in zip(batch, results, strict=True):
                        if not future.done():   # cancelled meanwhile (the client went away)
                            future.set_result(result)
        finally:
            self._draining = False

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def _predict_groups(batch: list[tuple[ServedModel, np.ndarray, asyncio.Future]]) -> list[np.ndarray]:
    groups: dict[int, list[int]] = {}
    for i, (model, _, _) in enumerate(batch):
        groups.setdefault(id(model), []).append(i)
    out: list[np.ndarray] = [np.empty((0, 3))] * len(batch)
    for members in groups.values():
        probs = batch[members[0]][0].predict_matrix(np.concatenate([batch[i][1] for i in members]))
        start = 0
        for i in members:
            n = len(batch[i][1])
            out[i], start = probs[start:start + n], start + n
    return out
