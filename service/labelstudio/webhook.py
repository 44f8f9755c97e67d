"""Label Studio's webhooks: an annotation created or updated is imported like a pulled one; annotations
deleted undo what they applied. The request must carry the shared secret (X-Data-Debugger-Secret), set
as a header of the webhook in Label Studio.

Payloads (Label Studio 1.x): {"action": "ANNOTATION_CREATED" | "ANNOTATION_UPDATED", "annotation": {...},
"task": {...}, "project": {...}} and {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": ...}, ...]}.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from service.api.errors import NotAuthorized
from service.errors import InvalidInput, Unavailable, invalid
from service.labelstudio.importer import Importer, after_import, retract

if TYPE_CHECKING:
    from service.review.core import ReviewCore

SECRET_HEADER = "X-Data-Debugger-Secret"
APPLIED = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED")
DELETED = ("ANNOTATIONS_DELETED",)


def check_secret(settings, given: str | None) -> None:
    """401 unless the request carries the configured secret; 503 when none is configured."""
    secret = settings.label_studio_webhook_secret
    if secret is None:
        raise Unavailable("the Label Studio webhook is off: set DATA_DEBUGGER_LABEL_STUDIO_WEBHOOK_SECRET and send "
                          f"it as the webhook's {SECRET_HEADER} header")
    if not given or not secrets.compare_digest(given.encode(), secret.get_secret_value().encode()):
        raise NotAuthorized(f"the webhook's {SECRET_HEADER} header is missing or wrong; set it to the service's "
                            "DATA_DEBUGGER_LABEL_STUDIO_WEBHOOK_SECRET in the webhook's headers in Label Studio")


def user_lookup(settings):
    """A connected server resolves numeric annotator ids to emails; without one they stay ids."""
    if not settings.label_studio_url or settings.label_studio_token is None:
        return None
    from service.labelstudio.client import LabelStudioClient

    client = LabelStudioClient.from_settings(settings)

    def lookup(user_id: int) -> str | None:
        try:
            return client.email_of(user_id)
        except Unavailable:
            return None

    return lookup


def handle(state: ReviewCore, dataset: str, payload: Any) -> dict[str, Any]:
    """Apply one webhook event; answers what it did (events of other kinds are acknowledged and ignored)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("action"), str):
        raise invalid("body.action", "is missing: this is not a Label Studio webhook payload")
    action = payload["action"]
    settings = state.workspace.settings
    state.workspace.collection(dataset)
    if action in DELETED:
        ids = [a.get("id") for a in payload.get("annotations") or [] if isinstance(a, dict)]
        return after_import(state, dataset, {"action": action,
                                             **retract(state, dataset, [i for i in ids if i is not None])})
    if action not in APPLIED:
        return {"action": action, "ignored": True}
    task = payload.get("task")
    annotations = payload.get("annotations") if action == "ANNOTATIONS_CREATED" else [payload.get("annotation")]
    if not isinstance(task, dict) or not all(isinstance(a, dict) for a in annotations or [None]):
        raise InvalidInput(f"a {action} webhook carries `task` and `annotation` objects; this one does not "
                           "(turn on 'Send payload' for the webhook in Label Studio)")
    importer = Importer(state, dataset, users=user_lookup(settings), reason="label_studio_webhook")
    # The event's own annotation decides: other annotators' annotations were applied by their own events.
    outcome = importer.apply(0, {**task, "annotations": annotations})
    return after_import(state, dataset, {"action": action, "outcome": outcome, **importer.result()})
