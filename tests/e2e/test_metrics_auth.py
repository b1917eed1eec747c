"""Operations: bearer-key auth, Prometheus metrics, the access log. In-process apps (fast)."""

import io
import json
import logging
import re

import pytest
from fastapi.testclient import TestClient

from support import render_lines
from venvserve.api.app import create_app
from venvserve.api.auth import AuthMiddleware
from venvserve.logs import JsonFormatter
from venvserve.settings import Settings

USER = {"Authorization": "Bearer user-key"}
ADMIN = {"Authorization": "Bearer admin-key"}
CATALOG = [{"id": "echo", "architecture": "echo"}, {"id": "echo2", "architecture": "echo"}]


def make_app(tmp_path, **keys):
    catalog = tmp_path / "models.json"
    tmp_path.mkdir(parents=True, exist_ok=True)
    catalog.write_text(json.dumps(CATALOG))
    settings = Settings.load(catalog=catalog, data_dir=tmp_path / "data", envs_dir=tmp_path / "no-envs", **keys)
    return create_app(settings)


@pytest.fixture
def client(tmp_path):
    # One running app at a time: gateways of one process share their runtime dir, and
    # the first to stop removes it.
    app = make_app(tmp_path / "app", api_key="user-key", admin_key="admin-key")
    with TestClient(app, base_url="http://localhost") as client:
        yield client


def error_code(response) -> str:
    return response.json()["error"]["code"]


def metric(text: str, name: str, **labels) -> float | None:
    """The value of one sample of the exposition text, labels matched exactly."""
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if found == {k: str(v) for k, v in labels.items()}:
            return float(m.group(3))
    return None


# -- auth -------------------------------------------------------------------------

