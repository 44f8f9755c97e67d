"""CLI: `data-debugger serve` starts the service (and its companions, such as the dashboard) and prints the
URLs it serves. `serve()` is also the end of the main job (`data-debugger run`)."""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.delegate.marker import remove_marker, write_marker
from service.memory import limit_malloc_arenas
from service.settings import Settings
from service.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class ServeContext:
    """What a companion needs to start beside the API."""

    settings: Settings
    host: str
    api_url: str
    args: argparse.Namespace | None = None
    stops: list[Callable[[], None]] = field(default_factory=list)  # companions add how to stop them


# A companion takes the context, starts itself (in a thread), and returns a line to print (its URL), or None.
Companion = Callable[[ServeContext], str | None]


def dashboard_token(ctx: ServeContext) -> str | None:
    """The token the dashboard sends on every request: the write token when there is one (it also reads, and
    the dashboard relabels), else the read token."""
    secret = ctx.settings.token or ctx.settings.read_token
    return secret.get_secret_value() if secret else None


def start_dashboard(ctx: ServeContext) -> str | None:
    """The Panel dashboard, a client of this API, on --dashboard-port."""
    if ctx.args is not None and getattr(ctx.args, "no_dashboard", False):
        return None
    from dashboard.app import serve_dashboard

    port = getattr(ctx.args, "dashboard_port", None) or 5006
    running = serve_dashboard(ctx.api_url, port, host=ctx.host, token=dashboard_token(ctx), threaded=True)
    ctx.stops.append(running.stop)
    return f"dashboard     {running.url}"


COMPANIONS: list[Companion] = [start_dashboard]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the debugger API (and the dashboard) over HTTP")
    add_serve_arguments(p)
    p.set_defaults(handler=cmd_serve)


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """--host/--port/--dashboard-port/--no-dashboard, shared with `data-debugger run`."""
    p.add_argument("--host", help="bind address (default: settings.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="API port (default: settings.port, 8000)")
    p.add_argument("--dashboard-port", type=int, default=5006, help="dashboard port (default 5006)")
    p.add_argument("--no-dashboard", action="store_true", help="serve the API only")


def _bound_port(server: Any, fallback: int) -> int:
    for s in getattr(server, "servers", []) or []:
        for sock in getattr(s, "sockets", []) or []:
            return int(sock.getsockname()[1])
    return fallback


def serve(settings: Settings, workspace: Workspace | None = None, host: str | None = None, port: int | None = None,
          *, args: argparse.Namespace | None = None, companions: list[Companion] | None = None,
          announce: Callable[[str], None] = print, started: Callable[[Any], None] | None = None) -> None:
    """Serve until interrupted: the API on host:port, then each companion; prints every URL once bound.
    `started(server)` is called once everything is up (tests stop the server through it)."""
    import uvicorn

    from service.api.app import create_app

    # Before the server's worker threads exist: they would each take an arena (service/memory.py).
    limit_malloc_arenas(settings.malloc_arenas)
    host = host or settings.host
    port = settings.port if port is None else port
    app = create_app(settings, workspace)
    server = _unmarking_server(uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False,
                                              timeout_graceful_shutdown=10), settings)
    ctx = ServeContext(settings, host, "", args)

    def announce_when_up() -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if server.should_exit:
            return
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        ctx.api_url = f"http://{shown}:{_bound_port(server, port)}"
        if app.state.api.workspace_open:  # only the store's holder says where it answers (service.delegate)
            write_marker(settings.home, ctx.api_url)
        lines = [f"API           {ctx.api_url}/api", f"API docs      {ctx.api_url}/docs",
                 f"OpenAPI       {ctx.api_url}/openapi.json"]
        for companion in companions if companions is not None else COMPANIONS:
            try:
                line = companion(ctx)
            except Exception as exc:  # noqa: BLE001 - a companion failing must not take the API down
                log.error("could not start %s: %s", getattr(companion, "__name__", companion), exc)
                continue
            if line:
                lines.append(line)
        announce("serving (Ctrl-C to stop):\n  " + "\n  ".join(lines))
        if started is not None:
            started(server)
        _warm_views(app.state.api)

    threading.Thread(target=announce_when_up, name="dd-announce", daemon=True).start()
    try:
        server.run()
    finally:
        remove_marker(settings.home)
        for stop in ctx.stops:
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - shutting down anyway
                log.warning("stopping a companion failed: %s", exc)


def _unmarking_server(config: Any, settings: Settings) -> Any:
    """uvicorn's server, removing this service's marker as it begins to shut down: after a signal, uvicorn
    re-raises it once stopped, so the process ends before a `finally` of ours could run."""
    import uvicorn

    class UnmarkingServer(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            remove_marker(settings.home)
            await super().shutdown(sockets)

    return UnmarkingServer(config)


def _warm_views(state: Any) -> None:
    """Pre-build every dataset's snapshot (map, rankings) in the background once serving, so a dataset's
    first page view does not wait for the store to be read."""
    try:
        names = state.workspace.catalog.names()
    except Exception as exc:  # noqa: BLE001 - the store may be unavailable; pages build them later
        log.warning("could not list datasets to pre-build their views: %s", exc)
        return
    for name in names:
        try:
            state.views.warm(name)
        except Exception as exc:  # noqa: BLE001 - as above
            log.warning("could not pre-build the views of %s: %s", name, exc)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    serve(settings, host=args.host, port=args.port, args=args)
    return 0
