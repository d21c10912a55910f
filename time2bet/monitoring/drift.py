"""Drift of what is being predicted, against the champion's training window, as an Evidently 0.7 report.

- **feature drift**: every model feature of the period's predicted matches against the same feature over the
  training window (``DataDriftPreset``: a test per feature and ``DriftedColumnsCount``, the share of drifted
  features; the dataset counts as drifted when that share reaches ``drift_share``);
- **prediction drift**: ``p_home``, ``p_draw``, ``p_away`` as predicted in the period against the champion's
  predictions over its training window;
- **target drift**, once results are in: the outcome (H/D/A shares) and the goals per match of the period's played
  matches against the training window's.

Every test is a two-sample test with a p-value (Kolmogorov-Smirnov for numbers, chi-square for the outcome; a
column drifts when p < 0.05), fixed rather than left to Evidently's defaults, which switch to Wasserstein distance
against a reference of over 1,000 rows: with a week's few dozen matches that distance flags nearly every feature
of an unchanged distribution (measured: 82 of 84 on identical normal samples of 3,400 and 60 rows).

Evidently's own API of 0.7 (``evidently.Report``, ``Dataset``, ``DataDefinition``, ``evidently.presets``), not the
legacy ``Report`` under ``evidently.legacy``. The features go through ``DataDriftPreset`` for its page: one sortable,
searchable table under "dataset drift detected or not", where 84 ``ValueDrift`` cards would be a long scroll in
column order. The preset as shipped also computes a ``ValueDrift`` per column, renders its plots and discards them
(its page is the legacy ``DataDriftTable``, which tests every column again): :func:`_feature_drift_preset` drops
those metrics and reads the per-column p-values from the table it renders, and its table plots the details of the
drifted columns only. Same table, same p-values.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

PREDICTIONS = ("p_home", "p_draw", "p_away")
RESULT, GOALS = "result", "goals"
NUM_METHOD, CAT_METHOD = "ks", "chisquare"
THRESHOLD = 0.05          # p-value below which a column has drifted
DRIFT_SHARE = 0.5         # share of drifted features from which the dataset has drifted (Evidently's default)
# A training window has tens of thousands of matches, a week a few dozen: the tests' power comes from the week's
# side, and a fixed random sample of this size of the reference changes a KS p-value by about 1/sqrt(n) of its
# statistic while Evidently's time (and the HTML's size) grows with the reference's rows.
MAX_REFERENCE_ROWS = 5_000


@dataclass(frozen=True)
class DriftResult:
    columns: pd.DataFrame           # kind ('feature', 'prediction', 'target'), column_name, method, statistic
                                    # (the p-value), threshold, drifted
    n_reference: int
    n_current: int
    n_current_played: int
    drift_share: float
    html: Path | None
    skipped: tuple[str, ...] = field(default=())   # columns without values on one side (not testable)

    def _kind(self, kind: str) -> pd.DataFrame:
        return self.columns[self.columns["kind"] == kind]

    @property
    def features_tested(self) -> int:
        return len(self._kind("feature"))

    @property
    def features_drifted(self) -> int:
        return int(self._kind("feature")["drifted"].sum())

    @property
    def share_drifted(self) -> float:
        return self.features_drifted / self.features_tested if self.features_tested else 0.0

    @property
    def dataset_drift(self) -> bool:
        return self.features_tested > 0 and self.share_drifted >= self.drift_share

    @property
    def prediction_drift(self) -> bool | None:
        rows = self._kind("prediction")
        return bool(rows["drifted"].any()) if len(rows) else None

    @property
    def target_drift(self) -> bool | None:
        rows = self._kind("target")
        return bool(rows["drifted"].any()) if len(rows) else None

    def p_values(self, kind: str) -> dict[str, float]:
        rows = self._kind(kind)
        return dict(zip(rows["column_name"], rows["statistic"].astype(float)))


def with_goals(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``goals`` (goals per match: home + away; NaN when not played)."""
    out = frame.copy()
    if {"home_goals", "away_goals"} <= set(out.columns):
        out[GOALS] = pd.to_numeric(out["home_goals"], errors="coerce") + pd.to_numeric(out["away_goals"],
                                                                                        errors="coerce")
    return out


