"""The OpenAPI reference at /docs: an example answer for every route, every error in the common shape."""

from venvserve.api.app import create_app
from venvserve.settings import Settings


def operations(schema):
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            yield f"{method.upper()} {path}", op


def examples(response: dict) -> list:
    return [media["example"] for media in response.get("content", {}).values() if "example" in media]


def test_every_route_has_an_example_answer_and_errors_in_the_common_shape(tmp_path):
    schema = create_app(Settings.load(data_dir=tmp_path)).openapi()
    without, misshapen = [], []
    for name, op in operations(schema):
        ok = [r for status, r in op["responses"].items() if status.startswith("2")]
        if not any(examples(r) for r in ok):
            without.append(name)
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                for example in examples(response):
                    error = example.get("error") if isinstance(example, dict) else None
                    if not (isinstance(error, dict) and isinstance(error.get("code"), str)
                            and isinstance(error.get("message"), str)):
                        misshapen.append(f"{name} {status}")
    assert without == [] and misshapen == []
    ocr = schema["paths"]["/v1/ocr"]["post"]["responses"]
    assert ocr["415"]["content"]["application/json"]["example"]["error"]["code"] == "unsupported_media_type"
    assert ocr["507"]["content"]["application/json"]["example"]["error"]["code"] == "disk_full"
    assert set(ocr["200"]["content"]["application/json"]["example"]) >= {"model", "text", "pages", "timing_ms"}
    infer = schema["paths"]["/v1/models/{model_id}/infer"]["post"]["responses"]
    assert "413" in infer
    logs = schema["paths"]["/v1/models/{model_id}/logs"]["get"]
    assert set(logs["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert {p["name"] for p in logs["parameters"]} >= {"model_id", "n", "follow"}
