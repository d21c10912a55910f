"""Source integrity: a new version of a season file may add matches and correct other fields, but never
silently drop or rewrite a match that is already loaded.

A site that re-publishes a file cut short, or with a result typed over, would otherwise replace good rows in the
warehouse (partitions are replaced whole). So a new version is compared with the rows it would replace: every
loaded match must still be there with the same date, teams and full-time score. If one is not, the file is
quarantined (landed in the raw zone, not loaded) until a good version comes or someone accepts the rewrite
explicitly (``time2bet ingest --accept-rewrite 'F1|2018-19'``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import pandas as pd

IDENTITY = ("match_date", "home_team", "away_team", "home_goals", "away_goals")
LISTED = 5   # matches named per problem in a message


def _key(row) -> tuple:
    date = pd.Timestamp(row[0]).date().isoformat() if not pd.isna(row[0]) else None
    goals = tuple(None if pd.isna(g) else int(g) for g in row[3:])
    return (date, row[1], row[2], *goals)


def _match(key: tuple) -> str:
    date, home, away, hg, ag = key
    return f"{date} {home} {hg}-{ag} {away}"


@dataclass(frozen=True)
class RewriteCheck:
    """What a new version would do to the loaded matches of its partition."""

    loaded: int
    offered: int
    dropped: tuple[str, ...]   # loaded matches with no counterpart in the new version
    changed: tuple[str, ...]   # "old -> new" for a loaded match whose date or score differs

    @property
    def safe(self) -> bool:
        return not self.dropped and not self.changed

    def describe(self) -> str:
        parts = []
        if self.offered < self.loaded:
            parts.append(f"{self.offered} matches where {self.loaded} are loaded")
        for what, items in (("drops", self.dropped), ("changes", self.changed)):
            if items:
                more = f" and {len(items) - LISTED} more" if len(items) > LISTED else ""
                parts.append(f"{what} {len(items)} loaded match(es): {'; '.join(items[:LISTED])}{more}")
        return "; ".join(parts) or "keeps every loaded match"


def check_rewrite(loaded: pd.DataFrame, offered: pd.DataFrame) -> RewriteCheck:
    """Compare the loaded rows of a partition with a new version's rows (both with the IDENTITY columns).

    A loaded match is kept when the new version has the same date, teams and score. Otherwise it is *changed*
    when the new version has an unmatched match of the same home and away team (a moved date, a corrected
    score), and *dropped* when it has none."""
    old = Counter(_key(r) for r in loaded.loc[:, list(IDENTITY)].itertuples(index=False, name=None))
    new = Counter(_key(r) for r in offered.loc[:, list(IDENTITY)].itertuples(index=False, name=None))
    missing, extra = old - new, new - old
    spare: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for key, n in sorted(extra.items(), key=lambda kv: str(kv[0])):
        spare[(key[1], key[2])] += [key] * n
    dropped, changed = [], []
    for key, n in sorted(missing.items(), key=lambda kv: str(kv[0])):
        for _ in range(n):
            candidates = spare.get((key[1], key[2]))
            if candidates:
                changed.append(f"{_match(key)} -> {_match(candidates.pop(0))}")
            else:
                dropped.append(_match(key))
    return RewriteCheck(int(sum(old.values())), int(sum(new.values())), tuple(dropped), tuple(changed))
