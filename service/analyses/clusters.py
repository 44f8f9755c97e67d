"""Clusters: UMAP + HDBSCAN over the embeddings, each cluster described by its labels, the model's errors in
it, its issues and unlabelled share, a c-TF-IDF name and representative texts. Sorted by error rate, the
list says where the model under-performs; clusters made mostly of unlabelled points are candidate intents."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from service.analyses.base import Analysis, AnalysisResult, Part, PayloadField, register
from service.analyses.context import AnalysisContext
from service.analyses.projection import HdbscanClusterer, PcaProjector, UmapProjector, layout

log = logging.getLogger(__name__)

NOISE = -1
# scikit-learn's English stop words, less the content words intents are made of ("bill", "call", ...).
_KEEP = {"bill", "call", "fire", "find", "system", "amount", "interest", "computer", "move", "show", "name",
         "back", "give", "take", "keep", "put", "found", "full", "empty", "detail", "describe", "top", "bottom",
         "front", "side", "cry", "mill", "thick", "thin", "sincere", "con", "part", "fill", "get", "go", "see"}


def _stop_words() -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return sorted(ENGLISH_STOP_WORDS - _KEEP)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row."""
    p = np.clip(probs, 1e-12, 1.0)
    return -(probs * np.log(p)).sum(axis=1)


