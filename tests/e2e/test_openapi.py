"""The OpenAPI reference at /docs shows an example for every route and its errors."""

import json

from venvserve.api.app import create_app
from venvserve.settings import Settings


def test_every_route_has_an_example_answer_and_errors_in_the_common_shape(tmp_path):
    schema = create_app(Settings.load(data_dir=tmp_path)).openapi()
    without = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "example" not in json.dumps(operation.get("responses", {})):
                without.append(f"{method.upper()} {path}")
    assert without == []
    ocr = schema["paths"]["/v1/ocr"]["post"]["responses"]
    assert ocr["415"]["content"]["application/json"]["example"]["error"]["code"] == "unsupported_media_type"
    assert set(ocr["200"]["content"]["application/json"]["example"]) >= {"model", "text", "pages", "timing_ms"}
