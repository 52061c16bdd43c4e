"""A sandbox reset is a clean slate: a request a latency fault was still holding does not write into the new seed."""

from __future__ import annotations

import threading
import time

import httpx

from tests.conftest import Service

AUTH = ("agent@example.com/token", "sandbox-token")


def test_a_create_held_across_a_reset_never_lands_in_the_new_seed(svc: Service):
    zendesk = svc.app.state.sandbox.emulators["zendesk"]
    seed = zendesk.ticket_ids()
    svc.fault("zendesk", "latency", seconds=1.5, count=1, method="POST", path="/tickets.json")
    answers: list[BaseException | httpx.Response] = []

    def create() -> None:
        body = {"ticket": {"subject": "Late", "comment": {"body": "held by the fault"}, "requester_id": 1001}}
        try:
            answers.append(httpx.post(f"{svc.emulators['zendesk']}/api/v2/tickets.json", json=body, auth=AUTH,
                                      timeout=10, trust_env=False))
        except httpx.HTTPError as exc:
            answers.append(exc)

    held = threading.Thread(target=create)
    held.start()
    deadline = time.monotonic() + 10
    while not any(r["method"] == "POST" for r in list(zendesk.requests)):  # the request is in, and being held
        assert time.monotonic() < deadline, "the create never reached the emulator"
    svc.reset()
    held.join(timeout=10)
    assert isinstance(answers[0], httpx.TransportError)  # the connection drops, as for a vendor restarting
    assert zendesk.ticket_ids() == seed
