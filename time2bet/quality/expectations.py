"""Great Expectations 1.x suites, run directly (dagster-ge does not support GX 1.x; STACK_NOTES §0.5).

Each validation returns what a person needs when it fails: which expectation, how many rows, and the first
offending rows identified by their key columns; and it writes Data Docs (HTML) to a folder of the caller's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

import pandas as pd

from time2bet.warehouse.schema import MATCH_COLUMNS

MAX_GOALS = 15
_RESULT_STATS = ("_goals_for_", "_goals_against_", "_points_")
ODDS_RANGE = (1.01, 1000.0)


def raw_matches_expectations(gx) -> list:
    """Schema, types, ranges, uniqueness and dates of raw.matches (as loaded, before any modelling)."""
    e = gx.expectations
    odds_cols = [c for c in MATCH_COLUMNS if c.startswith("odds_") and c.endswith(("_home", "_draw", "_away"))]
    return [
        e.ExpectTableColumnsToMatchSet(column_set=[*MATCH_COLUMNS, "source_sha256", "loaded_at"], exact_match=True),
        e.ExpectCompoundColumnsToBeUnique(column_list=["division", "match_date", "home_team", "away_team"]),
        *[e.ExpectColumnValuesToNotBeNull(column=c) for c in
          ("division", "season", "match_date", "home_team", "away_team", "home_goals", "away_goals", "result")],
        e.ExpectColumnValuesToBeBetween(column="home_goals", min_value=0, max_value=MAX_GOALS),
        e.ExpectColumnValuesToBeBetween(column="away_goals", min_value=0, max_value=MAX_GOALS),
        e.ExpectColumnValuesToBeInSet(column="result", value_set=["H", "D", "A"]),
        e.ExpectColumnValuesToBeBetween(column="match_date", min_value=datetime(1990, 7, 1),
                                        max_value=datetime.combine(date.today(), time.max)),
        *[e.ExpectColumnValuesToBeBetween(column=c, min_value=ODDS_RANGE[0], max_value=ODDS_RANGE[1], mostly=0.999)
          for c in odds_cols],
    ]


def feature_expectations(gx, feature_columns: list[str]) -> list:
    """Feature mart: ids unique, outcome valid, features non-null after a team's warm-up, plausible ranges."""
    e = gx.expectations
    return [
        e.ExpectColumnValuesToBeUnique(column="match_id"),
        e.ExpectColumnValuesToBeInSet(column="result", value_set=["H", "D", "A"]),
        e.ExpectColumnValuesToBeBetween(column="home_points_last5", min_value=0, max_value=3),
        e.ExpectColumnValuesToBeBetween(column="away_points_last5", min_value=0, max_value=3),
        e.ExpectColumnValuesToBeBetween(column="home_rest_days", min_value=1, max_value=400, mostly=0.99),
        e.ExpectColumnValuesToBeBetween(column="market_prob_home", min_value=0, max_value=1),
        # after warm-up (10 earlier matches of both teams) the form built from results must be present; shots,
        # corners and cards only exist in the source from the early 2000s on, so their nulls are legitimate
        *[e.ExpectColumnValuesToNotBeNull(column=c, mostly=0.99) for c in feature_columns
          if c.endswith(("_last5", "_last10", "_ewm")) and any(stat in c for stat in _RESULT_STATS)
          and not c.startswith(("h2h_", "home_venue", "away_venue"))],
    ]


def _plain(value):
    return value.item() if hasattr(value, "item") else str(value)


@dataclass
class ValidationReport:
    success: bool
    success_percent: float
    failures: list[dict] = field(default_factory=list)
    docs_index: str | None = None

    def summary(self) -> str:
        if self.success:
            return "all expectations met"
        return "; ".join(f"{f['expectation']}({f['column']}): {f['unexpected_count']} rows, e.g. {f['examples'][:3]}"
                         for f in self.failures[:5])


COLUMN_KWARGS = ("column", "column_list", "column_A", "column_B")


