"""`POST /v1/embeddings`, OpenAI-compatible: the official `openai` SDK's `embeddings.create`
works against the gateway unchanged, with a user's bearer token as its API key.

`input` is a string or a list of strings (token arrays are refused with a 400 that says so);
`encoding_format` `float` (OpenAI's default) or `base64` (little-endian float32, what the SDK
asks for); `dimensions` shortens the vectors where the model can; `user` is accepted and ignored
(the token says who asks). Priced per input token through the same ledger as chat: the worst case
is held, the tokens used are charged, and a failure charges nothing. Errors are OpenAI's shape
(see `openai/chat.py`). Answers add `provider` and `credits` to OpenAI's fields."""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.contracts import CreateEmbeddings, Embeddings, EmbeddingUsage
from common.contracts.embeddings import MAX_DIMENSIONS, MAX_INPUTS, EmbeddingInput
from gateway.deps import Rpc, UserCaller
from gateway.http.responses import OPENAI_SPENDING
from gateway.openai.errors import OpenAIRoute

router = APIRouter(tags=["openai-compatible"], route_class=OpenAIRoute)


class EmbeddingsBody(BaseModel):
    """OpenAI's embeddings request, as far as the platform serves it; other parameters are refused."""

    model_config = ConfigDict(extra="forbid")

    input: EmbeddingInput | Annotated[list[EmbeddingInput], Field(min_length=1, max_length=MAX_INPUTS)] = Field(
        description="Text to embed, or a list of texts (each non-empty). Token arrays are not supported."
    )
    model: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/-]+$")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="`float`: arrays of numbers; `base64`: each vector's little-endian float32 bytes."
    )
    dimensions: int | None = Field(
        None, ge=1, le=MAX_DIMENSIONS, description="Length of each vector, where the model can."
    )
    user: str | None = Field(None, max_length=256, description="Accepted and ignored: the token says who asks.")

    @field_validator("input", mode="before")
    @classmethod
    def _no_token_arrays(cls, value: Any) -> Any:
        if isinstance(value, list) and value and all(isinstance(v, int | list) for v in value):
            raise ValueError("token arrays are not supported; send the text to embed")
        return value


class EmbeddingView(BaseModel):
    object: Literal["embedding"]
    index: int = Field(ge=0)
    embedding: list[float] | str = Field(description="The vector: numbers, or base64 with `encoding_format: base64`.")


class EmbeddingListView(BaseModel):
    """OpenAI's embeddings list."""

    object: Literal["list"]
    data: list[EmbeddingView]
    model: str
    usage: EmbeddingUsage
    provider: str = Field(description="The provider that embedded.")
    credits: int = Field(ge=0, description="Credits charged for these embeddings.")


@router.post(
    "/v1/embeddings",
    response_model=EmbeddingListView,
    summary="OpenAI-compatible embeddings",
    responses=OPENAI_SPENDING,
)
async def embeddings(body: EmbeddingsBody, caller: UserCaller, rpc: Rpc) -> Any:
    inputs = [body.input] if isinstance(body.input, str) else body.input
    command = CreateEmbeddings(input=inputs, model=body.model, dimensions=body.dimensions)
    reply = await rpc.call(caller.envelope(command), reply_model=Embeddings)
    encode = (lambda v: v) if body.encoding_format == "base64" else _floats
    data = [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(reply.vectors)]
    # Built here rather than validated by the response model: thousands of numbers a vector.
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": reply.model,
            "usage": reply.usage.model_dump(),
            "provider": reply.provider,
            "credits": reply.credits,
        }
    )


def _floats(vector: str) -> list[float]:
    values = array("f", base64.b64decode(vector))
    if sys.byteorder != "little":
        values.byteswap()
    return values.tolist()
