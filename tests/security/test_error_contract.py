"""Issue 23 item 7: one error model, `{"detail", "code", "field", "errors"?}`
(cityloop.errors.ErrorOut), documented in the OpenAPI for every operation and every status it
can answer, and sent for every error — bad JSON, bad multipart, unknown paths, methods a path
does not take (with an Allow header that lists the methods it does take)."""

from __future__ import annotations

import pytest

from cityloop.errors import ErrorOut

# 422 only where the operation takes something to validate (checked above it).
ERROR_STATUSES_OF_EVERY_WRITE = {"401", "403", "409", "503"}


@pytest.fixture
def spec(client):
    return client.get("/openapi.json").json()


def _conforms(spec, body):
    # The published model is ErrorOut's, and ErrorOut forbids anything it does not name.
    assert spec["components"]["schemas"]["ErrorOut"]["required"] == ["detail", "code"]
    ErrorOut.model_validate(body, strict=True)


def test_every_operation_documents_the_error_model(spec):
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if path.startswith("/open311/"):
                continue
            responses = operation["responses"]
            errors = {s: r for s, r in responses.items() if s.startswith(("4", "5"))}
            assert "503" in errors, (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in errors, (method, path)
            if "{" in path:
                assert "404" in errors, (method, path)
            if method in ("post", "put", "patch", "delete") and operation.get("security"):
                assert set(errors) >= ERROR_STATUSES_OF_EVERY_WRITE, (method, path, errors)
            for status, response in errors.items():
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorOut"), (method, path, status)


def test_every_error_is_sent_in_the_model(client, auth, spec):
    answers = {
        "unknown path": client.get("/api/v1/no-such-thing"),
        "bad json": client.post(
            "/api/v1/reports",
            content=b'{"source": "public", ',
            headers={"Content-Type": "application/json"},
        ),
        "bad multipart": client.post(
            "/api/v1/media",
            content=b"--x\r\nnot a part",
            headers={**auth("admin"), "Content-Type": "multipart/form-data; boundary=x"},
        ),
        "method": client.delete("/api/v1/classes/01001", headers=auth("admin")),
        "validation": client.patch(
            "/api/v1/classes/01001", json={"active": "maybe"}, headers=auth("admin")
        ),
        "unauthorized": client.get("/api/v1/users"),
        "forbidden": client.get("/api/v1/users", headers=auth("handler")),
        "not found": client.get("/api/v1/cases/999999", headers=auth("admin")),
    }
    for what, response in answers.items():
        assert response.status_code >= 400, (what, response.status_code)
        body = response.json()
        _conforms(spec, body)
        assert body["detail"] and body["code"], (what, body)
    assert answers["unknown path"].status_code == 404
    assert answers["bad json"].status_code == 400
    assert answers["bad json"].json()["field"] == "body"
    assert answers["bad multipart"].status_code == 400
    assert answers["method"].status_code == 405


def test_options_and_allow_name_the_methods_a_path_takes(client, auth):
    options = client.options("/api/v1/classes/01001")
    assert options.status_code == 204, options.text
    allowed = {m.strip() for m in options.headers["Allow"].split(",")}
    assert {"GET", "PATCH", "OPTIONS"} <= allowed
    refused = client.delete("/api/v1/classes/01001", headers=auth("admin"))
    assert refused.status_code == 405
    assert {"GET", "PATCH"} <= {m.strip() for m in refused.headers["Allow"].split(",")}
    assert "DELETE" not in refused.headers["Allow"]
