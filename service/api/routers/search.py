"""Similarity search, served from Qdrant: by free text (embedded on the fly) or by point, in one dataset or
across the datasets embedded with the same model."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from embeddings.store import check_name
from service.api.deps import DatasetName, StateDep
from service.api.errors import READ_ERRORS
from service.api.queries import to_point_filter
from service.api.schemas import CrossSearchIn, Page, SearchHit, SearchIn
from service.api.state import ApiState
from service.errors import InvalidInput, NotFound, invalid
from service.review.actions import resolve_point

router = APIRouter(prefix="/api", tags=["search"], responses=READ_ERRORS)


async def _query_vector(state: ApiState, dataset: str, text: str):
    """The query's vector, refusing a dataset embedded by another model than the service's."""
    entry = state.workspace.catalog.get(dataset)
    assert state.query_embedder is not None
    ours = state.query_embedder.name
    if entry.get("embedding_model") != ours:
        raise invalid(
            "body.text", f"dataset {dataset!r} was embedded with {entry.get('embedding_model')!r} but this service "
            f"embeds queries with {ours!r}; search it by `id`, or start the service with that embedding model"
        )
    return await state.query_embedder.aembed(text)


def _hit(hit, dataset: str | None = None) -> dict[str, Any]:
    out = {"id": hit.id, **hit.payload, "score": round(float(hit.score), 6)}
    out["revision"] = int(out.get("revision") or 0)
    if dataset is not None:
        out["dataset"] = dataset
    return out


def _json(data: list[dict[str, Any]]) -> bytes:
    """The page as JSON (orjson writes NaN and infinities as null, as `service.jsonable` does for the other routes)."""
    return orjson.dumps({"data": data, "count": len(data), "next_cursor": None})


async def search_page(state: ApiState, dataset: str, body: SearchIn) -> bytes:
    """The k nearest points to `body.text` or `body.id` among the points matching its filters, as the JSON
    page the route answers. Shared by the route and its fast lane (service.api.fast_search)."""
    # The hot path, kept lean: async and inline (a search costs well under a millisecond of store time and
    # the store holds the GIL while it searches, so a thread hop would only add latency; the model runs on
    # its own worker thread), and hits encoded straight from the store's payloads.
    collection = state.workspace.collection(dataset)
    point_filter = to_point_filter(body, words_from="contains", location="body")
    if body.id is not None:
        pid = resolve_point(body.id)
        found = collection.retrieve([pid], with_vectors=True)
        if not found:
            raise NotFound(f"body.id: no point {body.id!r} in dataset {dataset!r}")
        vector = found[0].vector
        assert vector is not None, "retrieved with_vectors"
        hits = [h for h in collection.search(vector, k=body.k + 1, filter=point_filter) if h.id != pid]
        hits = hits[: body.k]
    else:
        assert body.text is not None
        vector = await _query_vector(state, dataset, body.text)
        hits = collection.search(vector, k=body.k, filter=point_filter)
    return _json([_hit(h) for h in hits])


@router.post("/datasets/{dataset}/search", operation_id="search_dataset", response_model=Page[SearchHit])
async def search_dataset(dataset: DatasetName, body: SearchIn, request: Request) -> Response:
    """The k nearest points to `text` or to the point `id`, among the points matching the filters."""
    return Response(await search_page(request.app.state.api, dataset, body), media_type="application/json")


@router.post("/search", operation_id="search_all", response_model=Page[SearchHit])
async def search_all(body: CrossSearchIn, state: StateDep) -> Response:
    """The k nearest points to `text` across datasets embedded with the service's model."""
    ws = state.workspace
    assert state.query_embedder is not None
    ours = state.query_embedder.name
    names = body.datasets if body.datasets is not None else ws.catalog.names()
    chosen = []
    for name in dict.fromkeys(names):
        try:
            entry = ws.catalog.get(check_name(name))
        except InvalidInput as exc:
            raise invalid("body.datasets", str(exc)) from None
        if entry.get("embedding_model") == ours:
            chosen.append(name)
        elif body.datasets is not None:
            raise invalid(
                "body.datasets", f"{name!r} was embedded with {entry.get('embedding_model')!r}, not {ours!r}; "
                "cross-dataset search needs the same embedding model"
            )
    hits: list[dict[str, Any]] = []
    if chosen:
        vector = await state.query_embedder.aembed(body.text)
        for name in chosen:
            hits.extend(_hit(h, name) for h in ws.collection(name).search(vector, k=body.k))
    hits.sort(key=lambda h: -h["score"])
    return Response(_json(hits[: body.k]), media_type="application/json")
