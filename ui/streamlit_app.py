"""A browser page for the forecast API: pick two teams and see the outcome probabilities, browse upcoming matches,
watch the model's live log-loss against the bookmakers.

Why it exists: the BentoML service (``bento_service``) only speaks JSON, and the Dagster/MLflow UIs show
pipelines and runs, not forecasts; this page lets a person try the served model without curl. It is a pure HTTP
client of the running service (no platform imports, no warehouse or registry access), so it shows exactly what
the API answers: GET /model/info, GET /teams, GET /matches, GET /quality and POST /predict.

    time2bet ui [--service-url http://127.0.0.1:3000] [--port 8501]
    # = streamlit run ui/streamlit_app.py, with TIME2BET_SERVICE_URL (default http://127.0.0.1:3000)
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import altair as alt
import httpx
import pandas as pd
import streamlit as st

SERVICE_URL = (os.environ.get("TIME2BET_SERVICE_URL") or "http://127.0.0.1:3000").rstrip("/")
GET_TTL_S = 15          # GET answers are cached this long (the model can swap, batch predictions can refresh)
GET_TIMEOUT_S = 10
PREDICT_TIMEOUT_S = 30
MAX_TABLE_ROWS = 500
OUTCOMES = (("home", "Home win"), ("draw", "Draw"), ("away", "Away win"))
# walk-forward CV metrics of the served model worth a glance (the registry has many more)
SHOWN_METRICS = (("cv.model_log_loss", "log loss"), ("cv.market_log_loss", "market log loss"),
                 ("cv.model_rps", "RPS"), ("cv.model_accuracy", "accuracy"), ("cv.n", "matches"))
# The live-quality charts: (title, the matches counted, (series, column of cumulative_log_loss) pairs). Each
# comparison is on its own matches: the model against the market where odds exist, against the version's Elo-only
# reference (fitted in its training run) where that was scored.
COMPARISONS = (("against the de-margined market", "n_with_odds", (("model", "model_on_odds"), ("market", "market"))),
               ("against the Elo-only reference", "n_elo", (("model", "model_on_elo"), ("Elo-only", "elo"))))
NO_LIVE_QUALITY = ("No live quality yet: run the monitor job (Dagster's `monitor`, after `load_prediction_ledger`) "
                   "once matches the model predicted before kickoff have been played; `time2bet demo` and "
                   "`time2bet simulate` run it.")


class ServiceError(Exception):
    """The service answered with an error, or could not be reached (status None); ``str()`` is for people."""

    def __init__(self, message: str, status: int | None = None, error: str | None = None):
        super().__init__(message)
        self.status, self.error = status, error


def _describe(response: httpx.Response) -> ServiceError:
    """A readable error from a non-2xx answer: the service's JSON {"error", "message", ...} when it has one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("message" in body or "error" in body):
        message = str(body.get("message") or body.get("error"))
        if body.get("closest"):
            message += f" (did you mean: {', '.join(map(str, body['closest']))}?)"
        elif body.get("known_divisions"):
            message += f" (known divisions: {', '.join(map(str, body['known_divisions']))})"
        return ServiceError(message, response.status_code, body.get("error"))
    text = response.text.strip()[:300] or response.reason_phrase
    return ServiceError(f"HTTP {response.status_code}: {text}", response.status_code)


def _request(method: str, url: str, timeout: float, **kwargs) -> Any:
    try:
        response = httpx.request(method, url, timeout=timeout, **kwargs)
    except httpx.TimeoutException:
        raise ServiceError(f"the prediction service at {SERVICE_URL} did not answer within {timeout:.0f} s") from None
    except httpx.HTTPError as exc:
        raise ServiceError(f"the prediction service at {SERVICE_URL} is not reachable ({type(exc).__name__}: "
                           f"{exc}). Start it with `time2bet serve --port 3000`, or point this page elsewhere "
                           "with TIME2BET_SERVICE_URL / `time2bet ui --service-url URL`.") from None
    if response.status_code >= 400:
        raise _describe(response)
    return response.json()


@st.cache_data(ttl=GET_TTL_S, show_spinner=False)
def get(base_url: str, path: str, params: tuple[tuple[str, str], ...] = ()) -> Any:
    """A GET of the service, cached briefly (errors are raised, so they are never cached)."""
    return _request("GET", f"{base_url}{path}", GET_TIMEOUT_S, params=dict(params))


