"""Minimal fake OpenAI-compatible upstream (raw ASGI, no framework).

POST /v1/chat/completions -> fixed, valid chat.completion JSON.
Optional artificial provider latency: env FAKE_DELAY_MS (default 0).
Run:  FAKE_DELAY_MS=0 venv/bin/uvicorn fake_openai:app --host 127.0.0.1 --port 18000 \
          --workers 1 --loop uvloop --no-access-log --log-level warning

The team's copy in ../shared/bench/ is the one compare.py runs; bench/compare_bench.py runs
this one, from the LiteLLM bench environment (uvicorn + uvloop), on a free port.
"""

import asyncio
import json
import os
import time

DELAY_S = float(os.environ.get("FAKE_DELAY_MS", "0")) / 1000.0

_BODY = json.dumps(
    {
        "id": "chatcmpl-fake0000000000000000000000",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello! How can I assist you today?",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 8, "completion_tokens": 9, "total_tokens": 17},
    },
    separators=(",", ":"),
).encode()

_MODELS = json.dumps(
    {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "fake"}]}
).encode()

_COUNT = 0  # chat completions served (GET /stats reads it; used to verify cache hits)

_HDRS = [
    (b"content-type", b"application/json"),
]


async def _drain(receive):
    more = True
    while more:
        msg = await receive()
        more = msg.get("more_body", False)


async def _send(send, status, body):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_HDRS, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    method = scope["method"]
    if method == "POST" and path.endswith("/chat/completions"):
        global _COUNT
        _COUNT += 1
        await _drain(receive)
        if DELAY_S > 0:
            await asyncio.sleep(DELAY_S)
        await _send(send, 200, _BODY)
    elif method == "GET" and path == "/stats":
        await _send(send, 200, json.dumps({"chat_completions": _COUNT, "delay_ms": DELAY_S * 1000}).encode())
    elif method == "GET" and path.endswith("/models"):
        await _send(send, 200, _MODELS)
    else:
        await _drain(receive)
        await _send(send, 404, b'{"error":{"message":"not found"}}')
