"""A small synchronous HTTP client of the service API: the dashboard's only way to the data."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import orjson

from service.errors import STATUSES, DataDebuggerError, InvalidInput, Unavailable

ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.stream"  # the /map route's binary form (the API's name for it)

log = logging.getLogger(__name__)

# The API answers with the project's exception tree mapped to status codes; map them back so the
# dashboard's states handle "not analysed yet" (404) and "changed meanwhile" (409) as the core does.
# A 500 stays the base class: it is any failure, not only an integrity error.
_BY_STATUS: dict[int, type[DataDebuggerError]] = {
    400: InvalidInput, **{status: cls for cls, status, _ in STATUSES if status != 500},
}


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        detail = body.get("detail", body.get("message", body))
        if isinstance(detail, list):  # FastAPI's validation errors: name each field
            return "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
        return str(detail)
    return str(body)


class ApiClient:
    """The routes of `service.api` the dashboard uses; one instance per dashboard session."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    # -- plumbing ------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if "params" in kwargs:  # drop unset filters so the API sees only what the user chose
            kwargs["params"] = {k: v for k, v in kwargs["params"].items() if v not in (None, "", [])}
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"cannot reach the Data Debugger API at {self.base_url}: {exc}. "
                              "Is `data-debugger serve` running?") from exc
        if response.status_code >= 400:
            error = _BY_STATUS.get(response.status_code, DataDebuggerError)
            raise error(f"{method} {path} answered {response.status_code}: {_detail(response)}")
        return response

    def get(self, path: str, **params: Any) -> Any:
        """GET a JSON document."""
        return self._request("GET", path, params=params).json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST a JSON body, return the JSON answer."""
        return self._request("POST", path, json=body or {}).json()

    def get_list(self, path: str, limit: int | None = None, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paginated list route (following next_cursor), up to `limit` items."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.get(path, cursor=cursor, **params)
            if isinstance(page, list):  # a route that answers a bare list
                return page[:limit] if limit else page
            items.extend(page.get("data", []))
            cursor = page.get("next_cursor")
            if not cursor or (limit and len(items) >= limit):
                return items[:limit] if limit else items

    def list_count(self, path: str, **params: Any) -> int:
        """How many items a paginated list route holds (its `count`), read from a one-item page."""
        page = self.get(path, limit=1, **params)
        return int(page.get("count", 0)) if isinstance(page, dict) else len(page)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- datasets and the map ------------------------------------------------------------------------

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset with its counts."""
        return self.get_list("/api/datasets")

    def dataset(self, dataset: str) -> dict[str, Any]:
        """One dataset's detail: counts, last analysis, model versions."""
        return self.get(f"/api/datasets/{dataset}")

    def map(self, dataset: str, etag: str | None = None, arrow: bool = False) -> tuple[Any, str | None]:
        """Columnar arrays of every point (ids, x, y, text, label, ...) and the answer's ETag: a dict of lists
        (JSON), or with `arrow` a pyarrow Table (the same columns, read without parsing text).

        With the ETag of a copy the caller holds, an unchanged map answers (None, etag) without a body.
        """
        headers = {"If-None-Match": etag} if etag else {}
        if arrow:
            headers["Accept"] = ARROW_MEDIA_TYPE
        try:
            response = self._http.get(f"/api/datasets/{dataset}/map", headers=headers)
        except httpx.HTTPError as exc:
            raise Unavailable(f"cannot reach the Data Debugger API at {self.base_url}: {exc}") from exc
        if response.status_code == 304:
            return None, etag
        if response.status_code >= 400:
            error = _BY_STATUS.get(response.status_code, DataDebuggerError)
            raise error(f"GET /api/datasets/{dataset}/map answered {response.status_code}: {_detail(response)}")
        if arrow:
            import pyarrow as pa

            return pa.ipc.open_stream(response.content).read_all(), response.headers.get("ETag")
        return orjson.loads(response.content), response.headers.get("ETag")  # orjson: 2x the standard library

    def points(self, dataset: str, limit: int = 100, **filters: Any) -> list[dict[str, Any]]:
        """Points matching the API's point filters, up to `limit`."""
        return self.get_list(f"/api/datasets/{dataset}/points", limit=limit, **filters)

    def point(self, dataset: str, point_id: Any) -> dict[str, Any]:
        """A point's payload and its nearest neighbours."""
        return self.get(f"/api/datasets/{dataset}/points/{point_id}")

    def search(self, dataset: str, text: str | None = None, point_id: Any = None, k: int = 10,
               **filters: Any) -> list[dict[str, Any]]:
        """The k nearest points to a text or a point, within the filters."""
        body = {"text": text, "id": point_id, "k": k, **{k_: v for k_, v in filters.items() if v}}
        answer = self.post(f"/api/datasets/{dataset}/search", body)
        return answer.get("data", []) if isinstance(answer, dict) else answer

    # -- analyses ------------------------------------------------------------------------------------

    def issues(self, dataset: str, limit: int = 500) -> list[dict[str, Any]]:
        """Label issues, most suspicious first."""
        return self.get_list(f"/api/datasets/{dataset}/issues", limit=limit)

    def suggestions(self, dataset: str, limit: int = 500) -> list[dict[str, Any]]:
        """Unlabelled points with a suggested label, most confident first."""
        return self.get_list(f"/api/datasets/{dataset}/suggestions", limit=limit)

    def clusters(self, dataset: str) -> list[dict[str, Any]]:
        """The analysis' clusters with names, error rates and representatives."""
        return self.get_list(f"/api/datasets/{dataset}/clusters")

    def cluster(self, dataset: str, cluster: int) -> dict[str, Any]:
        """One cluster and a page of its members."""
        return self.get(f"/api/datasets/{dataset}/clusters/{cluster}")

    def classes(self, dataset: str, split: str | None = None, model_version: str | None = None) -> dict[str, Any]:
        """Per-class metrics and confusion per split, for a model version."""
        return self.get(f"/api/datasets/{dataset}/classes", split=split, model_version=model_version)

    def cluster_changes(self, dataset: str, a: str, b: str, limit: int = 50) -> dict[str, Any]:
        """Each cluster's out-of-fold error rate under versions a and b, the largest change first."""
        return self.get(f"/api/datasets/{dataset}/clusters/changes", a=a, b=b, limit=limit)

    def models(self, dataset: str | None = None) -> list[dict[str, Any]]:
        """Model versions with headline metrics (every dataset's, or one's)."""
        answer = self.get("/models", dataset=dataset)
        return answer.get("data", []) if isinstance(answer, dict) else answer

    def model(self, dataset: str, version: str) -> dict[str, Any]:
        """One version in full: metrics per split (per-class, confusion, reliability) and curves."""
        return self.get(f"/models/{dataset}/{version}")

    def queue(self, dataset: str, strategy: str, limit: int, fmt: str | None = None) -> Any:
        """The labelling queue: a list of rows (read from the JSONL download), or with `fmt` the file's bytes."""
        response = self._request("GET", f"/api/datasets/{dataset}/queue",
                                 params={"strategy": strategy, "limit": limit, "format": fmt or "jsonl"})
        if fmt:
            return response.content
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    # -- the improvement loop ------------------------------------------------------------------------

    def loop(self, dataset: str) -> dict[str, Any]:
        """The champion, label changes since the newest version, a retrain in flight, and the history."""
        return self.get(f"/api/datasets/{dataset}/loop")

    def start_run(self, dataset: str, step: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Queue a background run (ingest, train, predict, analyze, retrain); answers the run to poll."""
        return self.post(f"/api/datasets/{dataset}/runs", {"step": step, "options": options or {}})

    def run(self, run_id: str) -> dict[str, Any]:
        """A run's status, progress, result or error."""
        return self.get(f"/api/runs/{run_id}")

    def label_studio(self, dataset: str) -> dict[str, Any]:
        """Where the dataset's Label Studio project stands (server, project, tasks, last push and pull)."""
        return self.get(f"/api/datasets/{dataset}/label-studio")

    # -- review --------------------------------------------------------------------------------------

    def label(self, dataset: str, point_id: Any, action: str, label: str | None = None, reason: str = "",
              user: str = "dashboard", revision: int | None = None) -> dict[str, Any]:
        """Relabel/accept/mark a point through the audited API; answers the updated point."""
        body = {"action": action, "label": label, "reason": reason, "user": user, "revision": revision}
        return self.post(f"/api/datasets/{dataset}/points/{point_id}/label", body)

    def changes(self, dataset: str, limit: int = 50) -> list[dict[str, Any]]:
        """The audit log, newest first."""
        return self.get_list(f"/api/datasets/{dataset}/changes", limit=limit)

    def undo(self, dataset: str, change_id: Any) -> dict[str, Any]:
        """Revert a change (the API appends its inverse); answers the point after it."""
        return self.post(f"/api/datasets/{dataset}/changes/{change_id}/undo")