def test_open_routes_need_no_key(client):
    for path in ("/healthz", "/", "/ui/app.js", "/ui/style.css", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_v1_and_metrics_need_the_api_key(client):
    for path in ("/v1/models", "/v1/status", "/v1/envs", "/metrics"):
        missing = client.get(path)
        assert missing.status_code == 401 and error_code(missing) == "unauthorized", path
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = client.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and error_code(wrong) == "unauthorized", path
        assert client.get(path, headers={"Authorization": "Basic dXNlcjprZXk="}).status_code == 401
        assert client.get(path, headers=USER).status_code == 200, path
        assert client.get(path, headers=ADMIN).status_code == 200, path  # the admin key opens everything
    # The infer fast path sits inside the auth middleware: no key, no inference.
    refused = client.post("/v1/models/echo/infer", json={"hello": 1})
    assert refused.status_code == 401 and error_code(refused) == "unauthorized"
    assert client.post("/v1/models/echo/infer", headers=USER, json={"hello": 1}).json()["hello"] == 1


def test_admin_routes_need_the_admin_key(client):
    for method, path in (("POST", "/v1/models/echo/load"), ("POST", "/v1/models/echo/unload"),
                         ("POST", "/v1/envs/anything/install"), ("DELETE", "/v1/envs/anything")):
        assert client.request(method, path).status_code == 401, path
        denied = client.request(method, path, headers=USER)
        assert denied.status_code == 403 and error_code(denied) == "forbidden", path
    loaded = client.post("/v1/models/echo/load", headers=ADMIN)
    assert loaded.status_code == 200 and loaded.json()["state"] == "loaded"
    # Inference is not an admin route, even for a model whose id ends like one.
    assert client.post("/v1/models/echo/infer", headers=USER, json={"hello": 1}).status_code == 200
    assert client.post("/v1/models/echo/unload", headers=ADMIN).status_code == 200


def test_docs_show_the_bearer_scheme(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["paths"]["/v1/models"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in schema["paths"]["/healthz"]["get"]


def test_admin_key_alone_guards_only_admin_routes(tmp_path):
    with TestClient(make_app(tmp_path, admin_key="admin-key"), base_url="http://localhost") as client:
        assert client.get("/v1/models").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.post("/v1/models/echo/infer", json={}).status_code == 200
        assert error_code(client.post("/v1/models/echo/load")) == "unauthorized"
        assert client.post("/v1/models/echo/load", headers=ADMIN).status_code == 200
        # A worker's output may show paths and secrets: its logs are an admin route.
        assert error_code(client.get("/v1/models/echo/logs")) == "unauthorized"
        logs = client.get("/v1/models/echo/logs?n=50", headers=ADMIN)
        assert logs.status_code == 200 and logs.json()["model"] == "echo", logs.text


def test_no_key_no_auth_middleware(tmp_path):
    app = make_app(tmp_path)
    assert not any(m.cls is AuthMiddleware for m in app.user_middleware)
    with TestClient(app, base_url="http://localhost") as client:
        assert client.get("/v1/models").status_code == 200
        assert client.get("/metrics").status_code == 200


# -- metrics ----------------------------------------------------------------------

def test_metrics_count_requests_errors_workers_builds(client, tmp_path):
    image = tmp_path / "page.png"
    render_lines(["metrics"], path=image)
    for _ in range(2):
        with open(image, "rb") as f:
            r = client.post("/v1/ocr", headers=USER, files={"file": ("page.png", f)}, data={"model": "echo2"})
        assert r.status_code == 200, r.text
    assert client.post("/v1/ocr", headers=USER, files={"file": ("x.png", b"nope")},
                       data={"model": "echo2"}).status_code == 415
    assert client.post("/v1/models/no-such-model/infer", headers=USER, json={}).status_code == 404
    assert client.get("/v1/models").status_code == 401
    gw = client.app.state.gateway
    for listener in gw.envs._build_listeners:  # what EnvManager calls after each build
        listener("tesseract", 2.5, True)
        listener("tesseract", 0.5, False)

    text = client.get("/metrics", headers=USER).text
    assert metric(text, "venvserve_requests_total", route="/v1/ocr", model="echo2", status=200) == 2
    # An error of a request that named a model counts against that model; one that named none (or an
    # unknown one, which must not mint a label per client string) counts under model="none".
    assert metric(text, "venvserve_request_errors_total", route="/v1/ocr", model="echo2",
                  code="unsupported_media_type") == 1
    assert metric(text, "venvserve_request_errors_total", route="/v1/models/{model_id:path}/infer", model="none",
                  code="model_not_found") == 1
    assert metric(text, "venvserve_request_errors_total", route="unmatched", model="none", code="unauthorized") >= 1
    assert metric(text, "venvserve_request_duration_seconds_count", route="/v1/ocr", model="echo2") == 3
    assert metric(text, "venvserve_inference_seconds_count", model="echo2") == 2
    assert metric(text, "venvserve_queue_wait_seconds_count", model="echo2") == 2
    assert metric(text, "venvserve_worker_spawn_seconds_count", model="echo2") == 1
    assert metric(text, "venvserve_worker_events_total", model="echo2", event="spawned") == 1
    assert metric(text, "venvserve_queue_depth", model="echo2") == 0
    assert metric(text, "venvserve_workers", model="echo2", state="ready") == 1
    assert metric(text, "venvserve_model_state", model="echo2", state="loaded") == 1
    assert metric(text, "venvserve_env_builds_total", env="tesseract", result="ok") == 1
    assert metric(text, "venvserve_env_builds_total", env="tesseract", result="failed") == 1
    assert metric(text, "venvserve_env_build_duration_seconds_count", env="tesseract") == 2
    assert metric(text, "venvserve_budget_used", resource="models") >= 1
    # Unknown model ids never become label values.
    assert "no-such-model" not in text


def test_each_app_has_its_own_registry(tmp_path):
    first, second = make_app(tmp_path / "a"), make_app(tmp_path / "b")
    assert first.state.metrics.registry is not second.state.metrics.registry
    first.state.metrics.observe_request("/v1/ocr", "echo", 200, None, 0.1)
    with TestClient(second, base_url="http://localhost") as client:
        assert metric(client.get("/metrics").text, "venvserve_requests_total",
                      route="/v1/ocr", model="echo", status=200) is None


# -- access log -------------------------------------------------------------------

def test_access_log_line_per_request(client):
    logger = logging.getLogger("venvserve.access")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert client.post("/v1/models/echo/infer", headers=USER, json={"sleep_s": 0.05}).status_code == 200
        assert client.get("/v1/status", headers=USER).status_code == 200  # a poll: DEBUG, not logged here
        assert client.post("/v1/models/nope/infer", headers=USER, json={}).status_code == 404
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2, lines
    ok, missing = lines
    assert ok["logger"] == "venvserve.access"
    assert ok["method"] == "POST" and ok["path"] == "/v1/models/echo/infer" and ok["status"] == 200
    assert ok["model"] == "echo"
    assert ok["inference_ms"] >= 50 and ok["queue_ms"] >= 0 and ok["total_ms"] >= ok["inference_ms"]
    assert "model=echo" in ok["message"] and "inference=" in ok["message"]
    assert missing["status"] == 404 and missing["error"] == "model_not_found" and missing["model"] is None
