"""The sealed prediction ledger: every served and batch prediction, append-only, hash-chained per writer.

- :mod:`~time2bet.ledger.record`: what a record holds (:class:`LedgerRecord`; a batch request is one record whose
  rows are columns);
- :mod:`~time2bet.ledger.chain`: the files (``<ledger_dir>/<yyyy-mm-dd>/<writer-id>.jsonl``) and the hash chain;
- :mod:`~time2bet.ledger.writer`: :class:`LedgerWriter`, O(1) appends on the request path, batched durable writes
  off it, bounded, with drop counters;
- :mod:`~time2bet.ledger.verify`: heads, anchors kept outside the ledger, and :func:`verify`;
- :mod:`~time2bet.ledger.reader`: :func:`read_records`, one row per prediction, for the loading asset.

Floor layer: imports only the floor (nothing of the platform at present beyond its own modules).
"""

from time2bet.ledger.chain import GENESIS, segment_path, segments
from time2bet.ledger.reader import COLUMNS, read_records
from time2bet.ledger.record import (
    KickoffDays,
    LedgerRecord,
    PairText,
    match_id,
    match_key,
    new_prediction_id,
    record_to_dict,
    utc_now,
)
from time2bet.ledger.verify import (
    Head,
    Problem,
    Report,
    anchor,
    anchors_from_mapping,
    anchors_to_mapping,
    heads,
    load_anchors,
    merge_anchors,
    save_anchors,
    verify,
)
from time2bet.ledger.writer import LedgerWriter, service_writer_id

__all__ = [
    "COLUMNS", "GENESIS", "Head", "KickoffDays", "LedgerRecord", "LedgerWriter", "PairText", "Problem", "Report",
    "anchor", "anchors_from_mapping", "anchors_to_mapping", "heads", "load_anchors", "match_id", "match_key",
    "merge_anchors", "new_prediction_id", "read_records", "record_to_dict", "save_anchors",
    "segment_path", "segments", "service_writer_id", "utc_now", "verify",
]
