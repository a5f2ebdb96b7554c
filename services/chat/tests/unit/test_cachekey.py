from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.cachekey import cache_key, cacheable
from chat.providers import ProviderRequest
from common.contracts import ChatMessage
from common.contracts.chatfeatures import FunctionTool, ImageInput, ResponseFormat, ToolCall, ToolChoice

pytestmark = pytest.mark.unit


def req(*messages: tuple[str, str], model: str = "m", **params: object) -> ProviderRequest:
    return ProviderRequest(
        messages=tuple(ChatMessage(role=r, content=c) for r, c in messages),  # type: ignore[arg-type]
        model=model,
        **params,  # type: ignore[arg-type]
    )


def key(request: ProviderRequest) -> str:
    return cache_key(request, scope="user:u1")


BASE = req(("system", "be brief"), ("user", "Hello"))


def test_identical_requests_share_a_key_and_equal_numbers_match() -> None:
    assert key(BASE) == key(req(("system", "be brief"), ("user", "Hello")))
    assert key(req(("user", "x"), temperature=1)) == key(req(("user", "x"), temperature=1.0))


@pytest.mark.parametrize(
    "other",
    [
        req(("system", "be brief"), ("user", "Hello"), model="m2"),
        req(("system", "be brief"), ("user", "hello")),  # case
        req(("system", "be brief"), ("user", "Hello ")),  # whitespace
        req(("user", "be brief"), ("user", "Hello")),  # role
        req(("user", "Hello"), ("system", "be brief")),  # order
        req(("system", "be brief"), ("user", "Hel"), ("user", "lo")),  # split differently
        req(("system", "be brief"), ("user", "Hello"), temperature=0.0),  # absent ≠ any value
        req(("system", "be brief"), ("user", "Hello"), top_p=1.0),
        req(("system", "be brief"), ("user", "Hello"), max_tokens=100),
    ],
)
def test_requests_that_could_get_different_answers_never_share_a_key(other: ProviderRequest) -> None:
    assert key(other) != key(BASE)


def test_the_same_request_in_another_scope_has_another_key() -> None:
    keys = {cache_key(BASE, scope=scope) for scope in ("user:u1", "user:u2", "shared")}
    assert len(keys) == 3


def test_unicode_is_not_normalised() -> None:
    composed = "café"
    decomposed = unicodedata.normalize("NFD", composed)
    assert key(req(("user", composed))) != key(req(("user", decomposed)))


def test_the_key_does_not_hold_the_text() -> None:
    found = key(req(("user", "my secret plan")))
    assert "secret" not in found and len(found) == 64


messages = st.lists(
    st.tuples(st.sampled_from(["system", "user", "assistant"]), st.text(min_size=1, max_size=8)), min_size=1, max_size=3
)
requests = st.builds(
    lambda m, model, t, p, n: req(*m, model=model, temperature=t, top_p=p, max_tokens=n),
    messages,
    st.sampled_from(["a", "b"]),
    st.none() | st.sampled_from([0, 0.5, 1, 1.0, 2]),
    st.none() | st.sampled_from([0.5, 1.0]),
    st.none() | st.integers(1, 3),
)


def canonical(r: ProviderRequest) -> tuple[object, ...]:
    as_float = lambda v: None if v is None else float(v)  # noqa: E731
    return (
        r.model,
        tuple((m.role, m.content) for m in r.messages),
        as_float(r.temperature),
        as_float(r.top_p),
        r.max_tokens,
    )


@given(requests, requests)
def test_keys_are_equal_exactly_when_the_requests_are(a: ProviderRequest, b: ProviderRequest) -> None:
    assert (key(a) == key(b)) == (canonical(a) == canonical(b))


TOOL = FunctionTool(name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})
JSON = ResponseFormat(type="json_object")
CALL = ToolCall(id="call_1", name="get_weather", arguments='{"city":"Oslo"}')


def rich(**changes: object) -> ProviderRequest:
    messages = (
        ChatMessage(role="user", content="Weather?", images=[ImageInput(url="https://x.example/a.png")]),
        ChatMessage(role="assistant", tool_calls=[CALL]),
        ChatMessage(role="tool", content="21", tool_call_id="call_1"),
    )
    fields: dict[str, Any] = {"messages": messages, "model": "m", "tools": (TOOL,), "seed": 1, **changes}
    return ProviderRequest(**fields)


@pytest.mark.parametrize(
    "changes",
    [
        {"tools": ()},
        {"tools": (FunctionTool(name="get_weather"),)},
        {"tool_choice": ToolChoice(mode="required")},
        {"tool_choice": ToolChoice(function="get_weather")},
        {"response_format": JSON},
        {"response_format": ResponseFormat(type="json_schema", json_schema={"type": "object"})},
        {"n": 2},
        {"stop": ("x",)},
        {"seed": 2},
        {"presence_penalty": 0.5},
        {"frequency_penalty": 0.5},
        {
            "messages": (
                ChatMessage(role="user", content="Weather?", images=[ImageInput(url="https://x.example/b.png")]),
            )
        },
        {"messages": (ChatMessage(role="user", content="Weather?"),)},
    ],
)
def test_every_field_that_changes_an_answer_changes_the_key(changes: dict[str, object]) -> None:
    assert key(rich(**changes)) != key(rich())


def test_what_the_provider_does_not_answer_by_is_not_in_the_key() -> None:
    assert key(rich(end_user="shopper-7")) == key(rich())
    same_schema = ResponseFormat(type="json_schema", json_schema={"b": 1, "a": 2})
    reordered = ResponseFormat(type="json_schema", json_schema={"a": 2, "b": 1})
    assert key(rich(response_format=same_schema)) == key(rich(response_format=reordered))


@pytest.mark.parametrize(
    ("changes", "cached"),
    [
        ({"seed": None}, False),  # tools, sampled at random
        ({"seed": None, "temperature": 0}, True),
        ({"seed": 3}, True),
        ({"seed": None, "tools": (), "response_format": JSON}, False),
        ({"seed": None, "tools": (), "response_format": JSON, "temperature": 0.0}, True),
        ({"seed": None, "tools": (), "response_format": ResponseFormat(type="text")}, True),
        ({"seed": None, "tools": (), "temperature": 1.5}, True),  # plain text: cached as before
    ],
)
def test_tool_calls_and_structured_outputs_are_cached_only_when_deterministic(
    changes: dict[str, object], cached: bool
) -> None:
    assert cacheable(rich(**changes)) is cached
