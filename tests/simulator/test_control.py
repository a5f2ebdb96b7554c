"""The `/_sim` control API, the Python-side knobs, and `python -m tests.simulator`."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from devstack import Process, free_port
from tests.simulator.server import RunningSimulator, run_simulator
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


async def test_faults_posted_over_http_apply_in_each_providers_format(simulator: RunningSimulator) -> None:
    async with httpx.AsyncClient(base_url=simulator.url) as http:
        posted = await http.post(
            "/_sim/faults",
            json=[{"provider": "gemini", "status": 503, "times": 1}, {"provider": "replicate", "status": 502}],
        )
        assert posted.status_code == 200
        assert len(posted.json()["faults"]) == 2
        gemini = await http.post(
            "/gemini/v1beta/models/gemini-2.5-flash:generateContent", json=GEMINI, headers={"x-goog-api-key": "k"}
        )
        replicate = await http.get("/replicate/v1/predictions/x", headers={"authorization": "Bearer t"})
        after = await http.get("/_sim/faults")

    assert gemini.status_code == 503
    assert gemini.json() == {
        "error": {"code": 503, "message": "Simulated gemini fault (503).", "status": "UNAVAILABLE"}
    }
    assert replicate.status_code == 502
    assert set(replicate.json()) == {"title", "detail", "status"}
    assert after.json()["faults"] == []


@pytest.mark.parametrize(
    "spec",
    [
        {"provider": "anthropic", "status": 500},
        {"provider": "openai"},
        {"provider": "openai", "status": 200},
        {"provider": "openai", "status": 500, "times": 0},
        {"provider": "openai", "fail_prediction": True},
        {"provider": "openai", "latency_ms": -1},
        {"provider": "openai", "statuss": 500},
    ],
)
async def test_bad_fault_specs_are_refused(simulator: RunningSimulator, spec: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=simulator.url) as http:
        posted = await http.post("/_sim/faults", json=spec)

    assert posted.status_code == 400
    assert posted.json()["error"]
    assert simulator.sim.faults.snapshot()["faults"] == []


async def test_calls_are_counted_per_provider_and_endpoint(simulator: RunningSimulator) -> None:
    async with httpx.AsyncClient(base_url=simulator.url, headers={"authorization": "Bearer k"}) as http:
        for _ in range(2):
            await http.post("/openai/v1/chat/completions", json=CHAT)
        await http.get("/openai/v1/models")
        await http.post("/gemini/v1/models/gemini-2.5-flash:countTokens", json=GEMINI, headers={"x-goog-api-key": "k"})
        calls = (await http.get("/_sim/calls")).json()

    assert calls["total"] == 4
    assert calls["providers"]["openai"] == {"total": 3, "endpoints": {"chat.completions": 2, "models.list": 1}}
    assert calls["providers"]["gemini"] == {"total": 1, "endpoints": {"countTokens": 1}}
    assert calls["providers"]["replicate"]["total"] == 0
    assert [(c["path"], c["model"], c["status"]) for c in calls["recent"]][-2:] == [
        ("/openai/v1/models", None, 200),
        ("/gemini/v1/models/gemini-2.5-flash:countTokens", "gemini-2.5-flash", 200),
    ]


async def test_missing_credentials_are_refused_like_the_providers_do(simulator: RunningSimulator) -> None:
    async with httpx.AsyncClient(base_url=simulator.url) as http:
        chat = await http.post("/openai/v1/chat/completions", json=CHAT)
        gemini = await http.post("/gemini/v1/models/gemini-2.5-flash:generateContent", json=GEMINI)
        replicate = await http.get("/replicate/v1/predictions")
        unknown = await http.post("/openai/v1/responses", json={}, headers={"authorization": "Bearer k"})

    assert chat.status_code == 401 and chat.json()["error"]["code"] == "invalid_api_key"
    assert gemini.status_code == 403 and gemini.json()["error"]["status"] == "PERMISSION_DENIED"
    assert replicate.status_code == 401 and replicate.json()["title"] == "Unauthenticated"
    assert unknown.status_code == 404 and "error" in unknown.json()


async def test_reset_clears_faults_counters_and_stored_state(simulator: RunningSimulator) -> None:
    sim = simulator.sim
    sim.add_fault("openai", status=500, times=-1)
    sim.add_fault("gemini", latency_ms=500)
    async with httpx.AsyncClient(base_url=simulator.url, headers={"authorization": "Bearer k"}) as http:
        await http.post("/replicate/v1/models/o/m/predictions", json={"input": {"prompt": "x"}})
        assert len(sim.prediction_list()) == 1
        reset = await http.post("/_sim/reset")
        chat = await http.post("/openai/v1/chat/completions", json=CHAT)
        predictions = (await http.get("/_sim/replicate/predictions")).json()

    assert reset.json() == {"ok": True}
    assert chat.status_code == 200
    assert predictions == {"predictions": []}
    assert sim.faults.settings("gemini").latency_ms == 0
    assert sim.count() == 1


async def test_latency_is_added_to_every_call_until_reset(simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("openai", latency_ms=200)
    async with openai.AsyncOpenAI(base_url=simulator.base_urls.openai, api_key="k", max_retries=0) as api:
        for _ in range(2):
            started = time.monotonic()
            await api.models.list()
            assert time.monotonic() - started >= 0.19
        simulator.sim.reset()
        started = time.monotonic()
        await api.models.list()
        assert time.monotonic() - started < 0.19


async def test_latency_per_1k_tokens_grows_with_the_request(simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("openai", latency_ms_per_1k_tokens=200)
    huge = {**CHAT, "messages": [{"role": "user", "content": "w " * 3000}]}
    async with httpx.AsyncClient(base_url=simulator.base_urls.openai, headers={"authorization": "Bearer k"}) as http:
        started = time.monotonic()
        assert (await http.post("/chat/completions", json=huge)).status_code == 200
        assert time.monotonic() - started >= 0.6
        started = time.monotonic()
        assert (await http.post("/chat/completions", json=CHAT)).status_code == 200
        assert time.monotonic() - started < 0.5


async def test_reset_releases_a_hanging_call(simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("gemini", hang=True)
    async with httpx.AsyncClient(base_url=simulator.url, timeout=30) as http:
        hanging = asyncio.create_task(
            http.post("/gemini/v1/models/m:generateContent", json=GEMINI, headers={"x-goog-api-key": "k"})
        )

        async def calls_seen() -> int:
            return simulator.sim.count("gemini")

        await wait_until(calls_seen, lambda n: n == 1, within=5)
        assert not hanging.done()
        simulator.sim.reset()
        released = await asyncio.wait_for(hanging, timeout=5)

    assert released.status_code == 504
    assert released.json()["error"]["status"] == "DEADLINE_EXCEEDED"


def test_a_second_simulator_runs_side_by_side_and_stops_cleanly(simulator: RunningSimulator) -> None:
    with run_simulator() as other:
        assert other.port != simulator.port
        assert httpx.get(f"{other.url}/_sim/health").json() == {"ok": True}
        other.sim.add_fault("openai", hang=True)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{other.base_urls.openai}/chat/completions", json=CHAT, timeout=0.3)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{other.url}/_sim/health")


def test_python_dash_m_serves_on_the_given_port(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "tests.simulator", "--port", str(port)]
    child = Process("simulator", argv, env=dict(os.environ), log_file=tmp_path / "simulator.log", echo=False).start()
    try:
        child.wait_for_line(lambda line: "Uvicorn running on" in line, timeout=30)
        chat = httpx.post(
            f"http://127.0.0.1:{port}/openai/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer k"}
        )
    finally:
        child.stop()

    assert chat.json()["choices"][0]["message"]["content"] == "Simulated OpenAI answer to: hi"
    assert f"  OPENAI_BASE_URL=http://127.0.0.1:{port}/openai/v1" in child.lines
