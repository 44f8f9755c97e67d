"""One process holds the store; the others ask it. A CLI command that finds the embedded store locked by a
running `serve` hands its work to that service (service.delegate.commands) instead of stopping.

The trigger is the lock error itself, not the service's marker: the lock is the kernel's and cannot outlive its
holder, so a command delegates only when it really cannot open the store, and runs on its own exactly as before
whenever it can (no service, a stopped one, a Qdrant server the two processes share). The marker
(service.delegate.marker) only says where the holder answers; a marker whose process is gone or whose URL does
not answer is ignored, and the lock error stands."""

from __future__ import annotations

import argparse
import sys

from service.errors import StoreLocked
from service.settings import Settings


def beside_service(args: argparse.Namespace, settings: Settings, locked: StoreLocked) -> int:
    """Run the command through the service that holds the store, or raise `locked` (with the service's URL
    when there is one but the command cannot go through it)."""
    from service.delegate.client import ServiceClient
    from service.delegate.commands import DELEGATES
    from service.delegate.marker import live_service

    service = live_service(settings.home)
    if service is None:
        raise locked
    delegate = DELEGATES.get(args.command)
    if delegate is None:
        raise StoreLocked(f"{locked}: its API answers at {service.url}/api (see {service.url}/docs)") from locked
    print(f"the store is held by the service at {service.url} (pid {service.pid}): `{args.command}` goes through it",
          file=sys.stderr, flush=True)
    with ServiceClient(service, settings) as client:
        try:
            return delegate(args, settings, client)
        except KeyboardInterrupt:
            print(f"stopped following; a run already started goes on in the service: GET {service.url}/api/runs",
                  file=sys.stderr)
            return 130
