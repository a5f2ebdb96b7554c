from pathlib import Path

import pytest

from common.asyncapi import build, render
from common.contracts import CATALOG

pytestmark = pytest.mark.unit

COMMITTED = Path(__file__).resolve().parents[4] / "docs" / "asyncapi.json"


def test_committed_document_matches_the_contracts() -> None:
    assert COMMITTED.read_text() == render(), "docs/asyncapi.json is stale: run `make asyncapi`"


def test_every_catalog_message_is_documented_with_resolvable_refs() -> None:
    doc = build()
    assert doc["asyncapi"] == "3.0.0"
    for name, spec in CATALOG.items():
        assert name in doc["channels"] and name in doc["components"]["messages"]
        if spec.reply is not None:
            assert (
                doc["operations"][f"{spec.service}.{name}"]["reply"]["address"]["location"]
                == "$message.header#/reply_to"
            )

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        target: object = doc
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, ref
            target = target[part]


def test_envelope_schema_forbids_unknown_fields() -> None:
    schemas = build()["components"]["schemas"]
    envelope = next(v for k, v in schemas.items() if k.startswith("Envelope"))
    assert envelope["additionalProperties"] is False
    assert {"message_id", "request_id", "actor", "deadline", "traceparent", "payload", "schema_version"} <= set(
        envelope["properties"]
    )