def predict(body: dict) -> dict:
    return _request("POST", f"{SERVICE_URL}/predict", PREDICT_TIMEOUT_S, json=body)


def percent(p: float) -> str:
    return f"{100 * p:.1f}%"


def cumulative_log_loss(rows: list[dict]) -> pd.DataFrame:
    """GET /quality's 'week' rows of one model version, variant and division -> the cumulative log-loss by kickoff
    week: at week w, sum over weeks <= w of (mean x matches) / sum of matches, so each match counts once (a mean of
    weekly means would let a week of 3 matches weigh as much as one of 30). Columns: ``model`` and ``n`` (every
    scored match), ``model_on_odds``, ``market`` and ``n_with_odds`` (the matches with odds), ``model_on_elo``,
    ``elo`` and ``n_elo`` (those with the Elo-only reference); a week whose pair of scores is incomplete adds no
    matches to that pair. Indexed by ``week`` (dates), ascending; empty without rows."""
    columns = ["model", "n", "model_on_odds", "market", "n_with_odds", "model_on_elo", "elo", "n_elo"]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="week"), dtype=float)
    week = pd.to_datetime(frame["week"]).dt.date.rename("week")
    out = {}
    for names, scores, count in ((("model",), ("log_loss",), "n"),
                                 (("model_on_odds", "market"), ("model_log_loss_on_odds", "market_log_loss"),
                                  "n_with_odds"),
                                 (("model_on_elo", "elo"), ("model_log_loss_on_elo", "elo_log_loss"), "n_elo")):
        values = frame[list(scores)].apply(pd.to_numeric, errors="coerce")
        weight = pd.to_numeric(frame[count], errors="coerce").fillna(0)
        weight = weight.where(values.notna().all(axis=1) & (weight > 0), 0)
        total = weight.groupby(week).sum().cumsum()
        out[count] = total
        for name, score in zip(names, scores, strict=True):
            sums = (values[score].fillna(0) * weight).groupby(week).sum().cumsum()
            out[name] = sums / total.where(total > 0)
    return pd.DataFrame(out)[columns].sort_index()


# --- page ---------------------------------------------------------------------------------------------------


def model_sidebar(info: dict) -> None:
    with st.sidebar:
        st.header("Served model")
        st.markdown(f"**{info['name']}** v{info['version']} (`{info['alias']}`)")
        st.caption(f"data version `{info['data_version'][:12]}` · loaded {info['loaded_at'][:19]} UTC · "
                   f"{info['input_features']} input features")
        challenger = info.get("challenger")
        if challenger:
            st.markdown(f"Challenger: **{challenger['name']}** v{challenger['version']} "
                        f"(`{challenger['alias']}`), gets {percent(info['challenger_share'])} of matches")
        else:
            st.caption("No challenger is served.")
        metrics = info.get("metrics") or {}
        shown = [f"{label} {metrics[key]:.4g}" for key, label in SHOWN_METRICS if key in metrics]
        if shown:
            st.caption("Walk-forward CV: " + " · ".join(shown))
        st.divider()
        st.caption(f"Service: {SERVICE_URL}")


def predict_section(divisions: dict[str, str]) -> None:
    st.header("Predict a match")
    division = st.selectbox("Division", list(divisions), format_func=lambda d: f"{d} ({divisions[d]})",
                            key="division")
    try:
        teams = get(SERVICE_URL, "/teams", (("division", division),))["teams"]
    except ServiceError as exc:
        st.error(f"Could not list the teams of {division}: {exc}")
        return
    if len(teams) < 2:
        st.warning(f"The service knows fewer than two teams for {division}.")
        return
    st.caption(f"{len(teams)} teams of {divisions[division]}: the service resolves team names per country, so "
               "divisions of one country share this list.")
    left, right, date_col = st.columns([2, 2, 1])
    home = left.selectbox("Home team", teams, index=0, key="home_team")
    away = right.selectbox("Away team", teams, index=1, key="away_team")
    kickoff = date_col.date_input("Kickoff date (optional)", value=None, key="kickoff_date",
                                  help="Empty: the service picks the next day after both teams' latest match")
    if st.button("Predict", type="primary", key="predict"):
        body = {"division": division, "home_team": home, "away_team": away}
        if kickoff is not None:
            body["kickoff_date"] = kickoff.isoformat()
        try:
            st.session_state["prediction"] = {"request": body, "result": predict(body), "error": None}
        except ServiceError as exc:
            st.session_state["prediction"] = {"request": body, "result": None, "error": str(exc)}
    shown = st.session_state.get("prediction")
    if shown:
        prediction_result(shown)


