"""The event pipeline's OpenTelemetry instruments, on the service's meter provider (telemetry.py), so /metrics shows them."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import telemetry


@lru_cache
def _instruments() -> dict[str, Any]:
    meter = telemetry.get().meter_provider.get_meter("connectors.events", telemetry.VERSION)
    return {
        "published": meter.create_counter(
            "connectors.events.published", unit="{event}", description="Events published, by type and outcome (queued, duplicate)."
        ),
        "deliveries": meter.create_counter(
            "connectors.events.deliveries", unit="{attempt}",
            description="Delivery attempts by outcome: delivered, failed, gone; and events dead_lettered or dropped.",
        ),
        "depth": meter.create_gauge(
            "connectors.events.queue_depth", unit="{delivery}", description="Deliveries waiting (intake plus lanes)."
        ),
    }


def published(event_type: str, queued: bool) -> None:
    _instruments()["published"].add(1, {"connectors.event_type": event_type, "connectors.outcome": "queued" if queued else "duplicate"})


def delivery(outcome: str) -> None:
    _instruments()["deliveries"].add(1, {"connectors.outcome": outcome})


def depth(value: int) -> None:
    _instruments()["depth"].set(value)
