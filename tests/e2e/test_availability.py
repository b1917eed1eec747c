"""What /v1/models says a model needs before anything is spawned: missing weights with the hub
switched off, a missing template, a missing binary. Each is a one-line reason with the fix, and
/load fails at once without starting a worker."""

import time

from support import assert_error


def test_missing_weights_with_the_hub_off_are_unavailable_with_the_pull_hint_and_load_fails_fast(server_factory):
    model = {"id": "mineru-cpu", "architecture": "mineru", "python_env": "mineru", "device": "cpu",
             "options": {"weights": "opendatalab/MinerU2.5-2509-1.2B"}}
    server = server_factory([model, {"id": "echo", "architecture": "echo"}], env={"VENVSERVE_OFFLINE": "1"})
    entry = server.client.get("/v1/models/mineru-cpu").json()
    assert entry["available"] is False
    assert "venvserve models pull mineru-cpu" in entry["reason"] and "VENVSERVE_OFFLINE" in entry["reason"]
    assert str(server.data_dir) not in entry["reason"]  # no server path reaches a client
    t0 = time.monotonic()
    error = assert_error(server.client.post("/v1/models/mineru-cpu/load"), 503, "model_unavailable")
    assert time.monotonic() - t0 < 5
    assert "venvserve models pull" in error["message"]
    assert server.client.get("/v1/models/mineru-cpu").json()["spawns"] == 0
    assert server.workers() == []


def test_a_model_whose_env_template_is_missing_says_so_without_a_server_path(server_factory, tmp_path):
    server = server_factory([{"id": "ghost", "architecture": "echo", "python_env": "no-such-env"}])
    entry = server.client.get("/v1/models/ghost").json()
    assert entry["available"] is False and "no-such-env" in entry["reason"]
    assert "/" not in entry["reason"].replace("envs/", "")  # names the template, not a server folder
    assert_error(server.client.post("/v1/models/ghost/load"), 503, "model_unavailable")


def test_the_apis_404_for_a_near_miss_suggests_the_model(server_factory):
    server = server_factory([{"id": "echo", "architecture": "echo"}])
    error = assert_error(server.client.post("/v1/models/echoo/infer", json={}), 404, "model_not_found")
    assert error["hint"].startswith("did you mean 'echo'?")
    error = assert_error(server.client.get("/v1/models/ech"), 404, "model_not_found")
    assert "did you mean 'echo'?" in error["hint"]
