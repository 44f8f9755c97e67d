"""Each analysis on the planted context (no store, no registry, no UMAP): it finds what was planted."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.neighbors import build_knn_graph
from service.analyses.base import REGISTRY, AnalysisResult, run_order
from service.analyses.clusters import ClusterMap, ctfidf_keywords
from service.analyses.context import build_context
from service.analyses.registry import MODULES, analysis_schemas, default_analyses, make_analysis, run_analyses
from service.errors import InvalidInput
from tests.analyses.conftest import planted_context


def rows_of(ctx, ids):
    position = {pid: i for i, pid in enumerate(ctx.ids)}
    return [position[i] for i in ids]


def flagged_ids(ctx, result: AnalysisResult, flag: str) -> set:
    return {ctx.ids[i] for i in np.flatnonzero(result.flags[flag])}


def run(ctx, *names, **params):
    results, _, skipped = run_analyses(ctx, list(names), params)
    assert not skipped, skipped
    return results


def test_knn_consistency_flags_planted_flips(ctx, planted):
    result = run(ctx, "knn_consistency")["knn_consistency"]
    assert set(planted.mislabelled) <= flagged_ids(ctx, result, "knn_disagreement")
    agreement = result.fields["knn_agreement"]
    flips = rows_of(ctx, planted.mislabelled)
    clean = [i for i in np.flatnonzero(ctx.labelled) if ctx.ids[i] not in set(planted.mislabelled)]
    assert np.nanmax(agreement[flips]) < 0.3 < np.nanmedian(agreement[clean])
    # The majority of a flipped point's neighbours is its true intent.
    for i in flips:
        assert result.fields["knn_majority_label"][i] == planted.truth[ctx.ids[i]]
    # Unlabelled points get a majority (for suggestions) but no agreement.
    unl = rows_of(ctx, planted.unlabelled)
    assert np.isnan(agreement[unl].astype(float)).all()


def test_label_issues_rank_flips_first_and_explain(ctx, planted):
    result = run(ctx, "label_issues")["label_issues"]
    score = result.fields["mislabel_score"].astype(float)
    labelled = np.flatnonzero(ctx.labelled)
    top = {ctx.ids[i] for i in labelled[np.argsort(-score[labelled])][: len(planted.mislabelled)]}
    assert top == set(planted.mislabelled)
    assert set(planted.mislabelled) <= flagged_ids(ctx, result, "label_issue")
    for i in rows_of(ctx, planted.mislabelled):
        assert result.fields["suggested_label"][i] == planted.truth[ctx.ids[i]]
        reasons = result.fields["reasons"][i]
        assert reasons[0].startswith(f"model: {planted.truth[ctx.ids[i]]} ")
        assert reasons[1].endswith(f"neighbours: {planted.truth[ctx.ids[i]]}")
    assert 0.0 <= np.nanmin(score) and np.nanmax(score) <= 1.0
    quality = result.fields["label_quality"].astype(float)
    assert np.isnan(quality[rows_of(ctx, planted.unlabelled)]).all()
    # A clean point keeps its own label as the suggestion.
    clean = next(i for i in labelled if ctx.ids[i] not in planted.mislabelled and score[i] < 0.2)
    assert result.fields["suggested_label"][clean] == ctx.label_names[ctx.labels[clean]]


def test_flag_by_threshold_follows_the_threshold(ctx):
    result = run(ctx, "label_issues", label_issues={"flag_by": "threshold", "flag_threshold": 0.3})["label_issues"]
    score = np.nan_to_num(result.fields["mislabel_score"].astype(float), nan=0.0)
    assert (result.flags["label_issue"] == (score >= 0.3)).all()


def test_outlier_is_found(ctx, planted):
    result = run(ctx, "outliers")["outliers"]
    assert flagged_ids(ctx, result, "outlier") == {planted.outlier}
    assert result.report["outliers"]["top"][0]["id"] == planted.outlier


def test_triage_classes(ctx, planted):
    results = run(ctx, "triage")
    triage = results["triage"].fields["triage"]
    for i in rows_of(ctx, planted.mislabelled):
        assert triage[i] == "label_error"
    assert set(triage[rows_of(ctx, planted.unlabelled)]) == {"unlabelled"}
    assert (triage[~ctx.labelled] == "unlabelled").all()
    counts = results["triage"].report["triage"]["counts"]
    assert results["triage"].summary_parts == {"triage": counts}
    assert sum(counts.values()) == ctx.n and counts["agree"] > 0.8 * ctx.labelled.sum()


def test_triage_separates_model_errors_from_label_errors(planted):
    """Hand-set probabilities: where neighbours back the label but the model does not, it is the model's fault."""
    base = planted_context(planted)
    probs = base.probs.copy()
    oof = base.oof.copy()
    labelled = np.flatnonzero(base.labelled)
    clean = [i for i in labelled if base.ids[i] not in planted.mislabelled and base.ids[i] != planted.outlier]
    victim = clean[0]
    wrong = (base.labels[victim] + 1) % base.n_labels
    for matrix in (probs, oof):
        matrix[victim] = 0.0
        matrix[victim, wrong] = 1.0
    labels = [base.label_names[y] if y >= 0 else None for y in base.labels]
    ctx = build_context(base.ids, base.texts, base.vectors, labels, list(base.splits), probs=probs,
                        model_labels=base.label_names, oof=oof, knn=base.knn)
    triage = run(ctx, "triage")["triage"].fields["triage"]
    assert triage[victim] == "model_error"
    for i in rows_of(ctx, planted.mislabelled):
        assert triage[i] == "label_error"


