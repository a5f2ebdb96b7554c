"""Every message the platform exchanges: name, payload, reply, which queue consumes it and
which services may publish it.

The bus topology, the broker's permissions (`common.bus.definitions`), the consumers' check
of each message's verified publisher (`common.bus.trust`) and the AsyncAPI document are all
derived from this table, so a message added here is routed, guarded and documented in one step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from common.contracts.analytics import CreditsReport, GetCreditsReport, GetUsageReport, UsageReport
from common.contracts.chat import ChatCompletion, CompleteChat, ListModels, ModelList, UsageRecorded
from common.contracts.credits import (
    Balance,
    CommitReservation,
    CreditsChanged,
    CreditsGranted,
    GetBalance,
    GetJournal,
    GrantCredits,
    JournalPage,
    LedgerTick,
    Reconcile,
    ReconciliationReport,
    ReleaseReservation,
    Reservation,
    ReservationResolved,
    ReserveCredits,
)
from common.contracts.embeddings import CreateEmbeddings, Embeddings
from common.contracts.envelope import Contract
from common.contracts.images import (
    DeleteImage,
    GenerateImage,
    GetImage,
    GetImageJob,
    ImageDeleted,
    ImageGenerated,
    ImageJob,
    ImagePage,
    ImageRecord,
    ListImages,
    RunImageJob,
)
from common.contracts.threads import (
    CreateThread,
    DeleteThread,
    GetThread,
    ListThreads,
    ThreadDeleted,
    ThreadInfo,
    ThreadMessages,
    ThreadPage,
    UpdateThread,
)


@dataclass(frozen=True, slots=True)
class MessageSpec:
    name: str
    payload: type[Contract]
    service: str
    kind: Literal["command", "event"] = "command"
    reply: type[Contract] | None = None
    summary: str = ""
    # Commands scoped to one user go to the partition queue owning that user (see
    # common.bus.topology): the ledger's account commands, and a user's threads.
    partitioned: bool = False
    # A command partitioned only when this holds of its payload (the rest go to the shared queue).
    partitioned_when: Callable[[Any], bool] | None = None
    # The services whose broker user may publish it (`ops`: the operators' tools user).
    publishers: frozenset[str] = frozenset()

    def partitioned_for(self, payload: Any) -> bool:
        """Whether this message, with this payload, goes to a partition queue."""
        return self.partitioned and (self.partitioned_when is None or self.partitioned_when(payload))

    @property
    def shared(self) -> bool:
        """Whether some of these messages go to the service's shared queue."""
        return not self.partitioned or self.partitioned_when is not None


def _threaded(payload: CompleteChat) -> bool:
    return payload.thread_id is not None


# Who publishes what. The gateway alone speaks for users (it verified their token); the
# services settle their own work; `ops` is the operators' tools user.
GATEWAY = frozenset({"gateway"})
WORKERS = frozenset({"chat", "imagegen"})  # hold, charge and return credits for their work
GATEWAY_OR_OPS = frozenset({"gateway", "ops"})
READERS = frozenset({"gateway", "chat", "imagegen", "ops"})
CHAT = frozenset({"chat"})
IMAGEGEN = frozenset({"imagegen"})
CREDITS = frozenset({"credits"})

# Image jobs run long, so they have a queue (and a prefetch) of their own: a backlog of jobs
# never holds up the quick image queries and job submissions on the `imagegen` queue.
IMAGE_WORKER = "imagegen-jobs"

