"""Every message the platform exchanges: name, payload, reply and which queue consumes it.

The bus topology and the AsyncAPI document are both derived from this table, so a message
added here is routed and documented in one step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from common.contracts.chat import ChatCompletion, CompleteChat
from common.contracts.credits import (
    Balance,
    CommitReservation,
    CreditsChanged,
    CreditsGranted,
    GetBalance,
    GetJournal,
    GrantCredits,
    JournalPage,
    Reconcile,
    ReconciliationReport,
    ReleaseReservation,
    Reservation,
    ReservationResolved,
    ReserveCredits,
)
from common.contracts.envelope import Contract


@dataclass(frozen=True, slots=True)
class MessageSpec:
    name: str
    payload: type[Contract]
    service: str
    kind: Literal["command", "event"] = "command"
    reply: type[Contract] | None = None
    summary: str = ""


CATALOG: dict[str, MessageSpec] = {
    spec.name: spec
    for spec in (
        MessageSpec(
            name="CompleteChat",
            payload=CompleteChat,
            reply=ChatCompletion,
            service="chat",
            summary="Answer a conversation; the reply is a ChatCompletion.",
        ),
        MessageSpec(
            "ReserveCredits", ReserveCredits, "credits", reply=Reservation, summary="Hold credits for a piece of work."
        ),
        MessageSpec(
            "CommitReservation",
            CommitReservation,
            "credits",
            reply=ReservationResolved,
            summary="Charge a reservation.",
        ),
        MessageSpec(
            "ReleaseReservation",
            ReleaseReservation,
            "credits",
            reply=ReservationResolved,
            summary="Return a reservation.",
        ),
        MessageSpec(
            "GrantCredits", GrantCredits, "credits", reply=CreditsGranted, summary="Add credits to an account."
        ),
        MessageSpec("GetBalance", GetBalance, "credits", reply=Balance, summary="Read an account's balance."),
        MessageSpec("GetJournal", GetJournal, "credits", reply=JournalPage, summary="Read an account's journal."),
        MessageSpec(
            "Reconcile",
            Reconcile,
            "credits",
            reply=ReconciliationReport,
            summary="Recompute balances from the journal.",
        ),
        MessageSpec("CreditsChanged", CreditsChanged, "credits", kind="event", summary="An account changed."),
    )
}
