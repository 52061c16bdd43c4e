"""The Intercom emulator's ticket states: the workspace's states, and what UpdateTicket takes per API version.

2.11 (descriptions/2.11 of Intercom's OpenAPI, `update_ticket_request`): a `state` word, only in_progress,
waiting_on_customer or resolved. 2.12 and later: `ticket_state_id`, a state of the ticket's type, listed by
`GET /ticket_states` (https://developers.intercom.com/docs/references/2.14/rest-api/api.intercom.io/ticket-states/listticketstates),
whose list includes archived states; a ticket's `ticket_state` is then an object, not the word.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

CATEGORIES = ("submitted", "in_progress", "waiting_on_customer", "resolved")
UPDATE_STATES_2_11 = ("in_progress", "waiting_on_customer", "resolved")
DEFAULT_VERSION = "2.11"  # the seeded app's version: what a call without Intercom-Version gets
STATE_IDS_SINCE = (2, 12)


class StateRefused(Exception):
    """An UpdateTicket state Intercom refuses: its error code and message (a 400)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def version_of(request: web.Request) -> tuple[int, int]:
    """The request's Intercom-Version as a comparable pair (Preview is newest; unreadable is the default)."""
    version = request.headers.get("Intercom-Version", DEFAULT_VERSION)
    if version == "Preview":
        return (99, 0)
    major, _, minor = version.partition(".")
    return (int(major), int(minor or 0)) if major.isdigit() and (minor or "0").isdigit() else (2, 11)


def has_state_ids(request: web.Request) -> bool:
    """Whether this version has ticket state objects, `GET /ticket_states` and `ticket_state_id` (2.12+)."""
    return version_of(request) >= STATE_IDS_SINCE


def seeded_states() -> dict[str, dict[str, Any]]:
    """Ticket type 1's and 2's default states, a submitted state of type 2 only, an archived in_progress state of type 1."""

    def state(sid: str, category: str, internal: str, external: str, types: tuple[str, ...], archived: bool = False) -> dict[str, Any]:
        return {"id": sid, "category": category, "internal_label": internal, "external_label": external,
                "ticket_types": types, "archived": archived}

    return {s["id"]: s for s in (
        state("1", "submitted", "Submitted", "Submitted", ("1", "2")),
        state("2", "in_progress", "In progress", "In progress", ("1", "2")),
        state("3", "waiting_on_customer", "Waiting on customer", "Waiting on you", ("1", "2")),
        state("4", "resolved", "Resolved", "Resolved", ("1", "2")),
        state("5", "submitted", "Awaiting triage", "Submitted", ("2",)),
        state("6", "in_progress", "With engineering (old)", "In progress", ("1",), archived=True),
    )}  # fmt: skip


def default_state(states: dict[str, dict[str, Any]], category: str, ticket_type: str) -> str:
    """The first live state of a category for a ticket type: what a 2.11 `state` word (or a create) sets."""
    return next(s["id"] for s in states.values() if s["category"] == category and ticket_type in s["ticket_types"]
                and not s["archived"])  # fmt: skip


def state_object(state: dict[str, Any]) -> dict[str, Any]:
    """A ticket's `ticket_state` from 2.12 on."""
    return {"type": "ticket_state", "id": state["id"], "category": state["category"],
            "internal_label": state["internal_label"], "external_label": state["external_label"]}


def labels_2_11(state: dict[str, Any]) -> dict[str, Any]:
    """A 2.11 ticket's state fields: the word and its labels."""
    return {"ticket_state": state["category"], "ticket_state_internal_label": state["internal_label"],
            "ticket_state_external_label": state["external_label"]}


def listed(states: dict[str, dict[str, Any]], ticket_types: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`GET /ticket_states`: every state (archived too), each with the ticket types it belongs to."""
    def brief(tid: str) -> dict[str, Any]:
        kind = ticket_types[tid]
        return {k: kind[k] for k in ("type", "id", "name", "description", "icon", "archived", "is_internal", "category")}

    data = [{"type": "ticket_state", **{k: v for k, v in s.items() if k != "ticket_types"},
             "ticket_types": {"type": "list", "data": [brief(t) for t in s["ticket_types"] if t in ticket_types]}}
            for s in states.values()]  # fmt: skip
    return {"type": "list", "data": data}


def requested_state(request: web.Request, body: dict[str, Any], states: dict[str, dict[str, Any]], ticket_type: str) -> str | None:
    """The state id an UpdateTicket body asks for (None: no change), as the request's version reads the body."""
    if has_state_ids(request):
        if "state" in body:
            raise StateRefused("parameter_invalid", "state is not a parameter of UpdateTicket from 2.12 on: send ticket_state_id")
        if "ticket_state_id" not in body:
            return None
        state = states.get(str(body["ticket_state_id"]))
        if state is None or state["archived"] or ticket_type not in state["ticket_types"]:
            raise StateRefused("ticket_state_id_invalid", "Ticket state id is not valid or is not associated with the ticket type")
        return state["id"]
    if "ticket_state_id" in body:
        raise StateRefused("parameter_invalid", "ticket_state_id is not a parameter of UpdateTicket in 2.11: send state")
    if "state" not in body:
        return None
    if body["state"] not in UPDATE_STATES_2_11:
        raise StateRefused("parameter_invalid", f"state must be one of {', '.join(UPDATE_STATES_2_11)}")
    return default_state(states, body["state"], ticket_type)