CATALOG: dict[str, MessageSpec] = {
    spec.name: spec
    for spec in (
        MessageSpec(
            name="CompleteChat",
            payload=CompleteChat,
            reply=ChatCompletion,
            service="chat",
            summary="Answer a conversation; the reply is a ChatCompletion.",
            publishers=GATEWAY,
            # One continuing a thread goes to the chat replica owning its user's threads.
            partitioned=True,
            partitioned_when=_threaded,
        ),
        MessageSpec(
            "ReserveCredits",
            ReserveCredits,
            "credits",
            reply=Reservation,
            summary="Hold credits for a piece of work.",
            partitioned=True,
            publishers=WORKERS,
        ),
        MessageSpec(
            "CommitReservation",
            CommitReservation,
            "credits",
            reply=ReservationResolved,
            summary="Charge a reservation.",
            partitioned=True,
            publishers=WORKERS,
        ),
        MessageSpec(
            "ReleaseReservation",
            ReleaseReservation,
            "credits",
            reply=ReservationResolved,
            summary="Return a reservation.",
            partitioned=True,
            publishers=WORKERS,
        ),
        MessageSpec(
            "GrantCredits",
            GrantCredits,
            "credits",
            reply=CreditsGranted,
            summary="Add credits to an account.",
            partitioned=True,
            publishers=GATEWAY_OR_OPS,
        ),
        MessageSpec(
            "GetBalance",
            GetBalance,
            "credits",
            reply=Balance,
            summary="Read an account's balance.",
            partitioned=True,
            publishers=READERS,
        ),
        MessageSpec(
            "GetJournal",
            GetJournal,
            "credits",
            reply=JournalPage,
            summary="Read an account's journal.",
            partitioned=True,
            publishers=GATEWAY_OR_OPS,
        ),
        MessageSpec(
            "Reconcile",
            Reconcile,
            "credits",
            reply=ReconciliationReport,
            summary="Recompute balances from the journal.",
            publishers=GATEWAY_OR_OPS,
        ),
        MessageSpec(
            "CreditsChanged",
            CreditsChanged,
            "credits",
            kind="event",
            summary="Accounts changed (one page of the log).",
            publishers=CREDITS,
        ),
        MessageSpec(
            "LedgerTick",
            LedgerTick,
            "credits",
            summary="Wake a ledger partition's owner (internal).",
            partitioned=True,
            publishers=CREDITS,
        ),
        MessageSpec(
            "GenerateImage",
            GenerateImage,
            "imagegen",
            reply=ImageJob,
            summary="Accept an image job (credits held, job stored); the image follows on the job's own queue.",
            publishers=GATEWAY,
        ),
        MessageSpec(
            "RunImageJob",
            RunImageJob,
            IMAGE_WORKER,
            summary="Run an accepted image job: provider, storage, gallery, charge (internal).",
            publishers=IMAGEGEN,
        ),
        MessageSpec(
            "GetImageJob",
            GetImageJob,
            "imagegen",
            reply=ImageJob,
            summary="Read an image job's status.",
            publishers=GATEWAY,
        ),
        MessageSpec(
            "ListImages",
            ListImages,
            "imagegen",
            reply=ImagePage,
            summary="List images, newest first.",
            publishers=GATEWAY,
        ),
        MessageSpec("GetImage", GetImage, "imagegen", reply=ImageRecord, summary="Read one image.", publishers=GATEWAY),
        MessageSpec(
            "DeleteImage",
            DeleteImage,
            "imagegen",
            reply=ImageDeleted,
            summary="Remove an image and its stored file.",
            publishers=GATEWAY,
        ),
        MessageSpec(
            "ImageGenerated",
            ImageGenerated,
            "imagegen",
            kind="event",
            summary="An image was generated and charged.",
            publishers=IMAGEGEN,
        ),
        MessageSpec(
            "ListModels",
            ListModels,
            "chat",
            reply=ModelList,
            summary="Which models the chat service answers with.",
            publishers=GATEWAY,
        ),
        MessageSpec(
            "UsageRecorded",
            UsageRecorded,
            "chat",
            kind="event",
            summary="An answer's tokens, latency, cache use and estimated provider cost.",
            publishers=CHAT,
        ),
        MessageSpec(
            "CreateThread",
            CreateThread,
            "chat",
            reply=ThreadInfo,
            summary="Start a conversation thread for the acting user.",
            publishers=GATEWAY,
            partitioned=True,  # the acting user's threads have one owner
        ),
        MessageSpec(
            "ListThreads",
            ListThreads,
            "chat",
            reply=ThreadPage,
            summary="The acting user's threads, newest first.",
            publishers=GATEWAY,
            partitioned=True,  # the acting user's threads have one owner
        ),
        MessageSpec(
            "GetThread",
            GetThread,
            "chat",
            reply=ThreadMessages,
            summary="One of the acting user's threads with its latest messages.",
            publishers=GATEWAY,
            partitioned=True,  # the acting user's threads have one owner
        ),
        MessageSpec(
            "UpdateThread",
            UpdateThread,
            "chat",
            reply=ThreadInfo,
            summary="Rename a thread or change its system prompt.",
            publishers=GATEWAY,
            partitioned=True,  # the acting user's threads have one owner
        ),
        MessageSpec(
            "DeleteThread",
            DeleteThread,
            "chat",
            reply=ThreadDeleted,
            summary="Delete a thread and its messages.",
            publishers=GATEWAY,
            partitioned=True,  # the acting user's threads have one owner
        ),
        MessageSpec(
            "GetUsageReport",
            GetUsageReport,
            "chat",
            reply=UsageReport,
            summary="Usage and cost by day, user, model or provider.",
            publishers=GATEWAY_OR_OPS,
        ),
        MessageSpec(
            "CreateEmbeddings",
            CreateEmbeddings,
            "chat",
            reply=Embeddings,
            summary="Embed texts; the reply is an Embeddings (vectors, usage, credits charged).",
            publishers=GATEWAY,
        ),
        MessageSpec(
            "GetCreditsReport",
            GetCreditsReport,
            "credits",
            reply=CreditsReport,
            summary="Credits granted against spent.",
            publishers=GATEWAY_OR_OPS,
        ),
    )
}
