"""Similarity search, served from Qdrant: by free text (embedded on the fly) or by point, in one dataset or
across the datasets embedded with the same model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import CollectionDep, DatasetName, StateDep
from service.api.errors import READ_ERRORS, invalid
from service.api.queries import point_out, resolve_id, to_point_filter
from service.api.schemas import CrossSearchIn, Page, SearchHit, SearchIn
from service.api.state import ApiState
from service.errors import NotFound

router = APIRouter(prefix="/api", tags=["search"], responses=READ_ERRORS)


def _query_vector(state: ApiState, dataset: str, text: str):
    """The query's vector, refusing a dataset embedded by another model than the service's."""
    entry = state.workspace.catalog.get(dataset)
    assert state.query_embedder is not None
    ours = state.query_embedder.name
    if entry.get("embedding_model") != ours:
        raise invalid(
            "body.text", f"dataset {dataset!r} was embedded with {entry.get('embedding_model')!r} but this service "
            f"embeds queries with {ours!r}; search it by `id`, or start the service with that embedding model"
        )
    return state.query_embedder.embed(text)


def _hit(hit, dataset: str | None = None) -> dict[str, Any]:
    out = point_out(hit.id, hit.payload)
    out["score"] = round(float(hit.score), 6)
    if dataset is not None:
        out["dataset"] = dataset
    return out


@router.post("/datasets/{dataset}/search", operation_id="search_dataset", response_model=Page[SearchHit])
def search_dataset(dataset: DatasetName, body: SearchIn, collection: CollectionDep, state: StateDep) -> JSONResponse:
    """The k nearest points to `text` or to the point `id`, among the points matching the filters."""
    point_filter = to_point_filter(body, words_from="contains")
    if body.id is not None:
        pid = resolve_id(body.id)
        found = collection.retrieve([pid], with_vectors=True)
        if not found:
            raise NotFound(f"body.id: no point {body.id!r} in dataset {dataset!r}")
        hits = [h for h in collection.search(found[0].vector, k=body.k + 1, filter=point_filter) if h.id != pid]
        hits = hits[: body.k]
    else:
        assert body.text is not None
        hits = collection.search(_query_vector(state, dataset, body.text), k=body.k, filter=point_filter)
    data = [_hit(h) for h in hits]
    # Returned directly: the hits are already JSON-safe, and this is the hot path.
    return JSONResponse({"data": data, "count": len(data), "next_cursor": None})


@router.post("/search", operation_id="search_all", response_model=Page[SearchHit])
def search_all(body: CrossSearchIn, state: StateDep) -> JSONResponse:
    """The k nearest points to `text` across datasets embedded with the service's model."""
    ws = state.workspace
    assert state.query_embedder is not None
    ours = state.query_embedder.name
    names = body.datasets if body.datasets is not None else ws.catalog.names()
    chosen = []
    for name in dict.fromkeys(names):
        entry = ws.catalog.get(name)
        if entry.get("embedding_model") == ours:
            chosen.append(name)
        elif body.datasets is not None:
            raise invalid(
                "body.datasets", f"{name!r} was embedded with {entry.get('embedding_model')!r}, not {ours!r}; "
                "cross-dataset search needs the same embedding model"
            )
    hits: list[dict[str, Any]] = []
    if chosen:
        vector = state.query_embedder.embed(body.text)
        for name in chosen:
            hits.extend(_hit(h, name) for h in ws.collection(name).search(vector, k=body.k))
    hits.sort(key=lambda h: -h["score"])
    data = hits[: body.k]
    return JSONResponse({"data": data, "count": len(data), "next_cursor": None})