def prediction_result(shown: dict) -> None:
    with st.container(key="prediction", border=True):
        request = shown["request"]
        if shown["error"]:
            st.error(f"The service refused {request['home_team']} vs {request['away_team']}: {shown['error']}")
            return
        result = shown["result"]
        probabilities = result["probabilities"]
        st.subheader(f"{result['home_team']} vs {result['away_team']}")
        st.caption(f"{result['division']}, kickoff {result['kickoff_date']} · features as of "
                   f"{result['features_as_of']}")
        for column, (key, label) in zip(st.columns(3), OUTCOMES, strict=True):
            column.metric(label, percent(probabilities[key]))
        chart = pd.DataFrame({"outcome": [label for _, label in OUTCOMES],
                              "probability": [probabilities[key] for key, _ in OUTCOMES]})
        st.bar_chart(chart, x="outcome", y="probability", sort=False, horizontal=True, height=180)
        model = result["model"]
        st.caption(f"Answered by {model['name']} v{model['version']} (`{model['alias']}`, variant "
                   f"{result['variant']}), data version `{model['data_version'][:12]}`")


def matches_section(divisions: dict[str, str]) -> None:
    st.header("Upcoming matches")
    division_col, from_col, to_col = st.columns([2, 1, 1])
    choice = division_col.selectbox("Division filter", ["All divisions", *divisions], key="matches_division",
                                    format_func=lambda d: f"{d} ({divisions[d]})" if d in divisions else d)
    date_from = from_col.date_input("From", value=None, key="matches_from")
    date_to = to_col.date_input("To", value=None, key="matches_to")
    params = []
    if choice != "All divisions":
        params.append(("division", choice))
    if isinstance(date_from, dt.date):
        params.append(("date_from", date_from.isoformat()))
    if isinstance(date_to, dt.date):
        params.append(("date_to", date_to.isoformat()))
    try:
        answer = get(SERVICE_URL, "/matches", tuple(params))
    except ServiceError as exc:
        st.error(f"Could not list the upcoming matches: {exc}")
        return
    rows = answer["matches"]
    with st.container(key="matches"):
        st.caption(f"{answer['count']} upcoming matches with the champion's stored predictions"
                   + (f" (first {MAX_TABLE_ROWS} shown)" if len(rows) > MAX_TABLE_ROWS else ""))
        if not rows:
            st.info("No upcoming matches for these filters.")
            return
        table = pd.DataFrame([{
            "Date": r["match_date"], "Division": r["division"], "Home": r["home_team"], "Away": r["away_team"],
            "Home win": percent(r["p_home"]), "Draw": percent(r["p_draw"]), "Away win": percent(r["p_away"]),
            "Model": f"{r['model_name']} v{r['model_version']}",
        } for r in rows[:MAX_TABLE_ROWS]])
        st.table(table, hide_index=True)


