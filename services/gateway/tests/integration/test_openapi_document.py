"""The OpenAPI document's shape (the schemathesis run in tests/e2e holds the behaviour to it)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

OPENAI_ROUTES = ("/v1/chat/completions", "/v1/embeddings", "/v1/images/generations", "/v1/models")


async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


async def test_every_error_is_documented_with_its_shape_and_every_response_with_its_request_id(
    client: httpx.AsyncClient,
) -> None:
    doc = await document(client)
    assert "HTTPValidationError" not in str(doc)  # FastAPI's 422 body is not what the gateway sends
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            if path not in ("/healthz", "/readyz"):
                assert {"429", "500", "503"} <= statuses, (method, path)
            if operation.get("security"):
                assert "401" in statuses, (method, path)
            for status, response in operation["responses"].items():
                assert response["headers"]["X-Request-ID"]["required"] is True
                if int(status) < 400:
                    continue
                (media_type,) = response["content"]
                ref = response["content"][media_type]["schema"]["$ref"]
                openai = path.startswith(OPENAI_ROUTES)
                assert (media_type, ref.rsplit("/", 1)[1]) == (
                    ("application/json", "OpenAIError") if openai else ("application/problem+json", "Problem")
                ), (method, path, status)


async def test_every_answer_with_a_body_declares_its_schema(client: httpx.AsyncClient) -> None:
    """A generated client gets a type for every body: no empty schema, no bare object."""
    doc = await document(client)
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                for media_type, content in response.get("content", {}).items():
                    schema = content.get("schema", {})
                    assert (
                        schema.get("$ref")
                        or schema.get("properties")
                        or schema.get("anyOf")
                        or (schema.get("type") == "string" and schema.get("description"))
                    ), (method, path, status, media_type)


async def test_parameters_say_what_is_accepted(client: httpx.AsyncClient) -> None:
    doc = await document(client)
    params = {p["name"]: p for p in doc["paths"]["/v1/images/{image_id}"]["get"]["parameters"]}
    assert params["image_id"]["schema"]["pattern"].startswith("^[0-9a-f]{8}-")
    assert params["x-request-timeout"]["schema"] == {
        "type": "number",
        "minimum": 1.0,
        "maximum": 120.0,
        "description": params["x-request-timeout"]["schema"]["description"],
    }
    listing = {p["name"]: p for p in doc["paths"]["/v1/images"]["get"]["parameters"]}
    assert listing["cursor"]["schema"]["pattern"].startswith("^[0-9]{1,15}\\.[0-9a-f]{8}-")
    grant = {p["name"]: p for p in doc["paths"]["/v1/admin/credits/grants"]["post"]["parameters"]}
    assert grant["idempotency-key"]["required"] is True and "anyOf" not in grant["idempotency-key"]["schema"]


async def test_a_method_the_path_does_not_take_is_405_naming_every_method_it_does(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.request("PATCH", f"/v1/images/{uuid.uuid4()}", headers=auth)
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "DELETE"}


async def test_an_image_id_that_is_not_a_uuid_is_no_route(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    """`/v1/images/generations` is not taken for an image id: GET on it is 405, not a 422 about the id."""
    response = await client.get("/v1/images/generations", headers=auth)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
