"""Every prediction the service answers, sealed in the prediction ledger (:mod:`time2bet.ledger`).

One record per request and model (``POST /predict``: one row; a batch or an async job: its rows, one record per
A/B variant that answered them), appended to the worker's own :class:`~time2bet.ledger.LedgerWriter` after the
predictions are computed and before the response is sent. The request path only takes the clock and hands the
:class:`~bento_service.scoring.Scored` it already has to the writer (:class:`_Answered`, a few microseconds, no
copy, no I/O); the writer's flush thread turns it into records (ids, keys, match ids, columns) when it serializes
them, and writes and fsyncs at least every TIME2BET_LEDGER_FLUSH_MS, so an answer a client received is on disk
within that bound and a crash (kill -9 included) after it loses nothing. When the writer's buffer is full the
request's predictions are dropped and counted (``time2bet_ledger_predictions_total{outcome="dropped"}``), never
waited for: a slow disk must not slow the service.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from bento_service.metrics import LEDGER
from bento_service.model import variant_label
from bento_service.scoring import Scored
from time2bet.ledger import (
    LedgerRecord,
    LedgerWriter,
    match_key,
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
        names, codes = scored.variant_codes()
        kickoffs = fixtures.kickoff_days()
        pairs = fixtures.pairs   # (division, home, away) as asked
        keys = [match_key(pairs[c][0], k, pairs[c][1], pairs[c][2]) for c, k in zip(fixtures.codes.tolist(), kickoffs)]
        ids, probs = fixtures.match_ids(kickoffs), scored.probs
        request_id = new_prediction_id() if len(names) > 1 else None
        out = []
        for k, variant in enumerate(names):
            if len(names) == 1:   # every row (the usual case: no copies)
                rows_keys, rows_ids, rows_kickoffs, rows_probs = keys, ids, kickoffs, probs
            else:
                rows = np.flatnonzero(codes == k).tolist()
                rows_keys, rows_ids = [keys[i] for i in rows], [ids[i] for i in rows]
                rows_kickoffs, rows_probs = [kickoffs[i] for i in rows], probs[rows]
            model = scored.models[variant]
            out.append(LedgerRecord(
                prediction_id=new_prediction_id(), created_at=now, as_of=now, source=self.source,
                model_name=model.name, model_version=str(model.version), model_alias=model.alias, variant=variant_label(variant),
                model_family=model.family, data_version=model.data_version,
                features_as_of=scored.snapshot.features_as_of,
                match_key=rows_keys, match_id=rows_ids, kickoff_date=rows_kickoffs,
                p_home=rows_probs[:, 0], p_draw=rows_probs[:, 1], p_away=rows_probs[:, 2], request_id=request_id))
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
