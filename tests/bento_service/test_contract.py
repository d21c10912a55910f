"""The OpenAPI contract, checked by schemathesis against the real `bentoml serve` of the session (conftest).

The schema is the one the server publishes for our routes: the mounted FastAPI app's ``/openapi.json``
(BentoML's own ``/docs.json`` merges it with BentoML's infrastructure routes). Every operation in it is fuzzed,
with every check schemathesis has (``--checks all``: none excluded, no operation skipped): schema-valid and
schema-invalid requests (explicit examples, the coverage phase's boundary values, random ones) and sequences that
follow the API's links; every response must pass: no 5xx, a documented status code, a documented content type, a
body that matches the declared response model (``ErrorResponse`` for every 4xx), a schema-invalid request refused,
a schema-valid request accepted, a 405 with a correct ``Allow`` for an undocumented method; plus ours: every 4xx
is JSON saying what is wrong (``error`` and ``message``).

The schema says what the server accepts: division codes are an enum of the platform's divisions, team names have
a character that is not whitespace and at most 64, dates are ISO dates, match and job ids are 32 hex digits. What
no schema can say is the data: whether a team exists in a division's country, whether two names are one team,
whether a kickoff is after both teams' latest match, whether a division has data in the snapshot, whether
date_from is after date_to. Those well-formed requests get a documented 422 naming the reason (DATA_REFUSALS), so
for the operations that can give one, ``positive_data_acceptance`` also accepts a 422, and
``refused_only_for_the_data`` checks that such a 422 is one of those reasons and never a shape error (a type, a
length, a pattern, a format). A well-formed request for an id nobody has (match, job) is a 404, which the check
accepts everywhere.

Bounded for CI: a fixed number of examples per operation (MAX_EXAMPLES), no deadline (the server is shared with
the other tests), derandomized so every run sends the same requests; test_the_run_was_full checks how many
cases were run.
"""

from __future__ import annotations

import collections
import re
import unicodedata

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from pydantic import ValidationError
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES

from bento_service.schemas import MAX_BATCH, NOT_BLANK, MatchRequest
from bento_service.service import app
from time2bet.football import DIVISIONS

OPENAPI_PATH = "/openapi.json"
MAX_EXAMPLES = 250       # random examples per operation (fuzzing phase); the coverage phase adds its own
MIN_CASES = 2_000        # cases in all (test_the_run_was_full)
STATEFUL_SCENARIOS = 30

# The refusals a schema-valid request can get, by operation: they depend on the data, not the request's shape.
PREDICT_DATA = {"unknown_team", "unknown_division", "same_team", "kickoff_not_after_latest_match",
                "markets_unavailable"}
DATA_REFUSALS = {"POST /predict": PREDICT_DATA, "POST /predict/batch": PREDICT_DATA,
                 "GET /matches": {"unknown_division", "empty_date_range"}, "GET /teams": {"unknown_division"}}
