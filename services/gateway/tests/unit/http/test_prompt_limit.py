import pytest

from gateway.http.prompt_limit import prompt_chars

pytestmark = pytest.mark.unit


def test_prompt_chars_counts_every_prompt_shape() -> None:
    assert prompt_chars({"messages": [{"role": "user", "content": "abc"}, {"role": "system", "content": "de"}]}) == 5
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "abcd"}, {"type": "image_url"}]}]}
    assert prompt_chars(parts) == 4
    assert prompt_chars({"prompt": "a cat", "negative_prompt": "dog"}) == 8
    assert prompt_chars(["not", "an", "object"]) == 0
    assert prompt_chars({"messages": "nonsense", "prompt": 3}) == 0
