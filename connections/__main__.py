"""`python -m connections reencrypt` (move every stored connection to the current key) and `generate-key`."""

from __future__ import annotations

import argparse
import asyncio

from connections.crypto import generate_key
from connections.manager import StartupRefused, open_connections
from connections.routes import vendor_class
from settings import Settings


async def reencrypt(settings: Settings) -> int:
    """Re-encrypt under CONNECTIONS_ENCRYPTION_KEY what CONNECTIONS_ENCRYPTION_KEY_PREVIOUS still opens."""
    manager = await open_connections(settings, vendor_class)
    try:
        return await manager.reencrypt()
    finally:
        await manager.store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connections", description="Stored connections: key management")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("reencrypt", help="move every connection to CONNECTIONS_ENCRYPTION_KEY")
    commands.add_parser("generate-key", help="print a new key for CONNECTIONS_ENCRYPTION_KEY")
    args = parser.parse_args(argv)
    if args.command == "generate-key":
        print(generate_key())
        return 0
    settings = Settings()
    if settings.connections_encryption_key is None:
        parser.exit(2, "reencrypt: set CONNECTIONS_ENCRYPTION_KEY (the new key) and _PREVIOUS (the old one)\n")
    try:
        moved = asyncio.run(reencrypt(settings))
    except StartupRefused as exc:
        parser.exit(1, f"reencrypt: {exc}\n")
    print(f"re-encrypted {moved} connection(s) under key {vendor_check(settings)}")
    return 0


def vendor_check(settings: Settings) -> str:
    """The current key's public check value, for the operator's record."""
    from connections.crypto import key_check

    assert settings.connections_encryption_key is not None
    return key_check(settings.connections_encryption_key.get_secret_value())


if __name__ == "__main__":
    raise SystemExit(main())