def test_confident_disagreement(ctx, planted):
    result = run(ctx, "confident_disagreement", confident_disagreement={"threshold": 0.5})["confident_disagreement"]
    pred = ctx.probs.argmax(axis=1)
    expected = ctx.labelled & (pred != ctx.labels) & (ctx.probs.max(axis=1) >= 0.5)
    assert (result.flags["confident_disagreement"] == expected).all()
    assert result.report["confident_disagreements"]["count"] == int(expected.sum())
    confidences = [e["confidence"] for e in result.report["confident_disagreements"]["examples"]]
    assert confidences == sorted(confidences, reverse=True)


def test_duplicates_conflicts_and_leakage(ctx, planted):
    result = run(ctx, "duplicates")["duplicates"]
    group = result.fields["duplicate_group"]
    for test_id, train_id in planted.leaked:
        t, s = rows_of(ctx, [test_id, train_id])
        assert group[t] is not None and group[t] == group[s]
    assert {i for pair in planted.leaked for i in pair} <= flagged_ids(ctx, result, "leak")
    assert set(planted.conflicting) <= flagged_ids(ctx, result, "conflicting_duplicate")
    a, b = rows_of(ctx, planted.conflicting)
    assert group[a] == group[b]
    leakage = result.report["leakage"]
    leaked_tests = {e["id"] for e in leakage["examples"] if e["split"] == "testing"}
    assert {t for t, _ in planted.leaked} <= leaked_tests
    effect = leakage["effect"]["testing"]
    correct = ctx.probs.argmax(axis=1) == ctx.labels
    test_rows = ctx.labelled & (ctx.splits == "testing")
    assert effect["accuracy"] == pytest.approx(correct[test_rows].mean())
    kept = test_rows.copy()
    kept[[i for i in np.flatnonzero(test_rows) if result.flags["leak"][i]]] = False
    assert effect["accuracy_without_leaked"] == pytest.approx(correct[kept].mean())
    assert effect["leaked"] == int(test_rows.sum() - kept.sum())


