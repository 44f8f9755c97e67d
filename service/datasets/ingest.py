"""Ingest: validate whole files first, then embed (through the cache) and upsert in bounded batches."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from embeddings.store import Collection, PointId, point_id
from service.datasets.catalog import Catalog, now_iso
from service.datasets.readers import ColumnMap, detect_format, read_records
from service.datasets.records import Record, current_content_hash, validate
from service.errors import InvalidInput, InvalidRecords, RecordProblem

if TYPE_CHECKING:
    from embeddings.embedder import Embedder

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    dataset: str
    files: list[str]
    read: int = 0
    rejected: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates_skipped: int = 0
    embedded: int = 0  # texts the model embedded (cache misses)
    seconds: float = 0.0
    rejects_path: str | None = None
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.dataset}: read {self.read}, inserted {self.inserted}, updated {self.updated}, "
            f"unchanged {self.unchanged}, rejected {self.rejected}, embedded {self.embedded} new texts "
            f"in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class Source:
    """One file to ingest and how to read it."""

    path: Path
    fmt: str
    columns: ColumnMap


def _validated(sources: Sequence[Source]) -> tuple[list[tuple[Source, int]], list[tuple[Source, RecordProblem]], int]:
    """Pass one: every record checked, duplicate ids compared. Returns (skip list, problems, records read).

    Only ids and content hashes are held, so memory stays small next to the data.
    """
    seen: dict[PointId, tuple[str, str, int]] = {}  # point id -> (content hash, file, position)
    skip: list[tuple[Source, int]] = []
    problems: list[tuple[Source, RecordProblem]] = []
    read = 0
    for source in sources:
        for raw in read_records(source.path, source.fmt, source.columns):
            read += 1
            record, found = validate(raw)
            if record is None:
                problems.extend((source, p) for p in found)
                skip.append((source, raw.position))
                continue
            pid = point_id(record.id)
            digest = record.content_hash()
            if pid in seen:
                first_hash, first_file, first_pos = seen[pid]
                if first_hash != digest:
                    where = f"record {first_pos}" + (f" of {first_file}" if first_file != source.path.name else "")
                    problems.append((source, RecordProblem(
                        raw.position, f"duplicate id {record.id!r} with different content (first at {where}); "
                        "ids must be unique", raw.line, "id")))
                skip.append((source, raw.position))  # an identical repeat is dropped silently
                continue
            seen[pid] = (digest, source.path.name, raw.position)
    return skip, problems, read


def _valid_records(sources: Sequence[Source], skip: set[tuple[Path, int]]) -> Iterator[Record]:
    for source in sources:
        for raw in read_records(source.path, source.fmt, source.columns):
            if (source.path, raw.position) in skip:
                continue
            record, _ = validate(raw)
            assert record is not None  # pass one saw this record valid
            yield record


def _batches(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def payload_of(record: Record) -> dict:
    return {
        "record_id": record.id,
        "text": record.text,
        "label": record.label,
        "split": record.split,
        "source": record.source,
        # The same fields as exact JSON: qdrant-edge 0.9 re-serialises payload floats with a different last
        # digit now and then, and an export must give back exactly the values it was given.
        "source_json": json.dumps(record.source, ensure_ascii=False),
        "content_hash": record.content_hash(),
        "ingested_at": now_iso(),
    }


def _holds(stored: dict | None, record: Record) -> bool:
    """Whether a stored point already holds this record: as ingested, or as it stands after edits through
    the API, so that uploading the dataset's own export again changes nothing (and keeps the reviews)."""
    if stored is None:
        return False
    incoming = record.content_hash()
    return stored.get("content_hash") == incoming or current_content_hash(stored) == incoming


def _replacing(stored: dict | None, payload: dict) -> dict:
    """The payload of a changed record. Its revision moves on from the stored one, never back to 0: a client
    still holding the old revision must get a 409, and the audit log's revisions stay in order."""
    if stored is not None and stored.get("revision"):
        payload["revision"] = int(stored["revision"]) + 1
    return payload


