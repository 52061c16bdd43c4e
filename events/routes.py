"""The admin API for subscribers: /subscriptions and their dead letters (AdminCaller: CONNECTORS_ADMIN_KEYS)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from admin import AdminCaller
from deps import ERROR_RESPONSES

from .bus import EventBus
from .envelope import DeadLetter, Subscription, SubscriptionRequest

router = APIRouter(prefix="/subscriptions", tags=["events"], responses=ERROR_RESPONSES)


class SubscriptionList(BaseModel):
    subscriptions: list[Subscription]


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetter]


def bus_of(request: Request) -> EventBus:
    return request.app.state.events.bus


@router.post("", status_code=201, response_model=Subscription, response_model_exclude_none=True)
async def create_subscription(body: SubscriptionRequest, request: Request, admin: AdminCaller) -> Subscription:
    """Register a subscriber; keep the `secret` from this answer: no other answer shows it (docs/events.md)."""
    return await bus_of(request).subscribe(body)


@router.get("", response_model=SubscriptionList, response_model_exclude_none=True)
async def list_subscriptions(request: Request, admin: AdminCaller) -> SubscriptionList:
    """Every subscriber, without secrets."""
    subs = await bus_of(request).all()
    return SubscriptionList(subscriptions=[sub.model_copy(update={"secret": None}) for sub in subs])


@router.get("/{sub_id}", response_model=Subscription, response_model_exclude_none=True)
async def get_subscription(sub_id: str, request: Request, admin: AdminCaller) -> Subscription:
    """One subscriber, without its secret; `enabled` false after it answered 410 Gone."""
    return await bus_of(request).get(sub_id)


@router.delete("/{sub_id}", status_code=204)
async def delete_subscription(sub_id: str, request: Request, admin: AdminCaller) -> Response:
    """Forget a subscriber and its dead letters; events queued for it are dropped."""
    await bus_of(request).delete(sub_id)
    return Response(status_code=204)


@router.get("/{sub_id}/dead-letters", response_model=DeadLetterList, response_model_exclude_none=True)
async def list_dead_letters(sub_id: str, request: Request, admin: AdminCaller) -> DeadLetterList:
    """Events this subscriber never took, oldest first, each with its attempts and last answer."""
    return DeadLetterList(dead_letters=await bus_of(request).dead_letters(sub_id))


@router.post("/{sub_id}/dead-letters/{event_id}/replay", status_code=202, response_model=DeadLetter,
             response_model_exclude_none=True)
async def replay_dead_letter(sub_id: str, event_id: str, request: Request, admin: AdminCaller) -> DeadLetter:
    """Deliver a dead letter again (a fresh schedule of attempts), after the object's events already queued."""
    return await bus_of(request).replay(sub_id, event_id)
