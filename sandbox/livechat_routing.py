"""The LiveChat emulator's routing model: agents with a routing status and a chat limit, groups, and their queues.

A chat sent to a group goes to the accepting agent with room and the fewest chats, or waits in the group's queue
when every agent is busy; a queued chat is assigned as soon as an agent frees up. The statuses are the Agent Chat
API's routing statuses (set_routing_status, https://platform.text.com/docs/messaging/agent-chat-api).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.livechat_wire import LiveChatError, now, required

# Routing statuses (and the sandbox's shorthand) -> LiveChat's own.
AGENT_STATUSES = {
    "online": "accepting_chats",
    "accepting_chats": "accepting_chats",
    "not_accepting_chats": "not_accepting_chats",
    "offline": "offline",
}


class Routing:
    """Mixed into LiveChatEmulator: who takes a chat, and the queue a chat waits in until someone can."""

    agents: dict[str, dict[str, Any]]
    chats: dict[str, dict[str, Any]]
    queues: dict[int, list[str]]

    def _set_agent(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Create or change an agent (routing status, chat limit, name, groups)."""
        agent_id = str(required(payload, "agent_id"))
        agent = self.agents.setdefault(
            agent_id,
            {
                "id": agent_id,
                "name": agent_id,
                "status": "offline",
                "max_chats": 2,
                "group_ids": [0],
                "job_title": "Support Agent",
            },
        )
        if "status" in payload:
            if payload["status"] not in AGENT_STATUSES:
                raise web.HTTPBadRequest(text=f"status must be one of {sorted(AGENT_STATUSES)}")
            agent["status"] = AGENT_STATUSES[payload["status"]]
        for key in ("name", "max_chats", "group_ids"):
            if key in payload:
                agent[key] = payload[key]
        return agent

    def _active_chats(self, agent_id: str) -> int:
        """How many active chats an agent has."""
        return sum(1 for c in self.chats.values() if c["thread"]["active"] and c["thread"].get("agent_id") == agent_id)

    def _group_agents(self, group_id: int, status: str = "accepting_chats") -> list[dict[str, Any]]:
        """The group's agents with this routing status."""
        return [a for a in self.agents.values() if group_id in a["group_ids"] and a["status"] == status]

    def _free_agent(self, group_id: int) -> dict[str, Any] | None:
        """The accepting agent with room and the fewest chats."""
        free = [a for a in self._group_agents(group_id) if self._active_chats(a["id"]) < a["max_chats"]]
        return min(free, key=lambda a: (self._active_chats(a["id"]), a["id"]), default=None)

    def group_status(self, group_id: int) -> str:
        """online (an agent has room), online_for_queue (all busy: chats queue), or offline."""
        if not self._group_agents(group_id):
            return "offline"
        return "online" if self._free_agent(group_id) else "online_for_queue"

    def _assign(self, chat: dict[str, Any], agent_id: str) -> None:
        """Give the chat to an agent, taking it out of any queue."""
        thread = chat["thread"]
        for queue in self.queues.values():
            if chat["id"] in queue:
                queue.remove(chat["id"])
        if thread.get("queued_at"):
            thread["queues_duration"] = 0
        thread.pop("queued_at", None)
        thread["agent_id"] = agent_id
        if agent_id not in thread["user_ids"]:
            thread["user_ids"].append(agent_id)

    def _enqueue(self, chat: dict[str, Any], group_id: int) -> None:
        """Put the chat at the back of the group's queue."""
        chat["thread"]["queued_at"] = now()
        chat["thread"]["agent_id"] = None
        queue = self.queues.setdefault(group_id, [])
        if chat["id"] not in queue:
            queue.append(chat["id"])

    def _drain(self) -> None:
        """Give waiting chats to agents who have room, oldest first."""
        for group_id, queue in self.queues.items():
            while queue and (agent := self._free_agent(group_id)):
                self._assign(self.chats[queue[0]], agent["id"])

    def _route(self, chat: dict[str, Any], group_id: int, ignore_availability: bool) -> None:
        """Assign a free agent, else queue (when availability is ignored), else say why not."""
        agent = self._free_agent(group_id)
        if agent:
            self._assign(chat, agent["id"])
        elif ignore_availability:
            self._enqueue(chat, group_id)
        else:
            raise LiveChatError("group_unavailable" if self._group_agents(group_id) else "group_offline")
