"""A fast fake Zendesk for the benchmark: raw asyncio HTTP/1.1 keep-alive, one ~1 KB user JSON, optional delay.

It answers every request with the same `GET /api/v2/users/{id}.json?include=organizations` shape (user plus its
sideloaded organization), so the upstream's own cost stays far below the service's. The shape follows Zendesk's
Show User (https://developer.zendesk.com/api-reference/ticketing/users/users/#show-user) with organizations
sideloaded (https://developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/side_loading/). Usage:
`python bench/fake_upstream.py --port 9001 --delay-ms 50`.
"""

from __future__ import annotations

import argparse
import asyncio

import orjson

USER = {
    "user": {
        "id": 1001, "url": "https://bench.zendesk.com/api/v2/users/1001.json", "name": "Ahmed Al-Mansoori",
        "email": "ahmed@example.ae", "created_at": "2024-01-15T10:30:00Z", "updated_at": "2025-06-01T08:00:00Z",
        "time_zone": "Asia/Dubai", "iana_time_zone": "Asia/Dubai", "phone": "+971 50 123 4567",
        "shared_phone_number": False, "photo": None, "locale_id": 1, "locale": "en-US", "organization_id": 5001,
        "role": "end-user", "verified": True, "external_id": "CRM-1001", "tags": ["vip", "dubai"], "alias": "",
        "active": True, "shared": False, "shared_agent": False, "last_login_at": "2025-05-30T12:00:00Z",
        "two_factor_auth_enabled": False, "signature": None, "details": "", "notes": "", "role_type": None,
        "custom_role_id": None, "moderator": False, "ticket_restriction": "requested", "only_private_comments": False,
        "restricted_agent": True, "suspended": False, "default_group_id": None, "report_csv": False,
        "user_fields": {"tier": "gold", "preferred_language": "ar"},
    },
    "organizations": [{
        "id": 5001, "url": "https://bench.zendesk.com/api/v2/organizations/5001.json", "name": "Al-Mansoori Trading",
        "shared_tickets": False, "shared_comments": False, "external_id": None, "created_at": "2023-03-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z", "domain_names": ["almansoori.example"], "details": "", "notes": "",
        "group_id": None, "tags": ["enterprise"], "organization_fields": {"tier": "gold"},
    }],
}
BODY = orjson.dumps(USER)
# Zendesk's rate-limit headers as a high-volume account sends them (far from its limit), so the service's rate
# governor reads real headers on every answer and, as with a healthy account, never has to pace.
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"ratelimit-limit: 100000000\r\nratelimit-remaining: 99999999\r\nratelimit-reset: 60\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)


class FakeZendesk(asyncio.Protocol):
    """Answers each complete request head (GET, or a body sized by Content-Length) with the canned user."""

    delay = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15:].split(b"\r\n", 1)[0])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            if self.delay:
                asyncio.get_running_loop().call_later(self.delay, self._answer)
            else:
                self._answer()

    def _answer(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(RESPONSE)


async def serve(host: str, port: int, delay_ms: float) -> None:
    """Serve until killed."""
    FakeZendesk.delay = delay_ms / 1000
    server = await asyncio.get_running_loop().create_server(FakeZendesk, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Parse arguments and serve (with uvloop when installed, like the service)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args.host, args.port, args.delay_ms))
    except ImportError:
        asyncio.run(serve(args.host, args.port, args.delay_ms))


if __name__ == "__main__":
    main()
