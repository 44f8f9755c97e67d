"""Ingest: every supported format, idempotence, updates, and bad files that leave the store as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embeddings.store import load_all, point_id
from service.datasets.ingest import ingest, make_sources
from service.datasets.readers import ColumnMap
from service.errors import InvalidInput, InvalidRecords
from service.workspace import dataset_counts
from tests.conftest import FIXTURES

BAD = FIXTURES / "bad"


def _ingest(ws, paths, dataset="ds", fmt=None, columns=None, **kw):
    return ingest(ws.catalog, ws.embedder, dataset, make_sources(paths, fmt, columns), **kw)


def _snapshot(ws, dataset="ds"):
    if not ws.catalog.exists(dataset):
        return None
    ids, payloads, vectors = load_all(ws.collection(dataset))
    return sorted(zip(ids, [json.dumps(p, sort_keys=True) for p in payloads], strict=True))


def test_humanloop_format_fields_and_counts(workspace):
    report = _ingest(workspace, [FIXTURES / "humanloop_small.json"])
    assert report.inserted == 6 and report.rejected == 0
    counts = dataset_counts(workspace.collection("ds"))
    assert counts["points"] == 6 and counts["unlabelled"] == 1 and counts["labels"] == 3
    assert counts["by_split"] == {"none": 1, "testing": 1, "training": 3, "validation": 1}
    point = workspace.collection("ds").retrieve([700000])[0].payload
    assert point["text"] == "my card was stolen" and point["label"] == "card_issue"
    assert point["split"] == "training" and point["source"]["complete"] is True
    assert point["source"]["score"] == 0.0 and point["record_id"] == 700000 and point["ingested_at"]
    assert json.loads(point["source_json"]) == point["source"]
    unlabelled = workspace.collection("ds").retrieve([700005])[0].payload
    assert unlabelled["label"] is None and unlabelled["split"] is None


def test_csv_with_label_column_flag_and_fixed_split(workspace):
    columns = ColumnMap(label="category", fixed_split="training")
    _ingest(workspace, [FIXTURES / "small.csv"], columns=columns)
    counts = dataset_counts(workspace.collection("ds"))
    assert counts["points"] == 3 and counts["by_split"] == {"training": 3}
    assert counts["by_label"] == {"card_arrival": 2, "exchange_rate": 1}
    assert workspace.collection("ds").retrieve([point_id("small:2")])[0].payload["text"] == "My card has not arrived"


def test_missing_label_column_is_named(workspace):
    with pytest.raises(InvalidInput, match="no label column 'intent'.*--label-column"):
        _ingest(workspace, [FIXTURES / "small.csv"], columns=ColumnMap(label="intent"))


def test_parquet_and_split_aliases(workspace):
    _ingest(workspace, [FIXTURES / "small.parquet"])
    counts = dataset_counts(workspace.collection("ds"))
    assert counts["by_split"] == {"none": 1, "testing": 1, "training": 1}
    assert counts["unlabelled"] == 1


def test_jsonl(workspace, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "x1", "text": "a b", "label": "l1", "split": "val"}\n\n{"id": "x2", "text": "c d"}\n')
    _ingest(workspace, [path])
    assert dataset_counts(workspace.collection("ds"))["by_split"] == {"none": 1, "validation": 1}


def test_second_ingest_changes_nothing_and_embeds_nothing(workspace):
    _ingest(workspace, [FIXTURES / "humanloop_small.json"])
    before = _snapshot(workspace)
    misses = workspace.embedder.misses
    report = _ingest(workspace, [FIXTURES / "humanloop_small.json"])
    assert report.unchanged == 6 and report.inserted == report.updated == 0
    assert workspace.embedder.misses == misses
    assert _snapshot(workspace) == before


def test_updated_file_upserts_only_what_changed(workspace, tmp_path):
    items = json.loads((FIXTURES / "humanloop_small.json").read_text())
    _ingest(workspace, [FIXTURES / "humanloop_small.json"])
    items[1]["data"] = json.dumps({"text": "i lost my card yesterday", "intent": "lost_card"})
    items.append({**items[0], "id": 799999, "data": json.dumps({"text": "brand new text", "intent": "x"})})
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(items))
    report = _ingest(workspace, [changed])
    assert (report.inserted, report.updated, report.unchanged) == (1, 1, 5)
    assert report.embedded == 1  # the relabelled text was cached; only the new text is embedded
    assert workspace.collection("ds").retrieve([700001])[0].payload["label"] == "lost_card"
    assert workspace.collection("ds").count() == 7


def test_identical_duplicate_records_are_stored_once(workspace, tmp_path):
    path = tmp_path / "dups.jsonl"
    path.write_text('{"id": 1, "text": "a"}\n{"id": 1, "text": "a"}\n')
    report = _ingest(workspace, [path])
    assert report.inserted == 1 and report.duplicates_skipped == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing_text.jsonl", r'record 2 \(line 2\): "text" is missing'),
        ("nonstring_text.jsonl", r'record 2 \(line 2\): "text" must be a string, got int 42'),
        ("empty_text.csv", r'record 2 \(line 3\): "text" is empty'),
        ("duplicate_id.jsonl",
         r'record 3 \(line 3\): "id" duplicate id 1 with different content \(first at record 1\)'),
        ("unknown_split.csv", r"record 2 \(line 3\): \"split\" unknown split 'holdout'; use one of training"),
        ("malformed_line.jsonl", r"record 2 \(line 2\): malformed JSON"),
        ("humanloop_bad_data.json", r'record 2: "data" is not valid JSON'),
        ("malformed.json", r"malformed JSON after record 1"),
        ("latin1.csv", r"not valid UTF-8 .*re-save the file as UTF-8"),
        ("empty.csv", r"the file is empty"),
        ("unterminated_quote.csv", r"malformed CSV in the row after line 2 \(unexpected end of data\)"),
    ],
)
def test_bad_files_name_the_problem_and_leave_the_store_as_it_was(workspace, name, message):
    _ingest(workspace, [FIXTURES / "humanloop_small.json"])
    before = _snapshot(workspace)
    with pytest.raises(InvalidInput, match=message):
        _ingest(workspace, [BAD / name])
    assert _snapshot(workspace) == before


def test_bad_file_into_new_dataset_creates_nothing(workspace):
    with pytest.raises(InvalidRecords):
        _ingest(workspace, [BAD / "missing_text.jsonl"], dataset="fresh")
    assert not workspace.catalog.exists("fresh") and _snapshot(workspace, "fresh") is None


def test_skip_invalid_ingests_the_rest_and_writes_rejects(workspace, tmp_path):
    rejects = tmp_path / "rejects.jsonl"
    report = _ingest(workspace, [BAD / "unknown_split.csv"], skip_invalid=True, rejects_path=rejects)
    assert report.inserted == 1 and report.rejected == 1
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["record"] == 2 and lines[0]["field"] == "split"
    assert "holdout" in lines[0]["error"]


def test_multiple_files_one_dataset_and_ids_per_file(workspace, tmp_path):
    a, b = tmp_path / "train.csv", tmp_path / "test.csv"
    a.write_text("text,category\nx y,l1\nz w,l2\n")
    b.write_text("text,category\nx y,l1\n")
    _ingest(workspace, [a], columns=ColumnMap(label="category", fixed_split="training"))
    _ingest(workspace, [b], columns=ColumnMap(label="category", fixed_split="testing"))
    counts = dataset_counts(workspace.collection("ds"))
    assert counts["points"] == 3 and counts["by_split"] == {"testing": 1, "training": 2}


def test_dataset_embedded_with_another_model_is_refused(settings):
    from embeddings.embedder import FakeEmbedder
    from service.workspace import Workspace

    with Workspace(settings, embedder=FakeEmbedder()) as ws:
        _ingest(ws, [FIXTURES / "small.csv"], columns=ColumnMap(label="category"))
    with Workspace(settings, embedder=FakeEmbedder(dim=16)) as other:
        with pytest.raises(InvalidInput, match="was embedded with 'fake-32'"):
            _ingest(other, [FIXTURES / "small.csv"], columns=ColumnMap(label="category"))


def test_unknown_extension_asks_for_format(tmp_path):
    path = tmp_path / "data.xyz"
    path.write_text("x")
    with pytest.raises(InvalidInput, match="--format"):
        make_sources([path])


def test_missing_file(tmp_path):
    with pytest.raises(InvalidInput, match="no such file"):
        make_sources([tmp_path / "nope.csv"])


def test_rejects_default_path_is_not_in_cwd_of_store(workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = _ingest(workspace, [BAD / "empty_text.csv"], skip_invalid=True)
    assert Path(report.rejects_path).exists()


def test_large_collections_get_their_vector_index_built(workspace):
    _ingest(workspace, [FIXTURES / "humanloop_small.json"], index_threshold=1)
    collection = workspace.collection("ds")
    vector = workspace.embedder.embed(["my card was stolen"])[0]
    assert collection.search(vector, k=1)[0].id == 700000


def test_defer_index_leaves_the_index_to_analyze(workspace, monkeypatch):
    """--defer-index: no index build at ingest (predict and analyze rewrite every point, and analyze rebuilds
    it); search still answers, by scanning."""
    from embeddings.store.edge import EdgeCollection

    built = []
    real = EdgeCollection.optimize
    monkeypatch.setattr(EdgeCollection, "optimize", lambda self: (built.append(self.name), real(self)))
    _ingest(workspace, [FIXTURES / "humanloop_small.json"], dataset="deferred", index_threshold=1, defer_index=True)
    assert built == []
    vector = workspace.embedder.embed(["my card was stolen"])[0]
    assert workspace.collection("deferred").search(vector, k=1)[0].id == 700000
    _ingest(workspace, [FIXTURES / "humanloop_small.json"], dataset="indexed", index_threshold=1)
    assert len(built) == 1


@pytest.mark.parametrize(("name", "content", "columns", "message"), [
    ("good.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n', ColumnMap(label="category"),
     r"no label column 'category'; columns are \['label', 'text'\]\. Pass --label-column NAME"),
    ("good.csv", "text,label,split\na,x,training\n", ColumnMap(split="part"), r"no split column 'part'"),
    ("good.csv", "text,label,split\na,x,training\n", ColumnMap(id="rid"), r"no id column 'rid'"),
])
def test_a_column_named_by_the_user_must_exist(workspace, tmp_path, name, content, columns, message):
    # A misspelt option would otherwise ingest every record without its label, split or id.
    _ingest(workspace, [FIXTURES / "small.csv"])
    before = _snapshot(workspace)
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InvalidInput, match=message):
        _ingest(workspace, [path], columns=columns)
    assert _snapshot(workspace) == before


def test_ids_keep_their_spelling_unless_they_are_plain_numbers(workspace, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("id,text,label\n00123,padded,x\n123,plain,x\n-5,negative,y\n7,seven,y\n")
    _ingest(workspace, [path])
    ids, payloads, _ = load_all(workspace.collection("ds"))
    assert sorted((p["record_id"] for p in payloads), key=str) == sorted(["00123", 123, "-5", 7], key=str)
    assert point_id(123) in ids and point_id("00123") in ids and point_id("00123") != 123


def test_an_integer_id_beyond_a_point_ids_range_is_a_record_problem_and_writes_nothing(workspace, tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text('{"id": 1, "text": "fine"}\n{"id": 99999999999999999999999, "text": "too big"}\n')
    with pytest.raises(InvalidRecords, match=r'record 2 \(line 2\): "id" 99999999999999999999999 is outside'):
        _ingest(workspace, [path], dataset="big")
    assert not workspace.catalog.exists("big")


def test_a_new_dataset_whose_first_write_fails_is_not_left_behind(workspace, monkeypatch):
    def broken(texts, show_progress=False):
        raise RuntimeError("model crashed")

    monkeypatch.setattr(workspace.embedder, "embed", broken)
    with pytest.raises(RuntimeError):
        _ingest(workspace, [FIXTURES / "small.csv"], dataset="crashed")
    assert not workspace.catalog.exists("crashed")
