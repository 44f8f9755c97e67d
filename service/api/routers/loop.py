"""The improvement loop: where the labels stand against the champion, the history of retrains with their
verdicts, and a version's honest evaluation. A retrain itself is a run: POST /api/datasets/{d}/runs
{"step": "retrain"}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool

from service.api.deps import DatasetName, StateDep
from service.api.errors import READ_ERRORS
from service.api.loop import loop_state, reviews_per_version
from service.predictions.registry import ModelRegistry

router = APIRouter(prefix="/api/datasets/{dataset}", tags=["loop"], responses=READ_ERRORS)

VersionName = Annotated[str, Path(pattern=r"^v[1-9][0-9]{0,8}$", description="a model version, e.g. v3")]


@router.get("/loop", operation_id="get_loop")
async def get_loop(dataset: DatasetName, state: StateDep) -> dict[str, Any]:
    """The champion, label changes since the newest version's data against the retrain threshold, a retrain
    queued or running, and every version newest first with its retrain trigger and the gate's verdict."""
    from service.predictions.retrain import history

    def read() -> dict[str, Any]:
        state.workspace.catalog.get(dataset)
        registry = ModelRegistry(state.settings.models_dir)
        rows = history(registry, dataset)
        reviews_per_version(state, dataset, rows)
        return {**loop_state(state, dataset), "history": rows}

    return await run_in_threadpool(read)


@router.get("/models/{version}/evaluation", operation_id="get_evaluation")
async def get_evaluation(dataset: DatasetName, version: VersionName, state: StateDep) -> dict[str, Any]:
    """The version's validation and test figures on the labels as ingested and as reviewed, how many
    evaluation labels were corrected, and the unreviewed likely label errors among evaluation points."""
    from embeddings.store import load_vectors
    from service.predictions.evaluation import evaluate_columns

    def read() -> dict[str, Any]:
        state.workspace.catalog.get(dataset)
        version_ = ModelRegistry(state.settings.models_dir).get(dataset, version)
        collection = state.workspace.collection(dataset)
        # From the cached columns, once per snapshot state (a review drops it): every dashboard session asks.
        return state.views.snapshot(dataset).derived(
            f"evaluation:{version_.version}",
            lambda snap: evaluate_columns(snap.ids, snap.columns, version_,
                                          lambda wanted: load_vectors(collection, wanted)))

    return await run_in_threadpool(read)
