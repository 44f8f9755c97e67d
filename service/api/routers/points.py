"""Points: filtered lists with cursor paging, one point with its neighbours, and the whole map at once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response

from service.api.deps import CollectionDep, DatasetName, StateDep
from service.api.errors import READ_ERRORS
from service.api.queries import decode_offset, encode_cursor, point_out, to_point_filter
from service.api.schemas import Page, PointDetail, PointOut, PointQuery
from service.api.snapshots import ARROW_MEDIA_TYPE
from service.errors import NotFound
from service.review.actions import resolve_point

router = APIRouter(prefix="/api/datasets/{dataset}", tags=["points"], responses=READ_ERRORS)

PointRef = Annotated[str, Path(min_length=1, max_length=200, description="Point id or record id", examples=["601188"])]


@router.get("/points", operation_id="list_points", response_model=Page[PointOut])
def list_points(collection: CollectionDep, q: Annotated[PointQuery, Query()]) -> dict[str, Any]:
    """Points matching every given filter, in id order; follow next_cursor to the end."""
    point_filter = to_point_filter(q)
    page, nxt = collection.scroll_page(point_filter, limit=q.limit, offset=decode_offset(q.cursor))
    return {
        "data": [point_out(p.id, p.payload) for p in page],
        "count": collection.count(point_filter),
        "next_cursor": encode_cursor(nxt) if nxt is not None else None,
    }


@router.get("/points/{point_id}", operation_id="get_point", response_model=PointDetail)
def get_point(
    collection: CollectionDep, dataset: DatasetName, point_id: PointRef,
    k: Annotated[int, Query(ge=0, le=100, description="Neighbours to return")] = 10,
) -> dict[str, Any]:
    """One point's payload and its k nearest neighbours (label, prediction, cosine similarity)."""
    pid = resolve_point(point_id)
    found = collection.retrieve([pid], with_vectors=k > 0)
    if not found:
        raise NotFound(f"no point {point_id!r} in dataset {dataset!r}")
    point = found[0]
    neighbours = []
    if k > 0 and point.vector is not None:
        for hit in collection.search(point.vector, k=k + 1):
            if hit.id == pid:
                continue
            p = hit.payload
            neighbours.append({"id": hit.id, "text": p.get("text"), "label": p.get("label"),
                               "prediction": p.get("prediction"), "split": p.get("split"),
                               "similarity": round(float(hit.score), 6)})
        neighbours = neighbours[:k]
    return {**point_out(pid, point.payload), "neighbours": neighbours}


MAP_DOC = {
    "description": "Parallel arrays, one entry per point: ids, x, y, text, label, prediction, confidence, split, "
    "cluster, triage, mislabel_score, entropy, correct (true/false/null), review_status; plus count, "
    "analysis_run and label_revision. x/y are null until analyze has run. With `Accept: "
    f"{ARROW_MEDIA_TYPE}` the same columns come as one Arrow IPC stream (lz4 buffers; float32 numbers, "
    "dictionary-encoded strings; count, analysis_run and label_revision in the schema's metadata).",
    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}},
                ARROW_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
}


def _none_match_hits(header: str, etag: str) -> bool:
    """If-None-Match by the weak comparison RFC 9110 asks for: `W/"x"` matches `"x"` (proxies that
    re-encode a body weaken its tag), and `*` matches any current map."""
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in [t.removeprefix("W/") for t in tags]


@router.get("/map", operation_id="get_map", responses={200: MAP_DOC, 304: {"description": "Not modified"}},
            response_class=Response)
def get_map(
    dataset: DatasetName, state: StateDep,
    if_none_match: Annotated[str | None, Header()] = None,
    accept_encoding: Annotated[str | None, Header()] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Every point's map fields in one response, cached per (dataset, analysis run, label revision): JSON, or
    Arrow IPC when the Accept header asks for it."""
    snap = state.views.snapshot(dataset)
    arrow = accept is not None and ARROW_MEDIA_TYPE in accept.lower()
    # One tag per form, so a cache holding one form never revalidates the other.
    etag = snap.etag() if not arrow else snap.etag()[:-1] + '-arrow"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept, Accept-Encoding"}
    if if_none_match is not None and _none_match_hits(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    if arrow:
        return Response(snap.map_arrow(), media_type=ARROW_MEDIA_TYPE, headers=headers)
    gzipped = accept_encoding is not None and "gzip" in accept_encoding.lower()
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(snap.map_json(gzipped=gzipped), media_type="application/json", headers=headers)