def test_exact_duplicates_need_only_equal_normalised_text():
    texts = ["Hello, World!", "hello world", "something else entirely", "another thing"]
    x = np.eye(4, 8, dtype=np.float32)  # orthogonal vectors: no near-duplicate edge at all
    ctx = build_context([1, 2, 3, 4], texts, x, ["a", "b", "a", None], ["training", "testing", None, None], k=3)
    result = run(ctx, "duplicates")["duplicates"]
    assert flagged_ids(ctx, result, "duplicate") == {1, 2}
    assert flagged_ids(ctx, result, "conflicting_duplicate") == {1, 2}
    assert flagged_ids(ctx, result, "leak") == {1, 2}
    assert result.report["duplicates"]["exact_groups"] == 1


def test_suggestions_for_unlabelled(ctx, planted):
    result = run(ctx, "suggestions")["suggestions"]
    suggested = result.fields["suggested_label"]
    agreement = result.fields["suggestion_agreement"]
    known = [i for i in planted.unlabelled if i not in planted.new_intent]
    rows = rows_of(ctx, known)
    right = np.mean([suggested[i] == planted.truth[ctx.ids[i]] for i in rows])
    assert right >= 0.9
    assert all(agreement[i] in ("agree", "conflict", "model_only") for i in rows)
    # Nothing labelled lives near the new intent: its points are the model's call alone.
    new_rows = rows_of(ctx, planted.new_intent)
    assert np.mean([agreement[i] == "model_only" for i in new_rows]) >= 0.8
    conf = result.fields["suggestion_confidence"].astype(float)
    assert np.isnan(conf[ctx.labelled]).all() and (conf[~ctx.labelled] > 0).all()
    assert (suggested[ctx.labelled] == None).all()  # noqa: E711 - elementwise on an object array
    assert (result.flags["suggestion_conflict"] == (agreement == "conflict")).all()


def test_suggestions_without_a_model_use_the_neighbours(planted):
    ctx = planted_context(planted, with_model=False)
    result = run(ctx, "suggestions")["suggestions"]
    agreement = set(result.fields["suggestion_agreement"][~ctx.labelled]) - {None}
    assert agreement == {"neighbours_only"}


def test_per_class_metrics_and_confusion(ctx, planted):
    from sklearn.metrics import f1_score

    report = run(ctx, "per_class")["per_class"].report
    test_rows = ctx.labelled & (ctx.splits == "testing")
    pred = ctx.probs.argmax(axis=1)
    names = ctx.label_names
    testing = report["per_class"]["testing"]
    assert testing["basis"] == "served model" and report["per_class"]["training"]["basis"] == "out-of-fold"
    for j, name in enumerate(names):
        expected = f1_score(ctx.labels[test_rows] == j, pred[test_rows] == j, zero_division=0)
        assert testing["labels"][name]["f1"] == pytest.approx(expected)
    matrix = np.array(report["confusion"]["training"]["matrix"])
    assert matrix.sum() == int((ctx.labelled & (ctx.splits == "training")).sum())
    # Flipped points are the confusions: each shows up as a pair with its true intent.
    pairs = {frozenset((p["a"], p["b"])) for p in report["confused_pairs"]}
    for rid in planted.mislabelled:
        record = planted.by_id(rid)
        assert frozenset((record["label"], planted.truth[rid])) in pairs


def test_merge_advice_for_two_intents_that_are_one(planted):
    """Relabel half of 'rates' as 'savings': the two share everything, so they are a merge candidate."""
    base = planted_context(planted)
    labels = [base.label_names[y] if y >= 0 else None for y in base.labels]
    rates = [i for i, label in enumerate(labels) if label == "rates"]
    for i in rates[::2]:
        labels[i] = "savings"
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    names = sorted({label for label in labels if label})
    y = np.array([names.index(label) if label else -1 for label in labels])
    lab = np.flatnonzero(y >= 0)
    probs = LogisticRegression(C=10.0, max_iter=2000).fit(base.vectors[lab], y[lab]).predict_proba(base.vectors)
    oof = np.full_like(probs, np.nan)
    oof[lab] = cross_val_predict(LogisticRegression(C=10.0, max_iter=2000), base.vectors[lab], y[lab], cv=5,
                                 method="predict_proba")
    ctx = build_context(base.ids, base.texts, base.vectors, labels, list(base.splits), probs=probs,
                        model_labels=names, oof=oof, knn=base.knn)
    advice = run(ctx, "per_class")["per_class"].report["advice"]
    assert [sorted(m["labels"]) for m in advice["merge"]] == [["rates", "savings"]]


