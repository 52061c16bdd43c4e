"""Every curl example in the README answers as shown when run in order against the sandbox (`make run`)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import orjson

import httpx

from tests.conftest import make_settings, start_service

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_calls() -> list[tuple[str, str, dict[str, str], bytes | None, str | None]]:
    """(method, path, headers, body, the JSON answer shown right after it) for each curl line, in order."""
    text = README.read_text()
    blocks = re.findall(r"```(bash|json)\n(.*?)```", text, flags=re.S)
    calls: list[tuple[str, str, dict[str, str], bytes | None, str | None]] = []
    for kind, body in blocks:
        if kind == "json" and calls and calls[-1][4] is None:
            calls[-1] = (*calls[-1][:4], body.strip())
            continue
        if kind != "bash":
            continue
        for command in body.replace("\\\n", " ").splitlines():
            if not command.strip().startswith("curl "):
                continue
            words = shlex.split(command, comments=True)
            url = next(w for w in words if w.startswith("localhost:8090/"))
            headers = dict(words[i + 1].split(": ", 1) for i, w in enumerate(words) if w == "-H")
            data = next((words[i + 1].encode() for i, w in enumerate(words) if w == "-d"), None)
            calls.append(("POST" if data else "GET", url.removeprefix("localhost:8090"), headers, data, None))
    return calls


def test_the_readme_has_examples_for_every_job():
    paths = {path for _, path, _, _, _ in readme_calls()}
    assert {"/crm/customer/search", "/crm/customer", "/crm/ticket", "/crm/ticket/create", "/crm/ticket/update",
            "/handoff/create", "/handoff/status"} <= paths


def test_every_readme_example_answers_as_shown():
    """Against a fresh service, as after `make run` (the shared test service remembers other tests' calls)."""
    server, thread, url = start_service(make_settings())
    try:
        with httpx.Client(timeout=10, trust_env=False) as client:
            for method, path, headers, data, shown in readme_calls():
                r = client.request(method, f"{url}{path}", headers=headers, content=data)
                assert r.status_code < 300, (path, r.status_code, r.text)
                if shown is not None:
                    assert r.json() == orjson.loads(shown), path
    finally:
        server.should_exit = True
        thread.join(timeout=10)
