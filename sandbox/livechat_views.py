"""The LiveChat emulator's views: a chat, its thread, users and queue as the Agent and Customer Chat APIs show them.

The two sides differ (https://platform.text.com/docs/messaging/agent-chat-api,
https://platform.text.com/docs/messaging/customer-chat-api): the customer side sees no agents-only events, tags or
agent emails.
"""

from __future__ import annotations

from typing import Any


class ChatViews:
    """Mixed into LiveChatEmulator: its chats rendered for either API (its `_group_agents` counts a queue's agents)."""

    customers: dict[str, dict[str, Any]]
    agents: dict[str, dict[str, Any]]
    queues: dict[int, list[str]]
    seconds_per_chat: int

    def _queue(self, chat: dict[str, Any]) -> dict[str, Any] | None:
        """The thread's queue object (position, wait_time, queued_at) while it waits."""
        thread = chat["thread"]
        group_id = chat["access"]["group_ids"][0]
        queue = self.queues.get(group_id, [])
        if not thread["active"] or chat["id"] not in queue:
            return None
        position = queue.index(chat["id"]) + 1
        agents = max(1, len(self._group_agents(group_id)))
        wait = position * self.seconds_per_chat // agents
        return {"position": position, "wait_time": wait, "queued_at": thread["queued_at"]}

    def _thread(self, chat: dict[str, Any], customer_side: bool) -> dict[str, Any]:
        """The thread as get_chat shows it; the customer side sees no agents-only events or tags."""
        thread = chat["thread"]
        out = {k: v for k, v in thread.items() if k not in ("agent_id", "queued_at")}
        if customer_side:  # the Customer Chat API's events have no `visibility`: it shows only what is for all
            out["events"] = [
                {k: v for k, v in e.items() if k != "visibility"} for e in thread["events"] if e["visibility"] == "all"
            ]
            out.pop("tags", None)
        queue = self._queue(chat)
        if queue:
            out["queue"] = queue
        return out

    def _users(self, chat: dict[str, Any], customer_side: bool) -> list[dict[str, Any]]:
        """The chat's users: the customer and the agents in the thread, as each API shows them.

        Agent side: the customer's profile, agents with email and visibility. Customer side: the customer as
        {id, type, present} (name and email only when set), agents with name and job_title, no email.
        """
        customer = self.customers.get(chat["customer_id"], {"id": chat["customer_id"]})
        if not chat["customer_id"]:
            users: list[dict[str, Any]] = []
        elif customer_side:
            me = {"id": customer["id"], "type": "customer", "present": False}
            me.update({k: customer[k] for k in ("name", "email") if customer.get(k)})
            users = [me]
        else:
            users = [{**customer, "type": "customer", "present": False}]
        for user_id in chat["thread"]["user_ids"]:
            if user_id == chat["customer_id"]:
                continue
            agent = self.agents.get(user_id, {"id": user_id, "name": user_id, "job_title": ""})
            user: dict[str, Any] = {"id": user_id, "name": agent["name"], "type": "agent", "present": True}
            if customer_side:
                if agent.get("job_title"):
                    user["job_title"] = agent["job_title"]
            else:
                user.update(email=user_id, visibility="all")
            users.append(user)
        return users

    def _summary(self, chat: dict[str, Any], customer_side: bool) -> dict[str, Any]:
        """A chat summary as list_chats shows it: the agent side has `last_thread_summary`, the customer side
        `last_thread_id`, `last_thread_created_at` and `active`; both have the last event of each type."""
        thread = self._thread(chat, customer_side)
        last_events = {
            e["type"]: {"thread_id": thread["id"], "thread_created_at": thread["created_at"], "event": e}
            for e in thread["events"]
        }
        summary: dict[str, Any] = {"id": chat["id"]}
        if customer_side:
            summary.update(last_thread_id=thread["id"], last_thread_created_at=thread["created_at"])
        else:
            keys = ("id", "created_at", "user_ids", "properties", "active", "access", "queue", "tags")
            summary["last_thread_summary"] = {k: thread[k] for k in keys if k in thread}
        summary.update(
            last_event_per_type=last_events,
            users=self._users(chat, customer_side),
            access=chat["access"],
            properties=chat["properties"],
        )
        if customer_side:
            summary["active"] = thread["active"]
        else:
            summary["is_followed"] = False
        return summary

    def _chat_view(self, chat: dict[str, Any], customer_side: bool) -> dict[str, Any]:
        """A chat as get_chat shows it."""
        view = {
            "id": chat["id"],
            "thread": self._thread(chat, customer_side),
            "users": self._users(chat, customer_side),
            "access": chat["access"],
            "properties": chat["properties"],
        }
        if not customer_side:
            view["is_followed"] = False
        return view

    @staticmethod
    def _started(chat: dict[str, Any]) -> dict[str, Any]:
        """start_chat's answer: `event_ids` only when the chat was started with initial events."""
        thread = chat["thread"]
        started: dict[str, Any] = {"chat_id": chat["id"], "thread_id": thread["id"]}
        if thread["events"]:
            started["event_ids"] = [e["id"] for e in thread["events"]]
        return started
