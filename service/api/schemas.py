"""Pydantic schemas of the HTTP API: one family per resource, list answers as Page(data, count, next_cursor)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from service.analyses.registry import flag_values
from service.runs.steps import STEPS

T = TypeVar("T")

Triage = Literal["label_error", "model_error", "ambiguous", "outlier", "agree", "unlabelled"]
if TYPE_CHECKING:
    # Built at run time from the registries, which mypy cannot read; pydantic validates against the real ones.
    Flag = str
    RunStep = str
else:
    Flag = Literal[flag_values()]  # the analyses' declared flags and the reviewers'
    RunStep = Literal[tuple(STEPS)]  # the registered steps, so a new one needs no edit here
Status = Literal["correct", "incorrect", "unlabelled"]
Split = Literal["training", "validation", "testing"]
PointKey = int | str
# Integers from a request are bounded here, before the store sees them: Qdrant keeps payload integers as
# int64 and point ids as uint64, and a larger number used to answer 500 (issue 13.4).
MAX_INT64 = 2**63 - 1
MAX_POINT_ID = 2**64 - 1
ClusterId = Annotated[int, Field(ge=-1, le=MAX_INT64, description="A cluster id; -1 is noise")]


def _point_key(value: int | str) -> int | str:
    """A point id as a client sends it: an integer Qdrant can hold, or a record id string."""
    if isinstance(value, int) and not 0 <= value <= MAX_POINT_ID:
        raise ValueError(f"{value} is not a point id (0 to 2^64-1); send a record id like this one as a string")
    if isinstance(value, str) and not 1 <= len(value) <= 200:
        raise ValueError("a record id is 1 to 200 characters")
    return value


# One validator, so that a bad id gets one message naming `body.id` rather than one per member of the union;
# the schema still states the bounds for clients and fuzzers.
PointKeyIn = Annotated[int | str, AfterValidator(_point_key), WithJsonSchema({"anyOf": [
    {"type": "integer", "minimum": 0, "maximum": MAX_POINT_ID},
    {"type": "string", "minLength": 1, "maxLength": 200}]})]


class ErrorOut(BaseModel):
    """Every error answer: status, a stable code, a message naming the bad value and the fix."""

    status: int
    code: str
    message: str
    field: str | None = Field(None, description="The request field at fault, e.g. 'query.limit' or 'body.label'")
    problems: list[str] = Field(default_factory=list, description="Every problem found, for bad files")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass next_cursor back as `cursor` for the next one (null at the end)."""

    data: list[T]
    count: int = Field(description="Items matching the request in all pages")
    next_cursor: str | None = None


class DiskOut(BaseModel):
    """Free space under the data home against the reserve below which writes answer 507."""

    path: str
    free_bytes: int
    reserve_bytes: int = Field(description="DATA_DEBUGGER_MIN_FREE_BYTES")
    low: bool = Field(description="Below the reserve: writes are refused (507), reads are still served")


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    store: str
    datasets: int | None = None
    runs_pending: int = 0
    embedder_ready: bool = Field(False, description="The query embedding model is loaded (text search is warm)")
    version: str
    disk: DiskOut | None = Field(None, description="Free space under the data home (null if it cannot be read)")
    reason: str | None = Field(None, description="Why the store is unavailable")


class DatasetSummary(BaseModel):
    """A dataset with its counts."""

    name: str
    format: str | None = None
    embedding_model: str | None = None
    dim: int | None = None
    created_at: str | None = None
    updated_at: str | None = None
    points: int
    labelled: int
    unlabelled: int
    labels: int
    by_split: dict[str, int]
    by_label: dict[str, int]


class ModelVersionOut(BaseModel):
    version: str
    created_at: str | None = None
    production: bool = False
    metrics: dict[str, Any] = Field(default_factory=dict)


class DatasetDetail(DatasetSummary):
    """Counts by split, label and prediction, the last analysis and the model versions seen."""

    by_prediction: dict[str, int] = Field(default_factory=dict)
    by_status: dict[str, int] = Field(default_factory=dict)
    last_ingest_at: str | None = None
    last_analysis_at: str | None = None
    analysis_run: str | None = None
    analysis_state: Literal["none", "complete", "incomplete"] = Field(
        "none", description="incomplete: an analysis write-back was interrupted; re-run analyze")
    analysis_warning: str | None = Field(None, description="What is wrong with the analysis state, and the fix")
    model_versions: list[ModelVersionOut] = Field(default_factory=list)
    label_revision: int = Field(0, description="Number of label changes in the audit log")


class PointOut(BaseModel):
    """A point: its id and payload (service/fields.py lists every field)."""

    model_config = ConfigDict(extra="allow")

    id: PointKey
    record_id: PointKey | None = None
    text: str | None = None
    label: str | None = None
    split: str | None = None
    prediction: str | None = None
    confidence: float | None = None
    revision: int = 0


class Neighbour(BaseModel):
    id: PointKey
    text: str | None = None
    label: str | None = None
    prediction: str | None = None
    split: str | None = None
    similarity: float


class PointDetail(PointOut):
    """A point with its nearest neighbours (cosine similarity, best first)."""

    neighbours: list[Neighbour] = Field(default_factory=list)


class PointFilters(BaseModel):
    """Filters shared by point lists and search; every given condition must hold."""

    model_config = ConfigDict(extra="forbid")

    label: list[str] | None = Field(None, description="Any of these labels")
    has_label: bool | None = Field(None, description="true: labelled only; false: unlabelled only")
    split: list[Split] | None = None
    prediction: list[str] | None = None
    status: Status | None = Field(None, description="Model vs label: correct, incorrect or unlabelled")
    cluster: list[ClusterId] | None = None
    triage: list[Triage] | None = None
    flag: list[Flag] | None = Field(None, description="Any of these flags")
    min_score: float | None = Field(None, ge=0, le=1, description="Lowest mislabel_score")
    max_score: float | None = Field(None, ge=0, le=1, description="Highest mislabel_score")
    min_confidence: float | None = Field(None, ge=0, le=1)
    max_confidence: float | None = Field(None, ge=0, le=1)
    text: str | None = Field(None, max_length=500, description="Every word must occur in the text")