def quality_section(divisions: dict[str, str], info: dict) -> None:
    st.header("Live quality")
    try:
        rows = get(SERVICE_URL, "/quality")["rows"]
    except ServiceError as exc:
        if exc.error == "no_live_quality":
            st.info(NO_LIVE_QUALITY)
        else:
            st.error(f"Could not read the live quality: {exc}")
        return
    if not rows:
        st.info(NO_LIVE_QUALITY)
        return
    models = sorted({(r["model_version"], r["variant"]) for r in rows},
                    key=lambda m: (int(m[0]) if m[0].isdigit() else 0, m[0], m[1]))
    served = (info["version"], "champion")
    codes = ["ALL", *sorted({r["division"] for r in rows} - {"ALL"})]
    division_col, model_col = st.columns([2, 1])
    division = division_col.selectbox(
        "Division", codes, key="quality_division",
        format_func=lambda d: "ALL (every division)" if d == "ALL" else f"{d} ({divisions.get(d, d)})")
    model = model_col.selectbox("Model", models, index=models.index(served) if served in models else len(models) - 1,
                                key="quality_model", format_func=lambda m: f"v{m[0]} ({m[1]})")
    cumulative = cumulative_log_loss([r for r in rows if (r["model_version"], r["variant"]) == model
                                      and r["division"] == division])
    with st.container(key="quality"):
        if cumulative.empty or not cumulative["n"].iloc[-1]:
            st.info(f"v{model[0]} ({model[1]}) has no scored match in {division}.")
            return
        last = cumulative.iloc[-1]
        st.caption(f"Cumulative log-loss (lower is better) of v{model[0]} ({model[1]}) on the {int(last['n'])} "
                   f"matches it predicted before kickoff, kickoff weeks {cumulative.index[0]} to "
                   f"{cumulative.index[-1]}; each comparison on the matches it has figures for.")
        model_metric, market_metric, elo_metric = st.columns(3)
        model_metric.metric("Model", f"{last['model']:.4f}", help=f"on {int(last['n'])} matches")
        for column, label, (_, count, pairs) in zip((market_metric, elo_metric),
                                                    ("Market (de-margined)", "Elo-only reference"), COMPARISONS,
                                                    strict=True):
            (_, ours), (_, theirs) = pairs
            if last[count]:
                column.metric(label, f"{last[theirs]:.4f}", delta=f"{last[ours] - last[theirs]:+.4f} model",
                              delta_color="inverse", help=f"on {int(last[count])} matches; the delta is the model's "
                                                          "log-loss minus this one on the same matches")
            else:
                column.metric(label, "–", help="no match with these figures")
        for column, (title, count, pairs) in zip(st.columns(2), COMPARISONS, strict=True):
            column.markdown(f"**Model {title}**")
            if not last[count]:
                column.caption("No match has these figures yet.")
                continue
            column.altair_chart(comparison_chart(cumulative, pairs), width="stretch")


def comparison_chart(cumulative: pd.DataFrame, pairs) -> alt.Chart:
    """Lines with points (a replay of a few weeks has few of them) of the pairs' cumulative log-loss by week."""
    names = {column: name for name, column in pairs}
    long = cumulative.reset_index().melt(id_vars="week", value_vars=list(names), var_name="series",
                                         value_name="log_loss").dropna()
    long["series"] = long["series"].map(names)
    long["week"] = pd.to_datetime(long["week"])
    # a tick on each kickoff week, in UTC like the time unit: a week is a date, whatever the browser's time zone
    weeks = [alt.DateTime(year=w.year, month=w.month, date=w.day, utc=True) for w in cumulative.index]
    return alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("utcyearmonthdate(week):T", title="kickoff week",
                axis=alt.Axis(values=weeks, format="%d %b", labelOverlap=True)),
        y=alt.Y("log_loss:Q", title="cumulative log-loss", scale=alt.Scale(zero=False)),
        color=alt.Color("series:N", title=None, sort=list(names.values())),
        tooltip=[alt.Tooltip("utcyearmonthdate(week):T", title="kickoff week"), "series:N",
                 alt.Tooltip("log_loss:Q", format=".4f")],
    ).properties(height=260)


def main() -> None:
    st.set_page_config(page_title="Time2Bet forecasts", layout="wide")
    st.title("Time2Bet match-outcome forecasts")
    try:
        info = get(SERVICE_URL, "/model/info")
        divisions = get(SERVICE_URL, "/teams")["divisions"]
    except ServiceError as exc:
        if exc.status == 503:
            st.warning(f"The prediction service is not ready yet: {exc}. Reload in a moment.")
        else:
            st.error(f"Cannot use the prediction service: {exc}")
        st.stop()
    model_sidebar(info)
    if not divisions:
        st.warning("The service has no divisions with data.")
        st.stop()
    predict_section(divisions)
    st.divider()
    matches_section(divisions)
    st.divider()
    quality_section(divisions, info)


if __name__ == "__main__":   # `streamlit run` (and AppTest) run this file as __main__; the tests import it too
    main()
