"""The review core of a running service, as the code outside the HTTP layer sees it (the Label Studio import,
the runs that push and pull): its workspace, audit logs and review writes. The API's state provides it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from service.review.actions import ReviewAction, Reviewed
    from service.review.audit import AuditLog
    from service.workspace import Workspace


class ReviewCore(Protocol):
    """Review writes through the running service: they take its dataset locks, land in its audit logs and
    patch its cached views (service.api.state.ApiState is one)."""

    @property
    def workspace(self) -> Workspace:
        """The open workspace."""
        ...

    def audit(self, dataset: str) -> AuditLog:
        """The dataset's audit log."""
        ...

    def apply_review(self, dataset: str, raw_id: str | int, act: ReviewAction, source: str = "api") -> Reviewed:
        """service.review.actions.apply_action with the service's workspace, lock, log and views."""
        ...

    def undo_review(self, dataset: str, change_id: int, user: str, reason: str) -> Reviewed:
        """service.review.actions.undo with the service's workspace, lock, log and views."""
        ...
