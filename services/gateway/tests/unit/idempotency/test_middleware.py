import pytest

from gateway.idempotency.middleware import fingerprint, replayed_later

pytestmark = pytest.mark.unit


def test_fingerprint_compares_json_by_value() -> None:
    a = fingerprint("POST", "/v1/chat", b"", b'{"a": 1, "b": [1, 2]}')
    assert a == fingerprint("POST", "/v1/chat", b"", b'{"b":[1,2],"a":1}')
    assert a != fingerprint("POST", "/v1/chat", b"", b'{"a": 2, "b": [1, 2]}')
    assert a != fingerprint("POST", "/v1/images", b"", b'{"a": 1, "b": [1, 2]}')
    assert fingerprint("POST", "/x", b"", b"not json") != fingerprint("POST", "/x", b"", b"not json!")


KEPT = [200, 201, 500, 504]  # the work may have happened: a retry must not redo it
FREED = [400, 402, 409, 422, 429, 502, 503]  # nothing was charged: a retry may run


@pytest.mark.parametrize(("status", "is_kept"), [(s, True) for s in KEPT] + [(s, False) for s in FREED])
def test_which_responses_are_kept_for_replays(status: int, is_kept: bool) -> None:
    assert replayed_later(status) is is_kept