def test_split_advice_from_clusters_with_different_error_rates(planted):
    ctx = planted_context(planted)
    results = run(ctx, "knn_consistency")
    card = np.flatnonzero(ctx.labels == ctx.label_names.index("card"))
    half = len(card) // 2
    clusters = np.full(ctx.n, -1)
    clusters[card[:half]], clusters[card[half:]] = 0, 1
    # The model gets the second half wrong.
    probs = ctx.probs.copy()
    probs[card[half:]] = np.roll(probs[card[half:]], 1, axis=1)
    ctx.probs, ctx.oof = probs, None
    results["clusters"] = AnalysisResult(output=ClusterMap(clusters, np.zeros((ctx.n, 2))), report={"clusters": [
        {"id": 0, "name": "first"}, {"id": 1, "name": "second"}]})
    advice = make_analysis("per_class").run(ctx).report["advice"]
    assert [s["label"] for s in advice["split"]] == ["card"]
    assert {c["name"] for c in advice["split"][0]["clusters"]} == {"first", "second"}


def test_ctfidf_names_clusters_by_their_own_words():
    texts = ["card blocked pin", "lost card pin", "card stolen", "bill due payment", "pay the bill", "bill amount"]
    clusters = np.array([0, 0, 0, 1, 1, 1])
    words = ctfidf_keywords(texts, clusters, top=2)
    assert words[0][0] == "card" and words[1][0] == "bill"
    assert "pin" in words[0] and "pin" not in words[1]


def test_pca_clusters_find_the_unlabelled_new_intent(ctx, planted):
    results = run(ctx, "clusters", clusters={"projection": "pca", "min_cluster_size": 10})
    report = results["clusters"].report
    cluster = results["clusters"].fields["cluster"]
    new = [c for c in report["clusters"] if c["candidate_new_intent"]]
    assert len(new) == 1
    members = {ctx.ids[i] for i in np.flatnonzero(cluster == new[0]["id"])}
    assert len(members & set(planted.new_intent)) >= 0.8 * len(planted.new_intent)
    assert len(members - set(planted.new_intent)) <= 3
    assert {"bitcoin", "crypto", "blockchain", "wallet", "ethereum", "token", "coin", "mining"} & set(
        new[0]["keywords"][:3]) == set(new[0]["keywords"][:3])
    # The few labelled strays HDBSCAN may attach (at most the 3 allowed above) do not make it a known intent.
    assert new[0]["labelled"] <= len(members - set(planted.new_intent)) <= 3
    assert new[0]["unlabelled_share"] == pytest.approx(1.0 - new[0]["labelled"] / new[0]["size"])
    assert (new[0]["dominant_label"] is None) == (new[0]["labelled"] == 0)
    rates = [c["error_rate"] for c in report["clusters"]]
    assert rates == sorted(rates, key=lambda r: -(r if r is not None else -1))
    for c in report["clusters"]:
        assert len(c["representatives"]) == min(3, c["size"])
        if c["labelled"]:
            dist = c["label_distribution"]
            assert c["purity"] == pytest.approx(max(dist.values()) / c["labelled"])
            assert c["dominant_label"] == max(dist, key=dist.get)


def test_placement_through_the_graph_keeps_separate_blobs_apart():
    from service.analyses.projection import HdbscanClusterer, PcaProjector, layout

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 16)) * 5
    x = np.vstack([c + rng.standard_normal((400, 16)) for c in centres]).astype(np.float32)
    truth = np.repeat([0, 1, 2], 400)
    graph = build_knn_graph(x, k=15)
    result = layout(x, graph, PcaProjector(), HdbscanClusterer(min_cluster_size=20), 5, sample_size=300, seed=0)
    assert result.fitted_on == 300 and result.xy.shape == (1200, 2)
    assert "place" in result.seconds
    # Every blob maps onto one cluster id, and different blobs onto different ones.
    majority = [np.bincount(result.clusters[truth == b] + 1).argmax() - 1 for b in range(3)]
    assert len(set(majority)) == 3 and -1 not in majority
    agree = np.mean([result.clusters[i] == majority[truth[i]] for i in range(1200)])
    assert agree > 0.95


