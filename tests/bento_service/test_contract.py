"""The OpenAPI contract, checked by schemathesis against the real `bentoml serve` of the session (conftest).

The schema is the one the server publishes for our routes: the mounted FastAPI app's ``/openapi.json``
(BentoML's own ``/docs.json`` merges it with BentoML's infrastructure routes). Every operation in it is fuzzed
(schema-valid and schema-invalid requests) and every response must pass schemathesis' checks: no 5xx, a
documented status code, a documented content type, a body that matches the declared response model (the
``ErrorResponse`` model for every 4xx), plus ours: every 4xx is JSON saying what is wrong (``error`` and
``message``).

Nothing is excluded from the schema: the infrastructure routes BentoML serves (/livez, /readyz, /metrics,
which is Prometheus text) are not in ``/openapi.json`` at all. One check is left out, ``positive_data_acceptance``
(a schema-valid request must be accepted): whether a team or a division exists, whether a kickoff date is
after both teams' latest match, whether a match id or a job id is known, depends on the data and cannot be
written in the schema; those requests get a documented 4xx (422 or 404) with a JSON body saying what is
wrong, which the other checks verify.

Bounded for CI: a fixed number of examples per operation, no deadline (the server is shared with the other
tests), derandomized so every run sends the same requests.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.specs.openapi.checks import positive_data_acceptance

from bento_service.schemas import MAX_BATCH
from bento_service.service import app

OPENAPI_PATH = "/openapi.json"
MAX_EXAMPLES = 25
STATEFUL_SCENARIOS = 20
EXCLUDED_CHECKS = [positive_data_acceptance]   # see the module docstring: validity of names/ids is data, not schema

# The operations are collected from the app's own schema (the mounted FastAPI app, imported, not served), because
# pytest needs them at collection time, before the session's server exists; `schemathesis.pytest.from_fixture`
# would load them from the server at run time, but 4.32.5 fails under pytest 9.2 (it sets the removed
# `Function._nodeid`). test_the_server_publishes_this_schema pins the two together: what is fuzzed is what the
# server publishes.
APP_SCHEMA = app.openapi()
schema = schemathesis.openapi.from_dict(APP_SCHEMA)


def errors_say_what_is_wrong(ctx, response, case) -> None:
    """Every 4xx is a JSON object with a machine-readable ``error`` and a human ``message``."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/json"), f"{response.status_code} is {content_type!r}, not JSON"
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    return None


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


def test_wrong_method_says_what_is_wrong(client):
    # (a path matching no route at all is answered by BentoML's own app, outside ours: a plain-text 404)
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
        (("GET", "/predict/{match_id}"), client.get(f"/predict/{match_id}")),
        (("GET", "/matches"), client.get("/matches", params={"division": fixture_body["division"]})),
        (("GET", "/model/info"), client.get("/model/info")),
        (("GET", "/teams"), client.get("/teams", params={"division": fixture_body["division"]})),
    ]:
        assert response.status_code == 200, (path, response.text[:500])
        schema[path][method].validate_response(response)


@schema.parametrize()
@hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck))
def test_openapi_contract(case, server_url):
    case.call_and_validate(base_url=server_url, timeout=30, excluded_checks=EXCLUDED_CHECKS,
                           additional_checks=[errors_say_what_is_wrong])


def test_stateful_links(server_url):
    """Sequences that follow the API's links (e.g. POST /jobs -> GET /jobs/{job_id} -> .../result), with the same
    checks: what one response hands out, the next request can use."""
    machine = schema.as_state_machine()

    class Links(machine):
        def get_call_kwargs(self, case):
            return {"base_url": server_url, "timeout": 30}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            __tracebackhide__ = True
            case.validate_response(response, excluded_checks=EXCLUDED_CHECKS,
                                   additional_checks=[errors_say_what_is_wrong, *(additional_checks or [])],
                                   transport_kwargs=kwargs or None)

    Links.run(settings=hypothesis.settings(max_examples=STATEFUL_SCENARIOS, stateful_step_count=4, deadline=None,
                                           derandomize=True, database=None, suppress_health_check=list(HealthCheck)))
