"""Schemathesis against /openapi.json of a real server: whatever it sends, never a 5xx.

The server runs the echo model, and half the generated model ids are replaced
by the real one, so load, unload, infer and logs run for real, not only their
404s. Bounded in time: a few examples per operation, a deadline per example,
and a timeout per request. Streams that never end on their own are not
reached: a followed log is asked for unfollowed, and there are no env
templates (an env's build-log stream is a 404).
"""

import itertools

import pytest
from hypothesis import HealthCheck, settings

from support import start_server

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402

CATALOG = [{"id": "echo", "architecture": "echo"}]
TURN = itertools.count()  # every other generated model id becomes the real one


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schemathesis")
    (tmp / "no-envs").mkdir()
    server = start_server(tmp, CATALOG, envs_dir=tmp / "no-envs",
                          env={"VENVSERVE_REQUEST_TIMEOUT_S": "10", "VENVSERVE_MAX_UPLOAD_MB": "2"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=6, deadline=30_000, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case):
    params = case.path_parameters or {}
    if "model_id" in params and next(TURN) % 2:
        params["model_id"] = "echo"  # a real id: the route does its work, not only its 404
    if case.query and "follow" in case.query:
        case.query["follow"] = False  # a followed log never ends on its own
    if isinstance(case.body, dict) and params.get("model_id") == "echo":  # the echo backend's test switches would hang or kill it
        for key in ("hang", "crash", "sleep_s", "raise"):
            case.body.pop(key, None)
    case.call_and_validate(checks=[not_a_server_error], timeout=20)