def _write(collection: Collection, embedder: Embedder, sources: Sequence[Source], skip: list[tuple[Source, int]],
           report: IngestReport, batch_size: int, show_progress: bool, guard: Callable[[], object] | None = None,
           ) -> None:
    """Upsert the valid records that are new or changed, batch by batch, counting them in `report`."""
    skip_set = {(s.path, pos) for s, pos in skip}
    total = report.read - len(skip)
    progress = None
    if show_progress:
        from tqdm import tqdm

        progress = tqdm(total=total, desc=f"ingest {report.dataset}", unit="rec")
    for batch in _batches(_valid_records(sources, skip_set), batch_size):
        ids = [point_id(r.id) for r in batch]
        existing = {p.id: p.payload for p in collection.retrieve(ids)}
        changed = [(pid, r) for pid, r in zip(ids, batch, strict=True) if not _holds(existing.get(pid), r)]
        report.unchanged += len(batch) - len(changed)
        if changed:
            if guard is not None:
                guard()
            vectors = embedder.embed([r.text for _, r in changed])
            collection.upsert([pid for pid, _ in changed], vectors,
                              [_replacing(existing.get(pid), payload_of(r)) for pid, r in changed])
            report.updated += sum(1 for pid, _ in changed if pid in existing)
            report.inserted += sum(1 for pid, _ in changed if pid not in existing)
        if progress is not None:
            progress.update(len(batch))
    if progress is not None:
        progress.close()


def make_sources(paths: Sequence[Path | str], fmt: str | None = None, columns: ColumnMap | None = None) -> list[Source]:
    out = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise InvalidInput(f"{path}: no such file")
        out.append(Source(path, fmt or detect_format(path), columns or ColumnMap()))
    return out


def ingest(
    catalog: Catalog,
    embedder: Embedder,
    dataset: str,
    sources: Sequence[Source],
    *,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    batch_size: int = 512,
    show_progress: bool = False,
    index_threshold: int = 20_000,
    defer_index: bool = False,
    guard: Callable[[], object] | None = None,
) -> IngestReport:
    """Validate every file, then upsert what is new or changed. Refuses the whole input on a bad record
    unless skip_invalid, in which case the rejects are written to `rejects_path`. `guard` is called before
    each batch is written and stops the ingest by raising (the workspace's free-space check)."""
    if guard is not None:
        guard()
    started = time.perf_counter()
    report = IngestReport(dataset, [str(s.path) for s in sources])
    skip, problems, report.read = _validated(sources)
    report.rejected = len({(s.path, p.record) for s, p in problems})
    report.duplicates_skipped = len(skip) - report.rejected
    report.problems = [f"{s.path.name}: {p}" for s, p in problems]
    if problems and not skip_invalid:
        by_file = {s.path.name for s, _ in problems}
        name = ", ".join(sorted(by_file))
        raise InvalidRecords(name, [p for _, p in problems])
    if problems:
        rejects_path = rejects_path or Path(f"{dataset}.rejects.jsonl")
        rejects_path.parent.mkdir(parents=True, exist_ok=True)
        with rejects_path.open("w", encoding="utf-8") as fh:
            for source, p in problems:
                fh.write(json.dumps({"file": str(source.path), **asdict(p), "error": str(p)}) + "\n")
        report.rejects_path = str(rejects_path)
        log.warning("%d bad record(s) skipped; written to %s", report.rejected, rejects_path)

    fmt = sources[0].fmt if len({s.fmt for s in sources}) == 1 else "mixed"
    if catalog.exists(dataset):
        entry = catalog.get(dataset)
        if entry["embedding_model"] != embedder.name:
            raise InvalidInput(
                f"dataset {dataset!r} was embedded with {entry['embedding_model']!r}, not {embedder.name!r}; "
                "ingest into a new dataset or use the same embedding settings"
            )
        collection = catalog.collection(dataset)
        created = False
    else:
        collection = catalog.create(dataset, embedder.dim, embedder.name, fmt)
        created = True
    misses_before = getattr(embedder, "misses", 0)
    try:
        _write(collection, embedder, sources, skip, report, batch_size, show_progress, guard)
    except BaseException:
        # A new dataset that got nothing (the first batch failed) is removed rather than left empty; one that
        # got some records stays, so that running the ingest again resumes it.
        if created and collection.count() == 0:
            catalog.drop(dataset)
        raise
    collection.flush()
    if (report.inserted or report.updated) and collection.count() >= index_threshold:
        if defer_index:
            # predict and analyze rewrite every payload, which moves each point out of the indexed segment;
            # analyze rebuilds the index after its write-back, so one built now would be built twice.
            log.info("the vector index of %s is left to analyze (--defer-index): search scans until then", dataset)
        else:
            # Below the threshold a plain scan answers in a few ms; above, search needs the HNSW index.
            log.info("building the vector index of %s", dataset)
            collection.optimize()
    report.embedded = getattr(embedder, "misses", 0) - misses_before
    if report.inserted or report.updated:
        catalog.update(dataset, last_ingest_at=now_iso())
    report.seconds = time.perf_counter() - started
    log.info(report.summary())
    return report
