"""Where the default dataset comes from: the local copy beside the repo, else the public zip."""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path

from service.errors import Unavailable
from service.settings import Settings

log = logging.getLogger(__name__)


def humanloop_export(settings: Settings) -> Path:
    """The Humanloop export on disk: the configured local copy, a previous download, or a fresh download."""
    if settings.humanloop_path.exists():
        return settings.humanloop_path
    downloaded = settings.home / "downloads" / "chatbot_intent_classifier_data.json"
    if downloaded.exists():
        return downloaded
    import httpx

    log.info("downloading the Humanloop export from %s", settings.humanloop_url)
    try:
        response = httpx.get(settings.humanloop_url, follow_redirects=True, timeout=60)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise Unavailable(
            f"the Humanloop export is not at {settings.humanloop_path} and downloading "
            f"{settings.humanloop_url} failed ({exc}). Offline? Copy chatbot_intent_classifier_data.json "
            "there, or set DATA_DEBUGGER_HUMANLOOP_PATH to its location"
        ) from exc
    downloaded.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        member = next(n for n in archive.namelist() if n.endswith(".json") and not n.startswith("__MACOSX"))
        partial = downloaded.with_suffix(".part")
        partial.write_bytes(archive.read(member))
        partial.replace(downloaded)  # atomic: never a half-written export
    return downloaded
