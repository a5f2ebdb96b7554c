from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from common.contracts import ChatCompletion, ChatMessage, CompleteChat, Envelope
from gateway.auth import CurrentUser
from gateway.deps import Deadline, RequestId, Rpc

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
async def chat(
    body: ChatBody, user: CurrentUser, request_id: RequestId, deadline: Deadline, rpc: Rpc
) -> ChatCompletion:
    envelope = Envelope[CompleteChat](
        type="CompleteChat",
        request_id=request_id,
        actor=user,
        deadline=deadline,
        payload=CompleteChat(messages=body.messages, model=body.model),
    )
    return await rpc.call(envelope, reply_model=ChatCompletion)
