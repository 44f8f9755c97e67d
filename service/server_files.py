"""Which server-side files a client may name: only files under the import roots (``<home>/imports`` and
``DATA_DEBUGGER_IMPORT_DIRS``) or the configured Humanloop export. Everything else on the server, the
service's own stores and models included, cannot be named, whatever else the request says."""

from __future__ import annotations

from pathlib import Path

from service.errors import invalid
from service.settings import Settings


def import_roots(settings: Settings) -> list[Path]:
    """The folders a client may name files in, resolved (a root that is itself a link counts as its target)."""
    return [root.expanduser().resolve() for root in (settings.imports_dir, *settings.import_dirs)]


def allowed_server_file(settings: Settings, raw: str, field: str) -> Path:
    """The resolved path of a file a client named, or InvalidInput naming `field`.

    Relative names are read against ``<home>/imports``. The check is on the fully resolved path, so `..`,
    a symlink pointing out of a root, and ``/proc/self/...`` are judged by where they really lead; the
    caller opens the returned (resolved) path, never the name it was given."""
    if not raw or "\x00" in raw or len(raw) > 4096:
        raise invalid(field, f"{raw[:80]!r} is not a file name")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = settings.imports_dir / path
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise invalid(field, f"{raw!r} cannot be resolved ({exc})") from exc
    roots = import_roots(settings)
    allowed = resolved == settings.humanloop_path.expanduser().resolve() or any(
        root in resolved.parents for root in roots)
    if not allowed:
        shown = ", ".join(str(r) for r in roots)
        raise invalid(field, f"{raw!r} is outside the folders the service may read ({shown}); put the file "
                       "there, or upload it with POST /api/datasets")
    if not resolved.is_file():
        raise invalid(field, f"{raw!r} is not a file")
    return resolved