class PointQuery(PointFilters):
    """Point-list query: filters plus paging."""

    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=1000)


def _words(text: str | None) -> str | None:
    """A search text with something to embed: blank text would return arbitrary neighbours."""
    if text is not None and not text.strip():
        raise ValueError("is blank; give some words to search for")
    return text


SearchText = Annotated[str, AfterValidator(_words)]


class SearchIn(PointFilters):
    """Nearest points to a free text (embedded on the fly) or to a point of the dataset."""

    model_config = ConfigDict(extra="forbid")

    text: SearchText | None = Field(None, min_length=1, max_length=2000, description="Free text to embed")
    id: PointKeyIn | None = Field(None, description="A point id (0 to 2^64-1) or record id (a string) of this dataset")
    contains: str | None = Field(None, max_length=500, description="Every word must occur in the text")
    k: int = Field(10, ge=1, le=200)

    @model_validator(mode="after")
    def _one_query(self) -> SearchIn:
        if (self.text is None) == (self.id is None):
            raise ValueError("give exactly one of `text` and `id`")
        return self


class SearchHit(PointOut):
    score: float = Field(description="Cosine similarity")
    dataset: str | None = None


class CrossSearchIn(BaseModel):
    """Search several datasets embedded with the same model."""

    model_config = ConfigDict(extra="forbid")

    text: SearchText = Field(min_length=1, max_length=2000)
    k: int = Field(10, ge=1, le=200)
    datasets: list[str] | None = Field(None, max_length=100, description="Default: every dataset of the model")


class Cluster(BaseModel):
    """A cluster of the analysis report (fields as written by the analyses)."""

    model_config = ConfigDict(extra="allow")

    id: int


class ClusterDetail(Cluster):
    members: Page[PointOut]


class ClusterChange(BaseModel):
    """One cluster's out-of-fold error rate under versions A and B; change = A - B (positive: A errs more)."""

    cluster: int
    name: str
    size: int = Field(description="labelled points of the cluster that both versions predicted")
    error_rate_a: float
    error_rate_b: float
    change: float


class ClusterChangesOut(BaseModel):
    """Two versions compared cluster by cluster, the largest change first."""

    a: str
    b: str
    points: int = Field(description="labelled points both versions predicted out of fold")
    error_rate_a: float | None
    error_rate_b: float | None
    clusters: list[ClusterChange]


Action = Literal["relabel", "accept", "reviewed", "ambiguous"]


class LabelIn(BaseModel):
    """A review action on one point. `revision` is the point's revision the client saw; stale -> 409."""

    model_config = ConfigDict(extra="forbid")

    action: Action
    label: str | None = Field(None, max_length=200, description="The new label (relabel); optional for accept")
    reason: str = Field("", max_length=200, description="Reason code, e.g. wrong_label, typo, new_intent")
    user: str = Field("anonymous", min_length=1, max_length=100)
    revision: int | None = Field(None, ge=0, le=MAX_INT64, description="Revision the client saw; null skips the check")
    evidence: dict[str, Any] | None = Field(None, description="What the reviewer was shown, kept in the log")
    allow_new_label: bool = Field(False, description="Allow a label no point carries yet")


class UndoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field("anonymous", min_length=1, max_length=100)
    reason: str = Field("undo", max_length=200)


class ChangeOut(BaseModel):
    """One entry of the append-only audit log."""

    change_id: int
    point_id: PointKey
    record_id: PointKey | None = None
    action: str
    user: str
    reason: str
    at: str
    old: dict[str, Any]
    new: dict[str, Any]
    removed: list[str] = Field(default_factory=list)
    absent_before: list[str] = Field(default_factory=list)
    revision_before: int
    revision_after: int
    evidence: dict[str, Any] = Field(default_factory=dict)
    undoes: int | None = None
    undone_by: int | None = None
    source: str = "api"
    status: Literal["applied", "pending", "not_applied"] = Field(
        "applied", description="Whether the change reached its point: pending while being written; not_applied "
        "when the service stopped before the point was written (undo refuses it)")


class ImportOut(BaseModel):
    """What a Label Studio import did: per outcome counts (applied = accepted + reviewed + relabelled), the
    stale tasks (the point changed after the task was made: who and when) and the skipped ones (why)."""

    format: str = "JSON"
    applied: int
    accepted: int = 0
    reviewed: int = 0
    relabelled: int = 0
    unchanged: int
    stale: list[dict[str, Any]] = Field(default_factory=list)
    skipped: list[dict[str, Any]]
    changes: list[int]


RunStatus = Literal["queued", "running", "succeeded", "failed", "interrupted"]


class RunIn(BaseModel):
    """Start a step; other keys are the step's options (ingest: path, format, text_column, ...)."""

    model_config = ConfigDict(extra="allow")

    step: RunStep
    options: dict[str, Any] = Field(default_factory=dict)


class Progress(BaseModel):
    stage: str = ""
    done: int = 0
    total: int | None = None


class RunOut(BaseModel):
    id: str
    dataset: str
    step: str
    status: RunStatus
    progress: Progress
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    error: ErrorOut | None = None
    result: dict[str, Any] | None = None


class UploadOut(BaseModel):
    dataset: DatasetDetail | None = None
    run: RunOut
