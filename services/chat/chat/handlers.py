"""Broker entry points of the chat service: reserve credits → provider → commit or release."""

from __future__ import annotations

import logging
import uuid

from chat.pricing import ChatPricing
from chat.providers import ChatProvider
from common.contracts import Caller, ChatCompletion, ChatMessage, CompleteChat, Envelope, Reservation, Usage
from common.credits import CreditsClient
from common.errors import DeadlineExceeded, Unauthenticated

log = logging.getLogger(__name__)


class ChatHandlers:
    def __init__(
        self, *, provider: ChatProvider, default_model: str, pricing: ChatPricing, credits: CreditsClient
    ) -> None:
        self._provider = provider
        self._default_model = default_model
        self._pricing = pricing
        self._credits = credits

    async def complete_chat(self, envelope: Envelope[CompleteChat]) -> ChatCompletion:
        if envelope.actor is None:
            raise Unauthenticated("a chat request needs an acting user")
        caller = Caller.of(envelope)
        model = envelope.payload.model or self._default_model
        # Derived from the message id: a redelivered request finds its first reservation.
        reservation = await self._credits.reserve(
            caller,
            reservation_id=uuid.uuid5(envelope.message_id, "chat"),
            amount=self._pricing.reservation(model),
            purpose="chat",
        )
        try:
            answer = await self._provider.complete(list(envelope.payload.messages), model=model)
            if envelope.expired():
                raise DeadlineExceeded("the answer came after the requester had gone")
        except BaseException:
            await self._settle(caller, reservation, charge=None)
            raise
        usage = Usage(
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            total_tokens=answer.prompt_tokens + answer.completion_tokens,
        )
        await self._settle(caller, reservation, charge=self._pricing.charge(model, total_tokens=usage.total_tokens))
        return ChatCompletion(
            id=f"chat_{uuid.uuid5(envelope.message_id, 'completion').hex}",
            message=ChatMessage(role="assistant", content=answer.text),
            model=answer.model,
            provider=self._provider.name,
            usage=usage,
        )

    async def _settle(self, caller: Caller, reservation: Reservation, *, charge: int | None) -> None:
        """Commit `charge` (None: release). A failure here leaves the reservation to expire:
        the user is then not charged, which is the safe side."""
        try:
            if charge is None:
                await self._credits.release(caller, reservation)
            else:
                await self._credits.commit(caller, reservation, amount=charge)
        except Exception:
            log.exception(
                "settling credits failed; the reservation will expire",
                extra={"reservation_id": str(reservation.reservation_id)},
            )