def test_run_order_and_parameter_errors(ctx):
    order = run_order(["triage"])
    assert order.index("knn_consistency") < order.index("label_issues") < order.index("triage")
    assert order.index("outliers") < order.index("triage")
    with pytest.raises(InvalidInput, match="'nonsense' is unknown"):
        run_order(["nonsense"])
    with pytest.raises(InvalidInput, match="clusters.*min_cluster_size"):
        make_analysis("clusters", {"min_cluster_size": 1})
    with pytest.raises(InvalidInput, match="knn_consistency.*'colour'"):
        make_analysis("knn_consistency", {"colour": "red"})


def test_analyses_needing_a_model_are_skipped_without_one(planted):
    ctx = planted_context(planted, with_model=False)
    results, _, skipped = run_analyses(ctx, ["knn_consistency", "label_issues", "outliers"])
    assert set(results) == {"knn_consistency", "outliers"}
    assert "trained model" in skipped["label_issues"]


def test_result_contract_is_checked():
    outliers = REGISTRY["outliers"]
    with pytest.raises(InvalidInput, match=r"produced \['spooky'\], which its `sets_flags` do not declare"):
        AnalysisResult(flags={"spooky": np.zeros(3, bool)}).check(outliers, 3)
    with pytest.raises(InvalidInput, match="2 values for 3"):
        AnalysisResult(fields={"outlier_score": np.zeros(2)}).check(outliers, 3)
    with pytest.raises(InvalidInput, match=r"produced \['extra'\], which its `report_parts` do not declare"):
        AnalysisResult(report={"outliers": {}, "extra": 1}).check(outliers, 3)
    with pytest.raises(InvalidInput, match="`summary_parts` do not declare"):
        AnalysisResult(summary_parts={"outliers": 1}).check(outliers, 3)
    with pytest.raises(InvalidInput, match="output is ndarray, its `output` declares KnnVote"):
        AnalysisResult(output=np.zeros(3)).check(REGISTRY["knn_consistency"], 3)
    AnalysisResult(fields={"outlier_score": np.zeros(3)}, report={"outliers": {}}).check(outliers, 3)


@pytest.mark.parametrize("n", [2, 5, 12])
def test_every_analysis_copes_with_a_tiny_dataset(n):
    from embeddings.embedder import FakeEmbedder

    texts = ["card lost", "bill due", "card stolen", "pay bill", "lost my card", "bill amount", "hello there",
             "card blocked", "bill paid", "what now", "card pin", "bill late"][:n]
    labels = [("card" if "card" in t else "bill") if i % 4 != 3 else None for i, t in enumerate(texts)]
    probs = np.array([[0.2, 0.8] if "card" in t else [0.7, 0.3] for t in texts])
    ctx = build_context(list(range(n)), texts, FakeEmbedder(64).embed(texts), labels, ["training"] * n,
                        probs=probs, model_labels=["bill", "card"], oof=probs)
    results, _, skipped = run_analyses(ctx)
    assert not skipped
    assert results["clusters"].fields["x"].shape == (n,)
    assert len(results["triage"].fields["triage"]) == n


def test_default_order_follows_the_registration_lines_not_the_import_order():
    # A module that imports service.analyses.clusters before the registry registers Clusters first.
    saved = dict(REGISTRY)
    try:
        REGISTRY.clear()
        REGISTRY.update({"clusters": saved["clusters"], **{k: v for k, v in saved.items() if k != "clusters"}})
        assert default_analyses() == list(MODULES)
        assert list(analysis_schemas()) == list(MODULES)
    finally:
        REGISTRY.clear()
        REGISTRY.update(saved)
