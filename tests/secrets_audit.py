"""The session-wide secrets audit: every credential the service was given, looked for in every log line and answer.

Credentials come from the sandbox's own (the service's defaults in sandbox mode), from any secret field of a
`config` a test sent to the service, and from `AUDIT.register`. Log lines are checked as the service writes them
(its JSON formatter); answers as the tests received them. A leak is remembered by test and secret id, never value.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from observability import JSONFormatter

# Config fields that hold a credential (connectors/*.py mark them SecretStr); short values are words, not secrets.
SECRET_FIELDS = frozenset({"api_token", "api_key", "oauth_token", "client_secret", "access_token", "refresh_token"})
MIN_SECRET_LENGTH = 8
# GET /sandbox hands the sandbox's own stand-in credentials to tools by design (sandbox mode only), and the OpenAPI
# document's examples hold the docs' placeholders ("your_token"), which tests send as configs too.
NOT_AUDITED = frozenset({"/sandbox", "/openapi.json"})


def basic_forms(user: str | None, secret: str) -> list[str]:
    """The Basic Authorization values a secret travels in, as each vendor builds them."""
    pairs = [f"{secret}:X"] + ([f"{user}/token:{secret}", f"{user}:{secret}"] if user else [])
    return [base64.b64encode(p.encode()).decode() for p in pairs]


@dataclass
class SecretsAudit:
    """Known secrets (value -> id), and the leaks found so far as (test, secret id, where)."""

    secrets: dict[str, str] = field(default_factory=dict)
    leaks: set[tuple[str, str, str]] = field(default_factory=set)
    current: str = "(session start)"
    checked: dict[str, int] = field(default_factory=lambda: {"log lines": 0, "answers": 0})
    _installed: bool = False

    def register(self, values: Iterable[str], source: str, user: str | None = None) -> None:
        """Remember credentials (and their Basic forms) under an id that names where they came from."""
        for value in values:
            if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH or value in self.secrets:
                continue
            secret_id = f"secret#{len(self.secrets) + 1} ({source})"
            self.secrets[value] = secret_id
            for form in basic_forms(user, value):
                self.secrets.setdefault(form, f"{secret_id} as Basic auth")

    def register_config(self, config: Any, source: str) -> None:
        """The secret fields of a vendor config a test sends."""
        if isinstance(config, dict):
            user = config.get("email") or config.get("account_id")
            for name in SECRET_FIELDS & config.keys():
                self.register([config[name]], f"{source} config.{name}", user=user if isinstance(user, str) else None)

    def check(self, text: str, where: str) -> None:
        """Note every known secret in a text."""
        self.checked["log lines" if where == "log" else "answers"] += 1
        for value, secret_id in self.secrets.items():
            if value in text:
                self.leaks.add((self.current, secret_id, where))

    def answer(self, path: str, text: str) -> None:
        """Check one answer of the service, unless its path hands out placeholders by design (NOT_AUDITED)."""
        if path not in NOT_AUDITED:
            self.check(text, f"answer to {path}")

    def install(self) -> None:
        """A handler on the service's logger (and the root) that checks each line as the service formats it."""
        if self._installed:
            return
        self._installed = True
        from sandbox import SANDBOX_CREDENTIALS

        for vendor, creds in SANDBOX_CREDENTIALS.items():
            user = creds.get("email") or creds.get("account_id")
            self.register([v for k, v in creds.items() if k in SECRET_FIELDS], f"sandbox {vendor}", user=user)
        handler = AuditHandler(self)
        for name in ("", "connectors"):
            logging.getLogger(name).addHandler(handler)
        logging.getLogger("connectors").setLevel(logging.DEBUG)  # every line the service can write is checked

    def summary(self) -> str:
        lines, answers = self.checked["log lines"], self.checked["answers"]
        return (f"{len(self.secrets)} credential forms looked for in {lines} log lines and {answers} answers: "
                f"{len(self.leaks)} leaks")

    # httpx event hooks: what a test sends registers its secrets, what it receives is checked.

    def on_request(self, request: httpx.Request) -> None:
        try:
            body = orjson.loads(request.content or b"null")  # deep or broken bodies (the limits tests) are no config
        except (orjson.JSONDecodeError, httpx.RequestNotRead):
            return
        if isinstance(body, dict):
            self.register_config(body.get("config"), "request")

    def on_response(self, response: httpx.Response) -> None:
        response.read()
        self.answer(response.request.url.path, response.text + json.dumps(dict(response.headers)))


class AuditHandler(logging.Handler):
    """Checks each record as the service's JSON formatter would write it."""

    def __init__(self, audit: SecretsAudit) -> None:
        super().__init__(logging.DEBUG)
        self.audit = audit
        self.setFormatter(JSONFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "_audited", False):  # propagated from "connectors" to the root: checked once
            return
        record._audited = True
        try:
            self.audit.check(self.format(record), "log")
        except Exception:  # a record the formatter cannot write is the service's own test's business
            self.handleError(record)


AUDIT = SecretsAudit()


def audited_client(service_url: str, **kwargs: Any) -> httpx.Client:
    """An httpx client whose calls to the service are audited (calls to the emulators are not: they are vendors)."""

    def sent(request: httpx.Request) -> None:
        if str(request.url).startswith(service_url):
            AUDIT.on_request(request)

    def received(response: httpx.Response) -> None:
        if str(response.request.url).startswith(service_url):
            AUDIT.on_response(response)

    return httpx.Client(event_hooks={"request": [sent], "response": [received]}, **kwargs)
