"""The sandbox: real-wire emulators of each vendor, on loopback, for `make run`, tests and benchmarks.

Emulators and credentials derive from the registry: each connector class names its `emulator` and its
`sandbox_credentials` (registry.py), so adding a vendor touches nothing here.
"""

from __future__ import annotations

import importlib

from registry import all_connectors
from sandbox.core import Emulator, SandboxRunner


def emulator_class(path: str) -> type[Emulator]:
    """The emulator class a connector names as "module:Class"."""
    module, _, name = path.partition(":")
    emulator = getattr(importlib.import_module(module), name)
    assert isinstance(emulator, type) and issubclass(emulator, Emulator), path
    return emulator


EMULATORS: tuple[type[Emulator], ...] = tuple(
    emulator_class(cls.emulator) for cls in all_connectors() if cls.emulator
)

# Credentials the sandbox-mode service uses when neither the environment nor the request gives any.
# The emulators accept any credential except the word `invalid`.
SANDBOX_CREDENTIALS: dict[str, dict[str, str]] = {
    cls.vendor: dict(cls.sandbox_credentials) for cls in all_connectors() if cls.sandbox_credentials
}


async def start_sandbox(host: str = "127.0.0.1", port: int = 0) -> SandboxRunner:
    """Start every emulator on one loopback port; each vendor lives under /{name}."""
    runner = SandboxRunner({cls.name: cls() for cls in EMULATORS}, SANDBOX_CREDENTIALS)
    await runner.start(host, port)
    return runner
