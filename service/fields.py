"""The payload fields each step writes on a point: the contract between ingest, predict, analyze, the API
and the dashboard. Filterable fields get a store index (BASE_INDEXED here, and what each analysis declares:
service.analyses.registry.indexed_fields); none is a boolean (qdrant-edge 0.9 cannot match booleans), so
flags are a keyword list.

ingest (service.datasets.ingest.payload_of):
    record_id        the record's own id (int or str); point id = embeddings.store.point_id(record_id)
    text             str
    label            str, or None for unlabelled
    split            "training" | "validation" | "testing" | None
    source           dict: the source's own fields (Humanloop: id, project_id, complete, usage, score)
    source_json      the same fields as a JSON string, exact (the store may change a float's last digit)
    content_hash     sha256 of (text, label, split, source) as ingested; re-ingest skips equal hashes
    ingested_at      ISO time

predict (service.predictions):
    model_version    "v3": the version that produced the prediction
    prediction       top label
    confidence       its probability
    n_best           [{"label": str, "probability": float}, ...] best first
    entropy          entropy (nats) of the full probability vector
    prediction_status  "correct" | "incorrect" | "unlabelled"

analyze (service.analyses), all optional until an analysis ran; each analysis declares the fields and flags
it writes (`data-debugger analyze --list` shows them). The built-in ones:
    knn_agreement, knn_majority_label, knn_majority_share   kNN label consistency
    label_quality    cleanlab's label-quality score in [0, 1] (low = suspicious)
    mislabel_score   combined score in [0, 1] (high = likely mislabelled)
    suggested_label  str (labelled: the likely right label; unlabelled: the suggestion)
    suggestion_confidence  float, for unlabelled points
    suggestion_agreement   "agree" | "conflict" | "model_only" | "neighbours_only": model vs kNN vote (unlabelled)
    triage           "label_error" | "model_error" | "ambiguous" | "outlier" | "agree" | "unlabelled"
    reasons          [str] human-readable evidence
    outlier_score    float, high = far from everything
    duplicate_group  int id of its near-duplicate group, or absent
    cluster          int (-1 = HDBSCAN noise)
    x, y             2-D UMAP coordinates for the map
    flags            ["label_issue", "confident_disagreement", "outlier", "duplicate", "conflicting_duplicate",
                      "leak", "knn_disagreement", "suggestion_conflict", "reviewed", "ambiguous"]
    analysis_run     id of the run that wrote these fields

review (service.api relabelling), written by a relabel:
    label            the new label; `original_label` keeps what ingest stored
    original_label   set on the first relabel
    review_status    "relabelled" | "accepted" | "reviewed" | "ambiguous"
    revision         int, bumped by every change; a stale revision answers 409
"""

TRIAGE_VALUES = ("label_error", "model_error", "ambiguous", "outlier", "agree", "unlabelled")
# Flags people set by reviewing, whatever the analyses declare.
REVIEW_FLAGS = ("reviewed", "ambiguous")
# Where the built-in flags have always been listed (the points export's columns, the API's flag enum): kept so
# those stay as they were. Every flag an analysis declares is listed (registry.flag_values), these first.
FLAG_ORDER = (
    "label_issue", "confident_disagreement", "outlier", "duplicate", "conflicting_duplicate", "leak",
    "knn_disagreement", "suggestion_conflict", "reviewed", "ambiguous",
)
# Fields of ingest and predict the API filters on, with their store index type.
BASE_INDEXED: dict[str, str] = {
    "label": "keyword", "split": "keyword", "prediction": "keyword", "prediction_status": "keyword",
    "confidence": "float", "text": "text",
}
# Nested fields nothing filters on: the store may hold them as JSON text (Store.create's json_fields), which
# makes predict's write-back cheaper (1M: 227 -> 182 s; README, "A million points").
BASE_JSON_FIELDS = ("source", "n_best")
PREDICTION_FIELDS = ("model_version", "prediction", "confidence", "n_best", "entropy", "prediction_status")