def ctfidf_keywords(texts: list[str], clusters: np.ndarray, top: int = 5, max_per_cluster: int = 2000,
                    seed: int = 0) -> dict[int, list[str]]:
    """Class-based TF-IDF: the words that set each cluster's texts apart from the other clusters'.

    Each cluster's texts form one document; a word scores tf(word, cluster) * log(1 + A / f(word)), A being the
    mean words per cluster and f the word's count over all clusters. At most `max_per_cluster` texts per
    cluster are read, so a million points cost as much as a few thousand per cluster.
    """
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import CountVectorizer

    ids = np.unique(clusters)
    rng = np.random.default_rng(seed)
    rows: list[int] = []
    for c in ids:
        members = np.flatnonzero(clusters == c)
        if len(members) > max_per_cluster:
            members = rng.choice(members, size=max_per_cluster, replace=False)
        rows.extend(members.tolist())
    vectorizer = CountVectorizer(stop_words=_stop_words(), token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b")
    try:
        counts = vectorizer.fit_transform([texts[i] for i in rows])
    except ValueError:  # nothing but stop words
        return {int(c): [] for c in ids}
    position = {int(c): j for j, c in enumerate(ids)}
    member = csr_matrix((np.ones(len(rows)), ([position[int(clusters[i])] for i in rows], np.arange(len(rows)))),
                        shape=(len(ids), len(rows)))
    per_class = np.asarray((member @ counts).todense(), dtype=np.float64)
    words_per_class = per_class.sum(axis=1, keepdims=True)
    tf = per_class / np.where(words_per_class > 0, words_per_class, 1.0)
    idf = np.log(1.0 + words_per_class.mean() / np.maximum(per_class.sum(axis=0), 1.0))
    score = tf * idf
    vocab = np.array(vectorizer.get_feature_names_out())
    out = {}
    for c, j in position.items():
        best = np.argsort(-score[j], kind="stable")[:top]
        out[c] = [str(vocab[b]) for b in best if score[j, b] > 0]
    return out


def representatives(ctx: AnalysisContext, clusters: np.ndarray, count: int = 3) -> dict[int, list[str]]:
    """Per cluster, the `count` distinct texts nearest its mean embedding."""
    from scipy.sparse import csr_matrix

    ids = np.unique(clusters)
    position = np.searchsorted(ids, clusters)
    member = csr_matrix((np.ones(ctx.n, np.float32), (position, np.arange(ctx.n))), shape=(len(ids), ctx.n))
    centroids = np.asarray(member @ ctx.vectors)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    sims = np.einsum("ij,ij->i", ctx.vectors, centroids[position])
    order = np.lexsort((-sims, position))
    starts = np.searchsorted(position[order], np.arange(len(ids)))
    ends = np.append(starts[1:], ctx.n)
    out = {}
    for j, c in enumerate(ids):
        chosen: list[str] = []
        seen: set[str] = set()
        for i in order[starts[j] : min(ends[j], starts[j] + 20 * count)]:
            key = ctx.texts[i].strip().lower()
            if key not in seen:
                seen.add(key)
                chosen.append(ctx.texts[i])
            if len(chosen) == count:
                break
        out[int(c)] = chosen
    return out


def cluster_table(ctx: AnalysisContext, clusters: np.ndarray, issue: np.ndarray | None, new_intent_share: float,
                  min_size: int, keywords: int = 5) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One row per cluster (sorted by error rate, highest first) and the noise points' row (or None)."""
    honest = ctx.honest_probs()
    wrong = (honest.argmax(axis=1) != ctx.labels) if honest is not None else None
    ent = entropy(ctx.probs) if ctx.probs is not None else None
    words = ctfidf_keywords(ctx.texts, clusters, top=keywords, seed=ctx.seed)
    reps = representatives(ctx, clusters)
    rows: list[dict[str, Any]] = []
    noise: dict[str, Any] | None = None
    for c in np.unique(clusters):
        members = clusters == c
        labelled = members & ctx.labelled
        n_lab = int(labelled.sum())
        counts = np.bincount(ctx.labels[labelled], minlength=ctx.n_labels) if n_lab else np.zeros(ctx.n_labels, int)
        dominant = int(counts.argmax()) if n_lab else None
        size = int(members.sum())
        row: dict[str, Any] = {
            "id": int(c),
            "name": ", ".join(words[int(c)][:3]) or f"cluster {int(c)}",
            "size": size,
            "labelled": n_lab,
            "purity": float(counts.max() / n_lab) if n_lab else None,
            "dominant_label": ctx.label_names[dominant] if dominant is not None else None,
            "label_distribution": {ctx.label_names[j]: int(v) for j, v in enumerate(counts) if v},
            "error_rate": float(wrong[labelled].mean()) if wrong is not None and n_lab else None,
            "issue_rate": float(issue[labelled].mean()) if issue is not None and n_lab else None,
            "unlabelled_share": float(1.0 - n_lab / size),
            "mean_entropy": float(ent[members].mean()) if ent is not None else None,
            "keywords": words[int(c)],
            "representatives": reps[int(c)],
        }
        row["candidate_new_intent"] = bool(c != NOISE and size >= min_size
                                           and row["unlabelled_share"] >= new_intent_share)
        if c == NOISE:
            row["name"] = "noise (no cluster)"
            noise = row
        else:
            rows.append(row)
    rows.sort(key=lambda r: (-(r["error_rate"] if r["error_rate"] is not None else -1.0), -r["size"], r["id"]))
    return rows, noise


@dataclass(frozen=True)
class ClusterMap:
    """Each point's cluster (NOISE = none) and 2-D map position, aligned with the context rows."""

    clusters: np.ndarray
    xy: np.ndarray


@register
class Clusters(Analysis):
    """UMAP (2-D map, low-D for clustering) and HDBSCAN; per-cluster labels, errors, issues and names."""

    name = "clusters"
    payload_fields = (PayloadField("cluster", "integer", index="integer", column=True),
                      PayloadField("x", "float", column=True), PayloadField("y", "float", column=True))
    report_parts = (Part("clusters", []), Part("noise"), Part("projection"))
    summary_parts = (Part("clusters", 0), Part("noise_points", 0), Part("candidate_new_intents", 0))
    output = ClusterMap
    optional = ("label_issues",)
    description = "Density clusters with their error rates, names, and candidate new intents."

    projection: Literal["umap", "pca"] = Field("umap", description="pca: fast and rough, for quick looks")
    n_neighbors: int = Field(15, ge=2, le=100, description="UMAP neighbours (taken from the shared kNN graph)")
    n_epochs: int = Field(200, ge=10, le=2000, description="UMAP optimisation epochs")
    cluster_dims: int = Field(5, ge=2, le=50, description="dimensions HDBSCAN clusters in")
    min_cluster_size: int | None = Field(None, ge=2, description="HDBSCAN's; default grows with the data")
    min_samples: int | None = Field(None, ge=1)
    selection: Literal["eom", "leaf"] = "eom"
    sample_size: int = Field(20_000, ge=100, description="fit on this many points; place the rest via kNN")
    new_intent_share: float = Field(0.6, gt=0.0, le=1.0, description="unlabelled share of a candidate intent")
    keywords: int = Field(5, ge=1, le=30)

    def min_size(self, n: int) -> int:
        """The minimum cluster size used for n points."""
        return self.min_cluster_size or int(max(8, min(200, round(np.sqrt(n) / 3))))

    def run(self, ctx: AnalysisContext) -> AnalysisResult:
        """Project, cluster, place the rest, describe every cluster."""
        projector = (UmapProjector(self.n_neighbors, ctx.seed, self.n_epochs) if self.projection == "umap"
                     else PcaProjector(ctx.seed))
        # HDBSCAN sees the fitted sample, so its minimum cluster size follows the sample's size.
        min_size = self.min_size(min(ctx.n, self.sample_size))
        clusterer = HdbscanClusterer(min_size, self.min_samples, self.selection)
        result = layout(ctx.vectors, ctx.knn, projector, clusterer, self.cluster_dims, self.sample_size, ctx.seed)
        issue = ctx.results["label_issues"].flags["label_issue"] if "label_issues" in ctx.results else None
        table, noise = cluster_table(ctx, result.clusters, issue, self.new_intent_share, min_size, self.keywords)
        report = {
            "clusters": table,
            "noise": noise,
            "projection": {"method": self.projection, "cluster_dims": self.cluster_dims,
                           "fitted_on": result.fitted_on, "min_cluster_size": min_size,
                           "seconds": {k: round(v, 3) for k, v in result.seconds.items()}},
        }
        return AnalysisResult(
            fields={"cluster": result.clusters.astype(np.int64), "x": result.xy[:, 0].astype(np.float64),
                    "y": result.xy[:, 1].astype(np.float64)},
            output=ClusterMap(result.clusters, result.xy),
            report=report,
            summary_parts={"clusters": len(table), "noise_points": (noise or {}).get("size", 0),
                           "candidate_new_intents": sum(1 for c in table if c["candidate_new_intent"])},
            score=1.0 - float((result.clusters == NOISE).mean()),
        )
