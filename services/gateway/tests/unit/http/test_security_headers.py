import pytest

from gateway.http.security_headers import SecurityHeaders

pytestmark = pytest.mark.unit


def names(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [name for name, _ in headers]


def test_a_responses_own_header_is_kept_and_the_rest_added() -> None:
    security = SecurityHeaders(hsts=False)
    own = [(b"content-type", b"text/event-stream"), (b"Cache-Control", b"no-cache")]
    headers = SecurityHeaders.add(own, security.for_path("/v1/chat"))
    assert headers[:2] == own
    assert b"cache-control" not in names(headers[2:])
    assert dict(headers)[b"x-content-type-options"] == b"nosniff"
    assert dict(headers)[b"content-security-policy"].startswith(b"default-src 'none'")
    assert b"strict-transport-security" not in names(headers)


def test_docs_get_no_content_security_policy_and_hsts_only_when_asked() -> None:
    docs = SecurityHeaders.add([], SecurityHeaders(hsts=True).for_path("/docs"))
    assert b"content-security-policy" not in names(docs) and b"cache-control" not in names(docs)
    assert dict(docs)[b"strict-transport-security"].startswith(b"max-age=")
