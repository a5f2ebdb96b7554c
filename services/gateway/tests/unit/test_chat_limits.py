"""The HTTP chat bodies hold the CompleteChat contract's limits, not limits of their own: a
body the gateway accepts is one the chat service accepts, and no more is refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from common.contracts import CompleteChat
from gateway.openai.chat import ChatCompletionsBody
from gateway.routes.chat import ChatBody

pytestmark = pytest.mark.unit

_WORDS = {"description", "title", "default", "examples", "items", "$ref"}


def bounds(model: type[BaseModel], field: str) -> dict[str, Any]:
    """What the field's JSON schema limits (a nullable field: its value's limits)."""
    schema = model.model_json_schema()["properties"][field]
    branches = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]
    assert len(branches) == 1, schema
    return {k: v for k, v in branches[0].items() if k not in _WORDS}


@pytest.mark.parametrize("field", ["messages", "model", "temperature", "top_p", "max_tokens"])
def test_the_chat_body_has_the_contracts_limits(field: str) -> None:
    limits = bounds(CompleteChat, field)
    assert any(k not in ("type",) for k in limits), f"{field} has no limits in the contract"
    assert bounds(ChatBody, field) == limits


@pytest.mark.parametrize(
    ("field", "contract_field"),
    [
        ("messages", "messages"),
        ("model", "model"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("max_tokens", "max_tokens"),
        ("max_completion_tokens", "max_tokens"),
        ("n", "n"),
        ("seed", "seed"),
        ("presence_penalty", "presence_penalty"),
        ("frequency_penalty", "frequency_penalty"),
        ("user", "end_user"),
    ],
)
def test_the_openai_body_has_the_contracts_limits(field: str, contract_field: str) -> None:
    assert bounds(ChatCompletionsBody, field) == bounds(CompleteChat, contract_field)


def test_every_field_the_chat_body_shares_with_the_contract_is_checked() -> None:
    shared = set(ChatBody.model_fields) & set(CompleteChat.model_fields)
    assert shared == {
        *("messages", "model", "temperature", "top_p", "max_tokens", "stream", "thread_id"),
        *("tools", "tool_choice", "response_format", "n", "stop", "seed", "presence_penalty", "frequency_penalty"),
        "end_user",
    }
    for field in shared:
        assert bounds(ChatBody, field) == bounds(CompleteChat, field), field


def test_one_past_the_contracts_limit_is_refused_over_http() -> None:
    most = next(m.le for m in CompleteChat.model_fields["max_tokens"].metadata if hasattr(m, "le"))
    message = {"role": "user", "content": "hi"}
    ChatBody.model_validate({"messages": [message], "max_tokens": most})
    with pytest.raises(ValidationError):
        ChatBody.model_validate({"messages": [message], "max_tokens": most + 1})
    with pytest.raises(ValidationError):
        ChatCompletionsBody.model_validate({"model": "m", "messages": [message], "max_completion_tokens": most + 1})
