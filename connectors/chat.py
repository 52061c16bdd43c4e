"""ChatConnector: what the handoff needs from a live-agent chat vendor (LiveChat today), over the upstream layer."""

from __future__ import annotations

import asyncio
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from typing import Any, TypeVar

from connectors.deadline import Deadline
from connectors.http import UpstreamConnector
from errors import CRMError
from models import HandoffContext, HandoffResponse

T = TypeVar("T")


async def all_at_once(*calls: Awaitable[T]) -> list[T]:
    """Run independent calls concurrently; the first failure cancels the others and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]  # type: ignore[arg-type]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


@dataclasses.dataclass
class ChatAttempt:
    """What exists at the chat vendor so far, so a failure can say it (and close it) honestly."""

    chat_id: str | None = None
    closed: bool = False


class ChatConnector(UpstreamConnector, ABC):
    """One chat vendor: hand a caller to an agent, read a handoff's state, close a chat; `chat_type` selects it."""

    # The config may name the CRM that takes the fallback ticket; None means HANDOFF_FALLBACK_CRM.
    config: Any

    def with_deadline(self, deadline: Deadline) -> ChatConnector:
        """The same connector on a shorter clock, so the chat vendor cannot spend the time the fallback needs."""
        return type(self)(self.config, dataclasses.replace(self.ctx, deadline=deadline))

    def failure_reason(self, error: CRMError) -> str:
        """Why the vendor could not take the call, for the fallback: the contract code unless it says more."""
        return error.code

    @abstractmethod
    async def hand_over(self, context: HandoffContext, urgency: Any, attempt: ChatAttempt) -> HandoffResponse:
        """Availability, start, context and transfer: an agent's chat, or a typed error (noting the chat in `attempt`)."""

    @abstractmethod
    async def read_state(self, chat_id: str) -> HandoffResponse:
        """Where a chat handoff is now: assigned, queued or closed."""

    @abstractmethod
    async def close(self, chat_id: str) -> bool:
        """Close a chat that could not be handed over; whether that worked."""
