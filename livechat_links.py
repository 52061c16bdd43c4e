"""The agent-facing chat link: a template with bare `{name}` placeholders, checked once, filled safely.

A format spec or conversion (`{chat_id:d}`, `{chat_id:>20000000}`, `{chat_id!r}`) or an attribute/index
(`{chat_id.x}`, `{chat_id[0]}`) could fail or balloon only once a chat exists, so only bare names pass.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from urllib.parse import quote

URL_FIELDS = frozenset({"chat_id", "thread_id", "license_id"})
DEFAULT_TEMPLATE = "https://my.livechatinc.com/chats/{chat_id}"


def check_url_template(value: str) -> str:
    """The template, if it is an http(s) URL whose placeholders are all bare names we can fill; else ValueError."""
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError:
        raise ValueError("not a valid template (unbalanced braces?)") from None
    fields = [(name, spec, conversion) for _, name, spec, conversion in parts if name is not None]
    if any(spec or conversion for _, spec, conversion in fields):
        raise ValueError("placeholders take no format spec or conversion: write {chat_id}, not {chat_id:...}")
    unknown = sorted({name for name, _, _ in fields} - URL_FIELDS)
    if unknown:
        raise ValueError(f"unknown placeholder(s) {unknown}; use {sorted(URL_FIELDS)}")
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value


def fill_url_template(template: str, values: Mapping[str, str]) -> str:
    """The link with each value percent-encoded (a checked template cannot fail here)."""
    return template.format(**{name: quote(values.get(name, ""), safe="") for name in URL_FIELDS})
