"""Admin analytics equal sums computed independently from the raw usage records and the
journal, for a known mix of users, repeated prompts (cache hits) and charges."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from chat.settings import ChatSettings
from credits.settings import CreditsSettings
from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from tests.support.services import in_process
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

FIELDS = ("prompt_tokens", "completion_tokens", "cost_usd", "credits")


@pytest.fixture
async def database(gateway_settings: GatewaySettings, mongodb_url: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    yield client[f"t_{gateway_settings.bus_namespace}"]
    await client.close()


@pytest.fixture
async def services(gateway_settings: GatewaySettings, mongodb_url: str) -> AsyncIterator[None]:
    common = gateway_settings.model_dump(include={"amqp_url", "redis_url", "bus_namespace"})
    database = f"t_{gateway_settings.bus_namespace}"
    credits = CreditsSettings(**common, mongodb_url=mongodb_url, mongodb_database=database, signup_credits=7)
    chat = ChatSettings(**common, mongodb_url=mongodb_url, mongodb_database=database)
    async with in_process("credits", credits), in_process("chat", chat):
        yield


def expected(records: list[dict[str, Any]], key: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"requests": 0, "cached": 0, **dict.fromkeys(FIELDS, 0)})
    for r in records:
        row = out[key(r)]
        row["requests"] += 1
        row["cached"] += int(r["cached"])
        for f in FIELDS:
            row[f] += r[f]
    return out


async def test_analytics_equal_independent_sums(
    client: httpx.AsyncClient, issuer: DevIssuer, services: None, database: Any
) -> None:
    users = {
        name: {"Authorization": "Bearer " + issuer.token(email=f"{name}@example.com", role="user")} for name in "abc"
    }
    admin = {"Authorization": "Bearer " + issuer.token(email="boss@example.com", role="admin")}
    plan = [("a", "hello"), ("a", "hello"), ("a", "other"), ("b", "hello"), ("b", "hello"), ("c", "fourth")]
    answered = 0
    for name, text in plan:
        response = await client.post(
            "/v1/chat", json={"messages": [{"role": "user", "content": text}]}, headers=users[name]
        )
        assert response.status_code == 200, response.text
        answered += 1

    async def stored() -> list[dict[str, Any]]:
        return [r for page in await database["usage"].find({}).to_list() for r in page["records"]]

    records = await wait_until(stored, lambda r: len(r) == answered, within=10)
    assert sum(r["cached"] for r in records) == 2  # a's and b's repeats of "hello": each user's cache is their own

    for group_by, key in (
        ("user", lambda r: r["user_id"]),
        ("model", lambda r: r["model"]),
        ("provider", lambda r: r["provider"]),
        ("day", lambda r: r["at"].strftime("%Y-%m-%d")),
    ):
        report = (await client.get("/v1/admin/analytics/usage", params={"group_by": group_by}, headers=admin)).json()
        want = expected(records, key)
        got = {row["key"]: row["figures"] for row in report["rows"]}
        assert set(got) == set(want), group_by
        for k, row in want.items():
            for f in ("requests", "cached", "prompt_tokens", "completion_tokens", "credits"):
                assert got[k][f] == row[f], (group_by, k, f)
            assert got[k]["cost_usd"] == pytest.approx(row["cost_usd"])
            assert got[k]["cache_hit_ratio"] == pytest.approx(row["cached"] / row["requests"])
        assert report["totals"]["requests"] == answered
        assert report["totals"]["cache_hit_ratio"] == pytest.approx(2 / answered)

    top = (await client.get("/v1/admin/analytics/usage", params={"group_by": "user", "limit": 1}, headers=admin)).json()
    top_user = max(
        expected(records, lambda r: r["user_id"]).items(), key=lambda kv: (kv[1]["credits"], kv[1]["requests"])
    )
    assert [row["key"] for row in top["rows"]] == [top_user[0]]

    journal = [
        e
        for name in "abc"
        for e in (await client.get("/v1/credits/history", params={"limit": 200}, headers=users[name])).json()["entries"]
    ]
    commits = [e for e in journal if e["kind"] == "commit"]
    grants = [e for e in journal if e["kind"] == "grant"]
    assert len(commits) == sum(1 for r in records if r["credits"])
    credits = (await client.get("/v1/admin/analytics/credits", headers=admin)).json()
    assert credits["spent"] == sum(c["amount"] for c in commits) == sum(r["credits"] for r in records)
    assert credits["granted"] == sum(g["amount"] for g in grants) == 7 * 3  # the signup grants of a, b and c
    assert credits["granted_by_reason"] == {"signup": 7 * 3}


async def test_analytics_are_for_admins_and_a_period_that_holds_nothing_is_an_empty_report(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    user = {"Authorization": "Bearer " + issuer.token(email="u@example.com", role="user")}
    admin = {"Authorization": "Bearer " + issuer.token(email="boss@example.com", role="admin")}
    assert (await client.get("/v1/admin/analytics/usage", headers=user)).status_code == 403
    backwards = {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    response = await client.get("/v1/admin/analytics/credits", params=backwards, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"granted": 0, "granted_by_reason": {}, "spent": 0, "released": 0}
    far = {"since": "0001-01-01T00:00:00+14:00", "until": "0001-01-01T00:00:00-14:00", "group_by": "model"}
    usage = await client.get("/v1/admin/analytics/usage", params=far, headers=admin)
    assert usage.status_code == 200, usage.text
    assert usage.json()["rows"] == [] and usage.json()["totals"]["requests"] == 0
    seconds = await client.get("/v1/admin/analytics/usage", params={"until": "0.5"}, headers=admin)
    assert seconds.status_code == 422 and seconds.json()["errors"][0]["field"] == "query.until"
