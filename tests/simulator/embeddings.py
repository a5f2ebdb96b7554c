"""Embeddings as OpenAI and Gemini serve them, on the wire their SDKs speak.

- OpenAI `POST /openai/v1/embeddings` (`client.embeddings.create`): `input` a string, a list of
  strings, or token arrays; `encoding_format` `float` or `base64` (little-endian float32, the SDK's
  default on the wire); `dimensions` for the `text-embedding-3-*` models. Call-log endpoint: `embeddings`.
- Gemini `POST /gemini/{version}/models/{model}:embedContent` and `:batchEmbedContents`
  (`client.models.embed_content` sends the batch form), `outputDimensionality`. Call-log
  endpoints: `embedContent`, `batchEmbedContents`.

A vector is a deterministic function of the model and the text (unit length), so the same text
always gets the same vector; tokens are counted as words, as the simulated chat counts them.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.simulator import gemini, openai, text
from tests.simulator.wire import json_body

if TYPE_CHECKING:
    from tests.simulator.app import Simulator

OPENAI_MODELS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
GEMINI_MODELS = {"gemini-embedding-001": 3072, "text-embedding-004": 768}
MAX_INPUTS = 2048
GEMINI_MAX_BATCH = 100


def vector(model: str, content: str, dimensions: int) -> list[float]:
    """The simulated embedding of `content`: the same model and text always give the same unit vector."""
    seed = int.from_bytes(hashlib.sha256(f"{model}\0{content}".encode()).digest()[:8], "little")
    rng = random.Random(seed)
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def openai_routes(sim: Simulator) -> list[BaseRoute]:
    async def create(request: Request) -> Response:
        body = await json_body(request, openai.error)
        if isinstance(body, Response):
            return body
        model = body.get("model")
        if reply := await sim.enter(
            request, openai.PROVIDER, "embeddings", error=openai.error, model=model if isinstance(model, str) else None
        ):
            return reply
        if reply := openai._unauthorized(request):
            return reply
        if not isinstance(model, str) or not model:
            return openai.error(400, "you must provide a model parameter", param="model")
        if model not in OPENAI_MODELS:
            return openai.error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
        inputs = _openai_inputs(body.get("input"))
        if inputs is None:
            return openai.error(400, "'$.input' is invalid. Please check the API reference.", param="input")
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            return openai.error(
                400, f"Invalid value: '{fmt}'. Supported values are: 'float' and 'base64'.", param="encoding_format"
            )
        dimensions = body.get("dimensions")
        size = OPENAI_MODELS[model]
        if dimensions is not None:
            if model == "text-embedding-ada-002":
                return openai.error(400, "This model does not support specifying dimensions.", param="dimensions")
            if not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 1 <= dimensions <= size:
                return openai.error(400, f"Invalid 'dimensions': must be between 1 and {size}.", param="dimensions")
            size = dimensions
        request.state.sim_call["inputs"] = inputs
        data = []
        for index, item in enumerate(inputs):
            values = vector(model, item, size)
            encoded: Any = values if fmt == "float" else _base64(values)
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(max(1, text.count_tokens(item)) for item in inputs)
        return JSONResponse(
            {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        )

    return [Route("/v1/embeddings", create, methods=["POST"])]


def gemini_routes(sim: Simulator) -> list[BaseRoute]:
    async def embed(request: Request, method: str) -> Response:
        version, model = request.path_params["version"], request.path_params["model"]
        if reply := await sim.enter(request, gemini.PROVIDER, method, error=gemini.error, model=model):
            return reply
        if reply := gemini._unauthorized(request):
            return reply
        if version not in gemini.VERSIONS:
            return gemini.error(404, f"Method not found: {request.method} {request.url.path}")
        if model not in GEMINI_MODELS:
            return gemini.error(
                404, f"models/{model} is not found for API version {version}, or is not supported for {method}."
            )
        body = await json_body(request, gemini.error)
        if isinstance(body, Response):
            return body
        single = method == "embedContent"
        requests = [body] if single else body.get("requests")
        if not isinstance(requests, list) or not requests or not all(isinstance(r, dict) for r in requests):
            return gemini.error(400, "* BatchEmbedContentsRequest.requests: requests is not specified")
        if len(requests) > GEMINI_MAX_BATCH:
            return gemini.error(400, f"* BatchEmbedContentsRequest.requests: at most {GEMINI_MAX_BATCH} requests")
        embeddings, tokens, texts = [], 0, []
        for number, item in enumerate(requests):
            named = item.get("model")
            if not single and named not in (f"models/{model}", model):
                return gemini.error(
                    400, f"Model names in requests[{number}] ({named}) must match the batch model models/{model}."
                )
            content = gemini._text(item.get("content"))
            if not content.strip():
                return gemini.error(400, "* EmbedContentRequest.content: contains an empty Part.")
            size = item.get("outputDimensionality") or GEMINI_MODELS[model]
            if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= GEMINI_MODELS[model]:
                return gemini.error(400, f"* outputDimensionality must be between 1 and {GEMINI_MODELS[model]}.")
            texts.append(content)
            tokens += max(1, text.count_tokens(content))
            embeddings.append({"values": vector(model, content, size)})
        request.state.sim_call["inputs"] = texts
        usage = {"promptTokenCount": tokens, "totalTokenCount": tokens}
        if single:
            return JSONResponse({"embedding": embeddings[0], "usageMetadata": usage})
        return JSONResponse({"embeddings": embeddings, "usageMetadata": usage})

    async def batch(request: Request) -> Response:
        return await embed(request, "batchEmbedContents")

    async def one(request: Request) -> Response:
        return await embed(request, "embedContent")

    return [
        Route("/{version}/models/{model}:batchEmbedContents", batch, methods=["POST"]),
        Route("/{version}/models/{model}:embedContent", one, methods=["POST"]),
    ]


def _openai_inputs(value: object) -> list[str] | None:
    """The texts of an OpenAI `input` (token arrays stand for their token ids as text); None when invalid."""
    items: list[object] = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    if not items or len(items) > MAX_INPUTS:
        return None
    if all(isinstance(i, int) and not isinstance(i, bool) for i in items):
        return [" ".join(str(i) for i in items)]
    texts = []
    for item in items:
        if isinstance(item, str) and item:
            texts.append(item)
        elif isinstance(item, list) and item and all(isinstance(i, int) and not isinstance(i, bool) for i in item):
            texts.append(" ".join(str(i) for i in item))
        else:
            return None
    return texts


def _base64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