def _referenced_columns(expectation) -> list[str] | None:
    """The columns an expectation reads, or None for a table-level one (the column set, the row count)."""
    kwargs = expectation.configuration.kwargs
    named = [kwargs[k] for k in COLUMN_KWARGS if kwargs.get(k) is not None]
    if not named:
        return None
    return [c for value in named for c in (value if isinstance(value, list) else [value])]


def _parts(frame: pd.DataFrame, expectations: list, key_columns: list[str]) -> list[tuple[str, pd.DataFrame, list]]:
    """(name suffix, frame, expectations) to validate: the table-level expectations on the whole frame, the others
    on the columns they read (and the key columns that name offending rows).

    GX's pandas engine filters the batch's whole frame by a row mask for each column expectation (the rows where
    that column is not null), copying every column each time: raw.matches has 133 columns, the suite reads 60, and
    those copies were two thirds of its time."""
    by_table = [e for e in expectations if _referenced_columns(e) is None]
    by_column = [e for e in expectations if _referenced_columns(e) is not None]
    read = list(dict.fromkeys([c for e in by_column for c in _referenced_columns(e)] + key_columns))
    parts = [("", frame, by_table)] if by_table else []
    if by_column:
        narrow = frame[[c for c in read if c in frame.columns]]
        # text columns as categories: GX copies the rows it tests once per expectation, and a category copies as
        # integer codes where an object column copies every string's reference (raw.matches of the big five:
        # 1.56 s -> 1.14-1.32 s for the suite, before the narrowing above)
        narrow = narrow.astype({c: "category" for c in narrow.columns if narrow[c].dtype == object})
        parts.append((".columns" if by_table else "", narrow, by_column))
    return parts


def validate(frame: pd.DataFrame, suite_name: str, expectations: list, *, key_columns: list[str],
             docs_dir: Path | None = None) -> ValidationReport:
    """Validate a DataFrame; on failure list the offending rows by ``key_columns``; write Data Docs if asked."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        ctx.add_data_docs_site("local", {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
    source = ctx.data_sources.add_pandas("pandas")
    listed = list(expectations(gx) if callable(expectations) else expectations)
    results = []
    for suffix, part, part_expectations in _parts(frame, listed, key_columns):
        name = suite_name + suffix
        batch_def = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=part_expectations))
        definition = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch_def, suite=suite))
        # BASIC counts what fails (and what passes: the Data Docs' figures) in ~60% of COMPLETE's time; only when
        # something fails is the suite run again with COMPLETE, for the offending rows by key (the Data Docs then
        # show both runs, the keyed one on top)
        result = definition.run(batch_parameters={"dataframe": part}, result_format={"result_format": "BASIC"})
        if not result.success:
            result = definition.run(batch_parameters={"dataframe": part}, result_format={
                "result_format": "COMPLETE", "unexpected_index_column_names": key_columns})
        results.append(result)
    if docs_dir is not None:
        ctx.build_data_docs(site_names=["local"])   # from the runs' results, which the context keeps
    failures = []
    for r in (r for result in results for r in result.results):
        if r.success:
            continue
        info = r.result or {}
        examples = info.get("unexpected_index_list") or info.get("partial_unexpected_list") or []
        failures.append({
            "expectation": r.expectation_config.type,
            "column": r.expectation_config.kwargs.get("column") or r.expectation_config.kwargs.get("column_list"),
            "unexpected_count": info.get("unexpected_count", info.get("observed_value")),
            "examples": [dict(x) if isinstance(x, dict) else x for x in examples[:10]],
        })
    failures = json.loads(json.dumps(failures, default=_plain))  # numpy scalars, timestamps -> JSON values
    docs = None
    if docs_dir is not None:
        docs = str(Path(docs_dir) / "index.html")
    evaluated = sum(result.statistics["evaluated_expectations"] for result in results)
    passed = sum(result.statistics["successful_expectations"] for result in results)
    return ValidationReport(success=all(result.success for result in results),
                            success_percent=100.0 * passed / evaluated if evaluated else 100.0,
                            failures=failures, docs_index=docs)
