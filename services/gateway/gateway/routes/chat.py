from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from common.contracts import ChatCompletion, ChatMessage, CompleteChat
from gateway.deps import Rpc, UserCaller

router = APIRouter(tags=["chat"])


class ChatBody(BaseModel):
    """Body of POST /v1/chat."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(
        min_length=1, max_length=100, description="The conversation so far, oldest first."
    )
    model: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:/-]+$",
        description="Model to use; the service default when absent.",
    )


@router.post("/v1/chat", response_model=ChatCompletion, summary="Answer a conversation")
async def chat(body: ChatBody, caller: UserCaller, rpc: Rpc) -> ChatCompletion:
    return await rpc.call(
        caller.envelope(CompleteChat(messages=body.messages, model=body.model)), reply_model=ChatCompletion
    )
