"""Every prediction the service answers, sealed in the prediction ledger (:mod:`time2bet.ledger`).

A batch or an async job is one record per A/B variant that answered it (its rows); the single ``POST /predict``
answers of one flush share one record per model (:meth:`_Answered.records_of`). They are handed to the worker's
own :class:`~time2bet.ledger.LedgerWriter` after the predictions are computed and before the response is sent. The
request path only takes the clock and hands the :class:`~bento_service.scoring.Scored` it already has to the writer
(:class:`_Answered`, a few microseconds, no copy, no I/O); the writer's flush thread builds the records, whose rows
are the request's distinct pairs (names as asked and team ids) and each row's pair and date
(:class:`~time2bet.ledger.PairText`: nothing is spelled out per row), serializes, chains, writes and fsyncs them at
least every TIME2BET_LEDGER_FLUSH_MS: an answer a client received is on disk within that bound, and a crash (kill -9
included) after it loses nothing. When the writer's buffer is full the request's predictions are dropped and counted
(``time2bet_ledger_predictions_total{outcome="dropped"}``), never waited for: a slow disk must not slow the service.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from bento_service.metrics import LEDGER
from bento_service.model import variant_label
from bento_service.scoring import Scored
from time2bet.ledger import (
    KickoffDays,
    LedgerRecord,
    LedgerWriter,
    PairText,
    new_prediction_id,
    service_writer_id,
    utc_now,
)

_APPENDED, _DROPPED = LEDGER.labels(outcome="appended"), LEDGER.labels(outcome="dropped")


class _Answered:
    """One answered request, as the request path hands it over: its records are built by the flush thread."""

    __slots__ = ("at", "n", "scored", "source")

    def __init__(self, scored: Scored, source: str, at: dt.datetime):
        self.scored, self.source, self.at, self.n = scored, source, at, len(scored.probs)

    def records(self) -> list[LedgerRecord]:
        scored, now = self.scored, self.at
        fixtures = scored.fixtures
        names, variant_of_row = scored.variant_codes()
        request_id = new_prediction_id() if len(names) > 1 else None
        out = []
        for k, variant in enumerate(names):
            if len(names) == 1:   # every row (the usual case: no copies)
                codes, ordinals, probs = fixtures.codes, fixtures.ordinals, scored.probs
            else:
                rows = variant_of_row == k
                codes, ordinals, probs = fixtures.codes[rows], fixtures.ordinals[rows], scored.probs[rows]
            model = scored.models[variant]
            out.append(LedgerRecord(
                prediction_id=new_prediction_id(), created_at=now, as_of=now, source=self.source,
                model_name=model.name, model_version=str(model.version), model_alias=model.alias,
                variant=variant_label(variant), model_family=model.family, data_version=model.data_version,
                features_as_of=scored.snapshot.features_as_of,
                match_key=PairText(fixtures.pairs, codes, ordinals),
                match_id=PairText(fixtures.ids, codes, ordinals, hashed=True), kickoff_date=KickoffDays(ordinals),
                p_home=probs[:, 0], p_draw=probs[:, 1], p_away=probs[:, 2], request_id=request_id))
        return out

    @classmethod
    def records_of(cls, answered: list[_Answered]) -> list[LedgerRecord]:
        """The records of several answered requests (a flush's worth): the single-row answers of one model,
        variant, source and snapshot on one UTC day become one record whose rows keep their own clocks (one
        record per request cost ~20 us each, mostly per-record overhead, and that time is taken from the
        requests: the GIL); any other answer gets its own records, as :meth:`records` builds them."""
        out: list[LedgerRecord] = []
        groups: dict[tuple, list[_Answered]] = {}
        for entry in answered:
            scored = entry.scored
            if entry.n != 1:
                out.extend(entry.records())
                continue
            variant = scored.variants[0]
            key = (id(scored.models[variant]), variant, entry.source, scored.snapshot.features_as_of,
                   entry.at.date())
            group = groups.get(key)
            if group is None:
                groups[key] = [entry]
            else:
                group.append(entry)
        for members in groups.values():
            first = members[0].scored
            variant = first.variants[0]
            model = first.models[variant]
            fixtures = [entry.scored.fixtures for entry in members]
            clocks = [entry.at for entry in members]
            rows = np.arange(len(members))
            ordinals = np.fromiter((f.ordinals[0] for f in fixtures), dtype=np.int64, count=len(members))
            probs = np.concatenate([entry.scored.probs for entry in members])
            out.append(LedgerRecord(
                prediction_id=new_prediction_id(), created_at=clocks[-1], as_of=clocks[-1], source=members[0].source,
                model_name=model.name, model_version=str(model.version), model_alias=model.alias,
                variant=variant_label(variant), model_family=model.family, data_version=model.data_version,
                features_as_of=first.snapshot.features_as_of,
                match_key=PairText([f.pairs[0] for f in fixtures], rows, ordinals),
                match_id=PairText([f.ids[0] for f in fixtures], rows, ordinals, hashed=True),
                kickoff_date=KickoffDays(ordinals),
                p_home=probs[:, 0], p_draw=probs[:, 1], p_away=probs[:, 2], row_created_at=clocks, row_as_of=clocks))
        return out


class ServiceLedger:
    """The worker's ledger writer and how a :class:`~bento_service.scoring.Scored` becomes records."""

    def __init__(self, writer: LedgerWriter | None):
        self.writer = writer

    @classmethod
    def from_settings(cls, settings) -> ServiceLedger:
        """The worker's ledger; none with TIME2BET_LEDGER=0 (what benchmarks compare against to price it)."""
        return cls(LedgerWriter.from_settings(settings, service_writer_id()) if settings.ledger_enabled else None)

    def record(self, scored: Scored, source: str) -> None:
        """Hand the predictions of one answered request to the writer (see the module's docstring)."""
        if self.writer is None:
            return
        answered = _Answered(scored, source, utc_now())
        (_APPENDED if self.writer.append(answered) else _DROPPED).inc(answered.n)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


__all__ = ["ServiceLedger"]
