"""The Label Studio server, through its own SDK (label-studio-sdk): projects, tasks, annotations, users,
webhooks. Only what push, pull and the annotator lookup need; the SDK's typed objects become plain dicts
here so the rest of the package reads JSON shapes, the same as Label Studio's file exports.

Errors: a server that cannot be reached, or answers an error, raises Unavailable naming the URL and the call
(the token is never part of a message or a log line).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

from service.errors import InvalidInput, NotFound, Unavailable

log = logging.getLogger(__name__)

PAGE_SIZE = 100
WEBHOOK_ACTIONS = ["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"]


def _plain(obj: Any) -> Any:
    """An SDK object as the JSON Label Studio sent (datetimes as ISO strings)."""
    if hasattr(obj, "model_dump"):
        # The SDK types a task's `annotations` as a string although the server sends the list: pydantic warns.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return obj.model_dump(mode="json", exclude_none=False)
    return obj


class LabelStudioClient:
    """One Label Studio server and token."""

    def __init__(self, url: str, token: str, timeout: float = 60.0):
        if not url or not token:
            raise InvalidInput("Label Studio is not configured: set DATA_DEBUGGER_LABEL_STUDIO_URL and "
                               "DATA_DEBUGGER_LABEL_STUDIO_TOKEN (a user's API token, Account & Settings)")
        from label_studio_sdk import LabelStudio

        self.url = url.rstrip("/")
        self._sdk = LabelStudio(base_url=self.url, api_key=token, timeout=timeout)
        self._emails: dict[int, str] | None = None

    @classmethod
    def from_settings(cls, settings) -> LabelStudioClient:
        """The client of the server the settings name."""
        token = settings.label_studio_token.get_secret_value() if settings.label_studio_token else ""
        return cls(settings.label_studio_url or "", token)

    def _call(self, what: str, fn, *args: Any, **kwargs: Any) -> Any:
        from label_studio_sdk.core.api_error import ApiError

        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            if exc.status_code == 404:
                raise NotFound(f"Label Studio at {self.url}: {what}: not found") from None
            detail = exc.body.get("detail") if isinstance(exc.body, dict) else exc.body
            raise Unavailable(f"Label Studio at {self.url} refused {what} ({exc.status_code}): {detail!s:.300}; "
                              "check the URL and the token (DATA_DEBUGGER_LABEL_STUDIO_*)") from None
        except OSError as exc:
            raise Unavailable(f"Label Studio at {self.url} cannot be reached ({what}): {exc}") from None
        except Exception as exc:  # httpx transport errors are not OSErrors
            if type(exc).__module__.startswith("httpx"):
                raise Unavailable(f"Label Studio at {self.url} cannot be reached ({what}): {exc}") from None
            raise

    # --- users -------------------------------------------------------------------------------------------

    def email_of(self, user_id: int) -> str | None:
        """The email of a Label Studio user id (the users are fetched once per client)."""
        if self._emails is None:
            users = self._call("list users", self._sdk.users.list)
            self._emails = {int(u.id): u.email for u in users if u.id is not None and u.email}
        return self._emails.get(int(user_id))

    # --- projects ----------------------------------------------------------------------------------------

    def project(self, project_id: int) -> dict[str, Any] | None:
        """The project, or None when it is gone."""
        try:
            return _plain(self._call(f"get project {project_id}", self._sdk.projects.get, project_id))
        except NotFound:
            return None

    def create_project(self, title: str, label_config: str, description: str = "") -> int:
        """A new project; returns its id."""
        made = self._call("create a project", self._sdk.projects.create, title=title, label_config=label_config,
                          description=description)
        return int(made.id)

    def set_label_config(self, project_id: int, label_config: str) -> None:
        self._call(f"update project {project_id}'s labelling config", self._sdk.projects.update, project_id,
                   label_config=label_config)

    # --- tasks -------------------------------------------------------------------------------------------

    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> list[int]:
        """Create tasks (with their predictions); returns their ids in order."""
        if not tasks:
            return []
        answer = self._call(f"import tasks into project {project_id}", self._sdk.projects.import_tasks,
                            project_id, request=tasks, return_task_ids=True)
        return [int(t) for t in (answer.task_ids or [])]

    def tasks(self, project_id: int) -> Iterator[dict[str, Any]]:
        """Every task of the project with its annotations, page by page."""
        pager = self._call(f"list the tasks of project {project_id}", self._sdk.tasks.list, project=project_id,
                           fields="all", page_size=PAGE_SIZE)
        for task in pager:
            yield _plain(task)

    def delete_task(self, task_id: int) -> None:
        self._call(f"delete task {task_id}", self._sdk.tasks.delete, str(task_id))

    def update_task_meta(self, task_id: int, meta: dict[str, Any]) -> None:
        self._call(f"mark task {task_id}", self._sdk.tasks.update, str(task_id), meta=meta)

    # --- webhooks ----------------------------------------------------------------------------------------

    def webhooks(self, project_id: int) -> list[dict[str, Any]]:
        return [_plain(w) for w in self._call("list webhooks", self._sdk.webhooks.list, project=str(project_id))]

    def add_webhook(self, project_id: int, url: str, secret: str) -> int:
        """A webhook of the project posting annotation events to `url` with the shared secret in a header."""
        made = self._call(f"add a webhook to project {project_id}", self._sdk.webhooks.create, url=url,
                          project=project_id, send_payload=True, send_for_all_actions=False,
                          actions=WEBHOOK_ACTIONS, headers={"X-Data-Debugger-Secret": secret})
        return int(made.id)
