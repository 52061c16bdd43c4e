"""`python -m sandbox --port N`: run the vendor emulators alone."""

from __future__ import annotations

import argparse
import asyncio

from sandbox import start_sandbox


async def serve(host: str, port: int) -> None:
    """Start the emulators and print their base URLs, then serve until interrupted."""
    runner = await start_sandbox(host, port)
    for name, url in runner.urls.items():
        print(f"{name}: {url}", flush=True)
    print(f"control: {runner.root}/_sandbox", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.stop()


def main() -> None:
    """Parse --host/--port and serve."""
    parser = argparse.ArgumentParser(description="Vendor API emulators")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
