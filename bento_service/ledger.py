"""Every prediction the service answers, sealed in the prediction ledger (:mod:`time2bet.ledger`).

One record per request and model (``POST /predict``: one row; a batch or an async job: its rows, one record per
A/B variant that answered them), appended to the worker's own :class:`~time2bet.ledger.LedgerWriter` after the
predictions are computed and before the response is sent. ``append`` is O(1) and never touches a file: the
worker's flush thread writes and fsyncs at least every TIME2BET_LEDGER_FLUSH_MS, so an answer a client received
is on disk within that bound, a crash (kill -9 included) after it loses nothing. When the writer's buffer is
full the record is dropped and counted (``time2bet_ledger_predictions_total{outcome="dropped"}``), never waited
for: a slow disk must not slow the service.

The request path only slices the probabilities (numpy) and keeps references to what it already has; the rows'
readable keys and match ids are computed by the flush thread when it serializes the record (:class:`_Later`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np

from bento_service.metrics import LEDGER
from bento_service.scoring import Scored
from time2bet.ledger import LedgerRecord, LedgerWriter, match_key, new_prediction_id, service_writer_id, utc_now


class _Later:
    """A row column computed when the ledger's thread serializes the record (``tolist``), not on the request."""

    __slots__ = ("n", "compute")

    def __init__(self, n: int, compute: Callable[[], list]):
        self.n, self.compute = n, compute

    def __len__(self) -> int:
        return self.n

    def tolist(self) -> list:
        return self.compute()


def _keys(scored: Scored, rows: np.ndarray) -> list[str]:
    fixtures = scored.fixtures
    return [match_key(*_pair_key(fixtures.pairs[fixtures.codes[i]], fixtures.kickoffs[i])) for i in rows.tolist()]


def _pair_key(pair: tuple[str, str, str], kickoff: dt.date) -> tuple[str, dt.date, str, str]:
    division, home, away = pair
    return division, kickoff, home, away


def _match_ids(scored: Scored, rows: np.ndarray) -> list[str]:
    ids = scored.fixtures.match_ids()
    return [ids[i] for i in rows.tolist()]


class ServiceLedger:
    """The worker's ledger writer and how a :class:`~bento_service.scoring.Scored` becomes records."""

    def __init__(self, writer: LedgerWriter):
        self.writer = writer

    @classmethod
    def from_settings(cls, settings) -> ServiceLedger:
        return cls(LedgerWriter.from_settings(settings, service_writer_id()))

    def record(self, scored: Scored, source: str) -> None:
        """Append the predictions of one answered request (see the module's docstring)."""
        now = utc_now()
        names, codes = scored._variant_codes()
        request_id = new_prediction_id() if len(names) > 1 else None
        features_as_of = scored.snapshot.features_as_of
        for k, variant in enumerate(names):
            rows = np.flatnonzero(codes == k) if len(names) > 1 else np.arange(len(codes))
            model = scored.models[variant]
            probs = scored.probs[rows]
            kickoffs: Sequence = [scored.fixtures.kickoffs[i] for i in rows.tolist()] if len(rows) == 1 else \
                _Later(len(rows), lambda rows=rows: [scored.fixtures.kickoffs[i] for i in rows.tolist()])
            appended = self.writer.append(LedgerRecord(
                prediction_id=new_prediction_id(), created_at=now, as_of=now, source=source,
                model_name=model.name, model_version=str(model.version), model_alias=model.alias, variant=variant,
                data_version=model.data_version, features_as_of=features_as_of,
                match_key=_Later(len(rows), lambda rows=rows: _keys(scored, rows)),
                match_id=_Later(len(rows), lambda rows=rows: _match_ids(scored, rows)),
                kickoff_date=kickoffs, p_home=probs[:, 0], p_draw=probs[:, 1], p_away=probs[:, 2],
                request_id=request_id))
            LEDGER.labels(outcome="appended" if appended else "dropped").inc(len(rows))

    def close(self) -> None:
        self.writer.close()


__all__ = ["ServiceLedger"]