def _testable(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> tuple[list[str], list[str]]:
    ok, skipped = [], []
    for column in columns:
        if column in reference.columns and column in current.columns and reference[column].notna().any() \
                and current[column].notna().any():
            ok.append(column)
        else:
            skipped.append(column)
    return ok, skipped


def _numeric(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return frame[list(columns)].apply(pd.to_numeric, errors="coerce").astype("float64")


def reference_sample(reference: pd.DataFrame, max_rows: int | None = MAX_REFERENCE_ROWS) -> pd.DataFrame:
    """The rows of ``reference`` a report compares with: all of them, or a fixed random sample of ``max_rows`` (the
    same rows every time, in their order). Take it before computing anything per row for the reference (the
    champion's predictions): a report would drop the other rows."""
    if max_rows is None or len(reference) <= max_rows:
        return reference
    return reference.sample(n=max_rows, random_state=0).sort_index()


@cache
def _feature_drift_preset() -> type:
    """``DataDriftPreset`` without the per-column ``ValueDrift`` metrics whose widgets it discards, and whose table
    draws the two plots of a column's details (its values over the rows, its distribution against the reference)
    only for the columns that drift: the plots of every column were three quarters of the report's time (plotly
    builds and validates ~180 figures for 84 features), and a column that does not drift is read from its row (the
    reference and current histograms, the test, the p-value), which every column keeps. Its ``drift_table`` (set
    when the report renders it, during ``Report.run``) holds each column's legacy ``ColumnDataDriftMetrics``, from
    the same test with the same method and threshold. Classes made once, on first use: Evidently's import costs
    seconds and only the drift asset needs it."""
    from evidently.core.report import _default_input_data_generator
    from evidently.legacy.metrics import DataDriftTable, DatasetDriftMetric
    from evidently.legacy.metrics.data_drift.data_drift_table import DataDriftTableRenderer
    from evidently.legacy.renderers.base_renderer import default_renderer
    from evidently.legacy.renderers.html_widgets import RichTableDataRow, RowDetails
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    class DriftedDetailsTable(DataDriftTable):
        class Config:
            type_alias = "time2bet:metric:DriftedDetailsTable"

    @default_renderer(wrap_type=DriftedDetailsTable)
    class DriftedDetailsRenderer(DataDriftTableRenderer):
        def _generate_column_params(self, column_name, data, agg_data, current_fi=None, reference_fi=None):
            if data.drift_detected or data.column_type != "num":
                return super()._generate_column_params(column_name, data, agg_data, current_fi, reference_fi)
            current, reference = data.current.small_distribution, data.reference.small_distribution
            if current is None or reference is None:
                return None
            return RichTableDataRow(details=RowDetails(), fields={   # a row that unfolds to nothing
                "column_name": column_name, "column_type": data.column_type, "stattest_name": data.stattest_name,
                "reference_distribution": {"x": list(reference.x), "y": list(reference.y)},
                "current_distribution": {"x": list(current.x), "y": list(current.y)},
                "data_drift": "Not Detected", "drift_score": round(data.drift_score, 6)})

    class FeatureDriftPreset(DataDriftPreset):
        def generate_metrics(self, context):
            return [m for m in super().generate_metrics(context) if not isinstance(m, ValueDrift)]

        def render(self, context, child_widgets=None):
            tests = {"stattest": self.method, "cat_stattest": self.cat_method, "num_stattest": self.num_method,
                     "text_stattest": self.text_method, "per_column_stattest": self.per_column_method,
                     "stattest_threshold": self.threshold, "cat_stattest_threshold": self.cat_threshold,
                     "num_stattest_threshold": self.num_threshold, "text_stattest_threshold": self.text_threshold,
                     "per_column_stattest_threshold": self.per_column_threshold}
            # what DataDriftPreset.render draws, with the table above in place of DataDriftTable
            summary = context.get_legacy_metric(DatasetDriftMetric(columns=self.columns, drift_share=self.drift_share,
                                                                   **tests), _default_input_data_generator, None)[1]
            table, widgets = context.get_legacy_metric(DriftedDetailsTable(columns=self.columns, **tests),
                                                       _default_input_data_generator, None)
            object.__setattr__(self, "drift_table", table)   # a pydantic model: no new fields by assignment
            return summary + widgets

    return FeatureDriftPreset


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, *, features: Sequence[str],
                 html_path: Path | str | None, drift_share: float = DRIFT_SHARE,
                 max_reference_rows: int | None = MAX_REFERENCE_ROWS) -> DriftResult:
    """Feature, prediction and target drift of ``current`` (the period's predicted matches: features, ``p_*`` as
    predicted, ``result``/``goals`` where played) against ``reference`` (the training window, with the champion's
    ``p_*`` on it; a fixed random sample of ``max_reference_rows`` of it when larger, the same rows every time);
    writes the Evidently report's HTML to ``html_path`` when given."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    reference, current = with_goals(reference_sample(reference, max_reference_rows)), with_goals(current)
    tested, skipped = _testable(reference, current, features)
    predictions, skipped_p = _testable(reference, current, PREDICTIONS)
    targets, skipped_t = _testable(reference, current, (RESULT, GOALS))
    numeric = [*tested, *predictions, *([GOALS] if GOALS in targets else [])]
    categorical = [RESULT] if RESULT in targets else []

    def dataset(frame: pd.DataFrame):
        data = _numeric(frame, numeric)
        for column in categorical:
            data[column] = frame[column].astype(object).where(frame[column].notna(), None)
        return Dataset.from_pandas(data.reset_index(drop=True),
                                   data_definition=DataDefinition(numerical_columns=numeric,
                                                                  categorical_columns=categorical))

    def row(kind: str, column: str, method: str, p: float) -> dict:
        return {"kind": kind, "column_name": column, "method": method, "statistic": p, "threshold": THRESHOLD,
                "drifted": bool(p < THRESHOLD)}

    kinds = {**dict.fromkeys(predictions, "prediction"), **dict.fromkeys(targets, "target")}
    preset = None
    metrics = []
    if tested:
        preset = _feature_drift_preset()(columns=tested, num_method=NUM_METHOD, cat_method=CAT_METHOD,
                                         threshold=THRESHOLD, drift_share=drift_share)
        metrics.append(preset)
    metrics += [ValueDrift(column=c, method=NUM_METHOD, threshold=THRESHOLD) for c in predictions]
    metrics += [ValueDrift(column=c, method=CAT_METHOD if c == RESULT else NUM_METHOD, threshold=THRESHOLD)
                for c in targets]
    rows, html = [], None
    if metrics:
        with warnings.catch_warnings(), np.errstate(all="ignore"):   # its correlation widgets divide by zero
            warnings.simplefilter("ignore", RuntimeWarning)              # on constant columns: noise, not results
            snapshot = Report(metrics, include_tests=False).run(current_data=dataset(current),
                                                                reference_data=dataset(reference))
        if preset is not None:
            by_column = preset.drift_table.drift_by_columns
            rows += [row("feature", c, NUM_METHOD, float(by_column[c].drift_score)) for c in tested]
        for metric in json.loads(snapshot.json())["metrics"]:
            config = metric.get("config", {})
            if str(config.get("type", "")).endswith(":ValueDrift"):
                rows.append(row(kinds[config["column"]], config["column"], config.get("method"), float(metric["value"])))
        if html_path is not None:
            html = Path(html_path)
            html.parent.mkdir(parents=True, exist_ok=True)
            snapshot.save_html(str(html))
    columns = pd.DataFrame(rows, columns=["kind", "column_name", "method", "statistic", "threshold", "drifted"])
    played = int(current[RESULT].notna().sum()) if RESULT in current.columns else 0
    return DriftResult(columns=columns, n_reference=len(reference), n_current=len(current), n_current_played=played,
                       drift_share=drift_share, html=html, skipped=(*skipped, *skipped_p, *skipped_t))
