"""The benchmark's yardstick: the same Zendesk customer lookup written the ordinary way.

FastAPI with a plain response model, one shared aiohttp session, uvicorn with uvloop and httptools, no logging,
no retries, no error contract. `python bench/reference_proxy.py --port 9100 --workers 2`.
"""

from __future__ import annotations

import argparse
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from fastapi import FastAPI, Request
from pydantic import BaseModel


class Lookup(BaseModel):
    """The service's own request body for POST /crm/customer."""

    crm_type: str
    customer_id: str
    config: dict[str, Any] = {}


class Customer(BaseModel):
    """A plain answer model."""

    id: str
    name: str
    email: str | None = None
    phone: str | None = None
    tier: str | None = None


@asynccontextmanager
async def lifespan(app: FastAPI):
    """One shared session for the process."""
    app.state.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    yield
    await app.state.http.close()


app = FastAPI(lifespan=lifespan)


@app.post("/crm/customer", response_model=Customer)
async def get_customer(body: Lookup, request: Request) -> Customer:
    """GET the Zendesk user and map it."""
    config = body.config
    url = f"{config['base_url']}/api/v2/users/{body.customer_id}.json"
    auth = aiohttp.BasicAuth(f"{config['email']}/token", config["api_token"])
    async with request.app.state.http.get(url, params={"include": "organizations"}, auth=auth) as resp:
        data = await resp.json()
    user = data["user"]
    return Customer(
        id=str(user["id"]),
        name=user["name"],
        email=user.get("email"),
        phone=user.get("phone"),
        tier=(user.get("user_fields") or {}).get("tier"),
    )


def main() -> None:
    """Serve with uvicorn, uvloop and httptools."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run("reference_proxy:app", host="127.0.0.1", port=args.port, workers=args.workers, loop="uvloop",
                http="httptools", log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
