"""``python -m adapters.sandbox``: run the sandbox in the foreground and print its base URLs.

Owns only the command line. If ``adapters/sandbox/figma_world.py`` defines
``build_sample_figma()`` (or ``build_sample_figma_world()``), its result is plugged in as the
Figma imitation.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from typing import Any

from .sample import build_large_world, build_sample_world
from .server import Sandbox


def _figma_world() -> Any:
    try:
        module = importlib.import_module("adapters.sandbox.figma_world")
    except ImportError:
        return None
    for name in ("build_sample_figma", "build_sample_figma_world"):
        build = getattr(module, name, None)
        if callable(build):
            return build()
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds slept per request")
    parser.add_argument(
        "--rate-limit", type=int, default=100, help="requests per 10 s per token (0 = unlimited)"
    )
    parser.add_argument("--large", action="store_true", help="serve the 1000-card bench board")
    parser.add_argument("--no-webhooks", action="store_true", help="do not deliver webhooks")
    args = parser.parse_args(argv)

    world = build_large_world() if args.large else build_sample_world()
    sandbox = Sandbox(
        host=args.host,
        port=args.port,
        latency=args.latency,
        world=world,
        rate_limit_per_10s=args.rate_limit or None,
        deliver_webhooks=not args.no_webhooks,
        figma=_figma_world(),
    )
    sandbox.start()
    boards = ", ".join(f"{b['shortLink']} ({b['name']})" for b in world.boards.values())
    print(f"sandbox:          {sandbox.url}")
    print(f"trello api_base:  {sandbox.trello_api_base}")
    print(
        f"figma api_base:   {sandbox.figma_api_base}"
        + ("" if sandbox.figma is not None else "  (no Figma world: 404)")
    )
    print(f"boards:           {boards}")
    print(
        f"TRELLO_API_KEY={sandbox.api_key} TRELLO_TOKEN={sandbox.token} "
        f"TRELLO_API_SECRET={sandbox.api_secret}"
    )
    sys.stdout.flush()

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
