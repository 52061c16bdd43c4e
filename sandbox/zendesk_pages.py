"""Zendesk's two pagination styles, with links back at the emulator so SDKs can follow them.

Offset (`page`, `per_page` → `next_page`, `previous_page`, `count`) and cursor (`page[size]`,
`page[after]`/`page[before]` → `meta: {has_more, after_cursor, before_cursor}`, `links: {next, prev}`),
as https://developer.zendesk.com/api-reference/introduction/pagination/ describes them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from yarl import URL

MAX_PAGE_SIZE = 100
CURSOR_KEYS = ("page[size]", "page[after]", "page[before]")
SortKey = Callable[[dict[str, Any]], tuple[Any, ...]]


class PageError(ValueError):
    """A paging parameter Zendesk refuses (400 `InvalidPaginationParameter`)."""


def by_id(record: dict[str, Any]) -> tuple[Any, ...]:
    """The default order of Zendesk's lists: by id."""
    return (record["id"],)


def link(request: web.Request, **params: str | None) -> str:
    """This request's URL (the sandbox's host and the emulator's mount path) with some parameters changed."""
    query = {k: v for k, v in request.query.items() if k not in params}
    query.update({k: v for k, v in params.items() if v is not None})
    return str(URL(str(request.url)).with_query(query))


def _number(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise PageError(f"{name} must be a positive integer")
    return int(raw)


def wants_cursor(request: web.Request) -> bool:
    """Zendesk switches a list to cursor pagination when any `page[...]` parameter is given."""
    return any(key in request.query for key in CURSOR_KEYS)


def offset_page(request: web.Request, items: list[dict[str, Any]], key: str, limit: int | None = None) -> dict[str, Any]:
    """`{key: [...], next_page, previous_page, count}`; `limit` caps how far paging may reach (search: 1000)."""
    page = _number(request, "page", 1)
    per_page = min(_number(request, "per_page", MAX_PAGE_SIZE), MAX_PAGE_SIZE)
    if limit is not None and page * per_page > limit:
        raise PageError("Invalid search: Requested response size was greater than Search Response Limits")
    chunk = items[(page - 1) * per_page : page * per_page]
    more = page * per_page < len(items) and (limit is None or (page + 1) * per_page <= limit)
    return {
        key: chunk,
        "next_page": link(request, page=str(page + 1), per_page=str(per_page)) if more else None,
        "previous_page": link(request, page=str(page - 1), per_page=str(per_page)) if page > 1 else None,
        "count": len(items),
    }


def encode_cursor(key: tuple[Any, ...]) -> str:
    """An opaque cursor: the sort key of the boundary record."""
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode()


def decode_cursor(cursor: str) -> tuple[Any, ...]:
    try:
        return tuple(orjson.loads(base64.urlsafe_b64decode(cursor.encode())))
    except (ValueError, TypeError) as exc:
        raise PageError("page[after]/page[before] is not a cursor this API gave out") from exc


def cursor_page(
    request: web.Request,
    items: list[dict[str, Any]],
    key: str,
    sort_key: SortKey = by_id,
    backward: bool = True,
) -> dict[str, Any]:
    """`{key: [...], meta, links}`: page[size] records after (or before) a cursor, in sort_key order.

    `has_more` says whether more records lie in the direction of travel; `backward=False` (search
    export) gives no `prev` link and no `before_cursor`, as Zendesk documents for that endpoint.
    Docs: https://developer.zendesk.com/api-reference/introduction/pagination/#using-cursor-pagination
    """
    size = min(_number(request, "page[size]", MAX_PAGE_SIZE), MAX_PAGE_SIZE)
    ordered = sorted(items, key=sort_key)
    after, before = request.query.get("page[after]"), request.query.get("page[before]")
    try:
        if before and backward:
            bound = decode_cursor(before)
            window = [r for r in ordered if sort_key(r) < bound]
            chunk, has_more = window[-size:], len(window) > size
        else:
            bound = decode_cursor(after) if after else None
            window = [r for r in ordered if bound is None or sort_key(r) > bound]
            chunk, has_more = window[:size], len(window) > size
    except TypeError as exc:  # a cursor of another endpoint, whose key does not compare with this one's
        raise PageError("page[after]/page[before] is not a cursor this API gave out") from exc
    after_cursor = encode_cursor(sort_key(chunk[-1])) if chunk else None
    before_cursor = encode_cursor(sort_key(chunk[0])) if chunk and backward else None
    # Zendesk gives both links whenever the page has cursors, even on the last page: has_more is what ends paging.
    return {
        key: chunk,
        "meta": {"has_more": has_more, "after_cursor": after_cursor, "before_cursor": before_cursor},
        "links": {
            "next": link(request, **{"page[after]": after_cursor, "page[before]": None, "page[size]": str(size)})
            if after_cursor
            else None,
            "prev": link(request, **{"page[before]": before_cursor, "page[after]": None, "page[size]": str(size)})
            if before_cursor
            else None,
        },
    }


def list_page(request: web.Request, items: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """A list endpoint's answer: cursor paging when asked for, else offset paging."""
    return cursor_page(request, items, key) if wants_cursor(request) else offset_page(request, items, key)