CONFIG = SchemathesisConfig.from_dict({"operations": [
    {"include-name": name, "checks": {"positive_data_acceptance": {
        "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "422"]}}}
    for name in DATA_REFUSALS]})

# The operations are collected from the app's own schema (the mounted FastAPI app, imported, not served), because
# pytest needs them at collection time, before the session's server exists; `schemathesis.pytest.from_fixture`
# would load them from the server at run time, but 4.32.5 fails under pytest 9.2 (it sets the removed
# `Function._nodeid`). test_the_server_publishes_this_schema pins the two together: what is fuzzed is what the
# server publishes.
APP_SCHEMA = app.openapi()
schema = schemathesis.openapi.from_dict(APP_SCHEMA, config=CONFIG)
OPERATIONS = [f"{method.upper()} {path}" for path, methods in APP_SCHEMA["paths"].items() for method in methods]
CASES: collections.Counter[str] = collections.Counter()   # cases run, by operation (test_openapi_contract)
SETTINGS = hypothesis.settings(deadline=None, derandomize=True, database=None,
                               suppress_health_check=list(HealthCheck))


def _content_type(response) -> str:
    value = response.headers.get("content-type", [""])
    return value[0] if isinstance(value, list) else value


def errors_say_what_is_wrong(ctx, response, case) -> None:
    """Every 4xx is a JSON object with a machine-readable ``error`` and a human ``message``."""
    if not 400 <= response.status_code < 500:
        return
    content_type = _content_type(response)
    assert content_type.startswith("application/json"), f"{response.status_code} is {content_type!r}, not JSON"
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    return


def refused_only_for_the_data(ctx, response, case) -> None:
    """A schema-valid request refused with a 422 is refused for the data it names (DATA_REFUSALS), never for its
    shape: what positive_data_acceptance lets through for these operations, narrowed to what the schema cannot
    say."""
    meta = case.meta
    if response.status_code != 422 or meta is None or not meta.generation.mode.is_positive:
        return
    reason = response.json().get("error")
    allowed = DATA_REFUSALS.get(case.operation.label, set())
    assert reason in allowed, (f"a schema-valid request to {case.operation.label} was refused with {reason!r}: "
                               f"the schema allows what the server refuses ({response.json().get('message')})")
    return


CHECKS = [errors_say_what_is_wrong, refused_only_for_the_data]


def test_the_server_publishes_this_schema(client):
    published = client.get(OPENAPI_PATH)
    assert published.status_code == 200, published.text
    assert published.json() == APP_SCHEMA


@pytest.fixture(scope="module")
def fixture_body(batch_features) -> dict:
    row = batch_features.iloc[0]
    return {"home_team": row["home_team"], "away_team": row["away_team"], "division": row["division"],
            "kickoff_date": str(row["match_date"])[:10]}


def _checked(operation, response, status: int | tuple[int, ...], error: str | None = None) -> dict:
    """The response has the expected status, says what is wrong, and matches what the schema declares for it."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.text[:500]
    body = response.json()
    assert body["error"] and body["message"], body
    if error is not None:
        assert body["error"] == error, body
    method, path = operation
    declared = APP_SCHEMA["paths"][path][method.lower()]["responses"]
    assert str(response.status_code) in declared, f"{response.status_code} is not documented for {method} {path}"
    schema[path][method].validate_response(response)   # raises if the body does not match the declared model
    return body


# The list of bad inputs, each a documented 4xx with a JSON body saying what is wrong.
@pytest.mark.parametrize("change, error", [
    ({"division": "XX9"}, "unknown_division"),
    ({"kickoff_date": "2025-13-45"}, "value_error"),
    ({"kickoff_date": "2025-W10-6"}, "value_error"),     # an ISO week date: not the schema's format: date
    ({"kickoff_date": 20250301}, "value_error"),
    ({"kickoff_date": "yesterday"}, "value_error"),
    ({"home_team": 42}, "string_type"),
    ({"division": ["E0"]}, "string_type"),
    ({"extra": 1}, "extra_forbidden"),
    ({"home_team": "A" * 100_000}, "string_too_long"),
    ({"home_team": "  "}, "string_too_short"),
    ({"markets": "yes"}, "bool_type"),
    ({"markets": ["over_2_5"]}, "bool_type"),
])
def test_bad_match_requests(client, fixture_body, change, error):
    got = client.post("/predict", json={**fixture_body, **change})
    _checked(("POST", "/predict"), got, 422, error)
    assert len(got.content) < 10_000   # the input is never echoed back whole


def test_unknown_team_suggests_the_closest_names(client, fixture_body):
    typo = fixture_body["home_team"][:-1]
    body = _checked(("POST", "/predict"), client.post("/predict", json={**fixture_body, "home_team": typo}), 422,
                    "unknown_team")
    assert fixture_body["home_team"] in body["closest"]


def test_same_team_twice(client, fixture_body):
    same = {**fixture_body, "away_team": fixture_body["home_team"]}
    _checked(("POST", "/predict"), client.post("/predict", json=same), 422, "same_team")


def test_batch_bounds_and_the_offending_index(client, fixture_body):
    _checked(("POST", "/predict/batch"), client.post("/predict/batch", json={"matches": []}), 422, "too_short")
    too_many = {"matches": [fixture_body] * (MAX_BATCH + 1)}
    _checked(("POST", "/predict/batch"), client.post("/predict/batch", json=too_many), (413, 422))
    bad = {"matches": [fixture_body, {**fixture_body, "division": "XX9"}]}
    body = _checked(("POST", "/predict/batch"), client.post("/predict/batch", json=bad), 422, "unknown_division")
    assert body["index"] == 1


@pytest.mark.parametrize("path", ["/predict", "/predict/batch", "/jobs"])
def test_undecodable_body_is_a_400_in_our_error_shape(client, path):
    # found by schemathesis: FastAPI answered {"detail": "There was an error parsing the body"} (undocumented)
    got = client.post(path, content=b'{"home_team": "\xff\xfe"}', headers={"content-type": "application/json"})
    _checked(("POST", path), got, (400, 422))


@pytest.mark.parametrize("query", ["date_to=0", "date_from=1700000000", "date_from=2025-W10-6", "date_to=2025-3-1"])
def test_matches_refuses_dates_that_are_not_iso_dates(client, query):
    # found by schemathesis: ?date_to=0 was read as a Unix timestamp (1970-01-01) and answered 200
    _checked(("GET", "/matches"), client.get(f"/matches?{query}"), 422, "value_error")


def test_the_name_pattern_is_what_the_server_strips():
    """A name is blank for the schema (NOT_BLANK does not match) exactly when the server strips it to nothing."""
    candidates = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF
                  and (chr(c).isspace() or unicodedata.category(chr(c)) in ("Zs", "Zl", "Zp", "Cc", "Cf"))]
    assert len(candidates) > 100
    for char in candidates:
        refused = True
        try:
            MatchRequest(home_team=char * 3, away_team="b", division="E0")
            refused = False
        except ValidationError:
            pass
        assert (re.search(NOT_BLANK, char * 3) is None) == refused, hex(ord(char))


def test_every_division_code_of_the_schema_is_served_or_refused_as_unknown(client):
    """The schema's enum is the platform's divisions: each is one the snapshot has data for (200) or a documented
    422 unknown_division listing those it has, on every route that takes a division."""
    served = client.get("/teams").json()["divisions"]
    assert served and set(served) <= set(DIVISIONS)
    enum = APP_SCHEMA["components"]["schemas"]["MatchRequest"]["properties"]["division"]["enum"]
    assert enum == list(DIVISIONS)
    for code in enum:
        for path in ("/teams", "/matches"):
            got = client.get(path, params={"division": code})
            if code in served:
                assert got.status_code == 200, got.text[:300]
            else:
                body = _checked(("GET", path), got, 422, "unknown_division")
                assert sorted(body["known_divisions"]) == sorted(served)


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/no/such/path", 404), ("POST", "/nothing-here", 404), ("GET", "/predict/a%2Fb", 404),
    ("GET", "/jobs/x/y/z", 404), ("DELETE", "/predict", 405), ("PUT", "/matches", 405), ("POST", "/livez", 405),
    ("POST", "/readyz", 405), ("POST", "/docs.json", 405),
])
def test_every_path_answers_json(client, method, path, status):
    # a path matching no route of ours was answered by BentoML's own app, outside ours: a text/plain 404 (and 405
    # for BentoML's own routes); errors.Unrouted sends them to our app
    got = client.request(method, path)
    assert got.status_code == status, got.text[:300]
    assert _content_type(got).startswith("application/json"), got.headers
    reason = {404: "not_found", 405: "method_not_allowed"}[status]
    assert got.json()["error"] == reason and got.json()["message"], got.text
    if status == 405:
        assert got.headers["allow"], got.headers


def test_an_unhandled_exception_is_a_json_500():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from bento_service import errors

    bare = FastAPI()
    errors.install(bare)

    @bare.get("/boom")
    def boom():
        raise RuntimeError("a bug")

    got = TestClient(bare, raise_server_exceptions=False).get("/boom")
    assert got.status_code == 500 and got.json()["error"] == "internal_error", got.text
    assert "RuntimeError" in got.json()["message"]
    assert TestClient(bare).get("/nothing").json()["error"] == "not_found"   # served alone: its own router's 404


def test_bentoml_routes_and_redirects_are_unchanged(client):
    assert client.get("/livez").status_code == 200 and client.get("/readyz").status_code == 200
    assert client.get("/docs.json").json()["paths"]   # BentoML's merged schema
    assert client.get("/").status_code == 200         # BentoML's index page
    for slashed, target in (("/matches/", "/matches"), ("/livez/", "/livez")):   # redirects: ours and BentoML's
        got = client.get(slashed)
        assert got.status_code == 307 and got.headers["location"].endswith(target), (slashed, got.status_code)


def test_wrong_method_says_what_is_wrong(client):
    got = client.delete("/predict")
    assert got.status_code == 405 and got.json()["error"] == "method_not_allowed" and "POST" in got.headers["allow"]


def test_stored_predictions_have_an_rfc3339_timestamp(client):
    # found by schemathesis: predicted_at was a naive timestamp, not the schema's date-time
    body = client.get("/matches").json()
    assert body["count"] > 0
    assert all(m["predicted_at"].endswith(("Z", "+00:00")) for m in body["matches"])
    schema["/matches"]["GET"].validate_response(client.get("/matches"))


def test_successful_responses_match_the_schema(client, fixture_body, batch_features):
    """Random names rarely exist, so the fuzzer mostly sees 4xx: the 200s of every route, checked here."""
    match_id = batch_features.iloc[0]["match_id"]
    for (method, path), response in [
        (("POST", "/predict"), client.post("/predict", json=fixture_body)),
        (("POST", "/predict"), client.post("/predict", json={k: v for k, v in fixture_body.items()
                                                                if k != "kickoff_date"})),
        (("POST", "/predict/batch"), client.post("/predict/batch", json={"matches": [fixture_body] * 3})),
        (("POST", "/predict"), client.post("/predict", json={**fixture_body, "markets": True})),
        (("POST", "/predict/batch"), client.post("/predict/batch", json={"matches": [fixture_body] * 2,
                                                                         "markets": True})),
        (("GET", "/predict/{match_id}"), client.get(f"/predict/{match_id}")),
        (("GET", "/matches"), client.get("/matches", params={"division": fixture_body["division"]})),
        (("GET", "/model/info"), client.get("/model/info")),
        (("GET", "/teams"), client.get("/teams", params={"division": fixture_body["division"]})),
    ]:
        assert response.status_code == 200, (path, response.text[:500])
        schema[path][method].validate_response(response)


@schema.parametrize()
@hypothesis.settings(SETTINGS, max_examples=MAX_EXAMPLES)
def test_openapi_contract(case, server_url):
    CASES[case.operation.label] += 1
    case.call_and_validate(base_url=server_url, timeout=30, additional_checks=CHECKS)


def test_stateful_links(server_url):
    """Sequences that follow the API's links (e.g. POST /jobs -> GET /jobs/{job_id} -> .../result), with the same
    checks: what one response hands out, the next request can use."""
    machine = schema.as_state_machine()

    class Links(machine):
        def get_call_kwargs(self, case):
            return {"base_url": server_url, "timeout": 30}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            __tracebackhide__ = True
            CASES["stateful"] += 1
            case.validate_response(response, additional_checks=[*CHECKS, *(additional_checks or [])],
                                   transport_kwargs=kwargs or None)

    Links.run(settings=hypothesis.settings(SETTINGS, max_examples=STATEFUL_SCENARIOS, stateful_step_count=4))


def test_the_run_was_full():
    """Every operation was fuzzed, MIN_CASES cases in all (when the whole module runs)."""
    if not CASES:
        pytest.skip("the contract tests did not run")
    assert set(OPERATIONS) <= set(CASES), f"operations not fuzzed: {set(OPERATIONS) - set(CASES)}"
    assert sum(CASES.values()) >= MIN_CASES, dict(CASES)
    print(f"schemathesis cases: {sum(CASES.values())} {dict(CASES)}")
