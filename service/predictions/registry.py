"""The model registry: versions v1, v2, ... per dataset under the models folder, and which one is production.

Layout: `<models_dir>/<dataset>/<version>/` holds `meta.json` (labels, parameters, data hash, sizes,
metrics, curves, artifact hash), `model.joblib` and `oof.npz` + `oof_ids.json`; `<dataset>/production.json`
names the promoted version. A version folder is built under a temporary name and renamed into place, so a
reader never sees half a version, and it never changes afterwards.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.store import PointId, check_name
from service.datasets.catalog import now_iso
from service.errors import IntegrityError, InvalidInput, NotFound
from service.jsonable import jsonable
from service.predictions.models import Classifier

log = logging.getLogger(__name__)

_VERSION_RE = re.compile(r"^v([1-9][0-9]{0,8})$")
META, ARTIFACT, OOF, OOF_IDS, PRODUCTION = "meta.json", "model.joblib", "oof.npz", "oof_ids.json", "production.json"


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _stamp(path: Path) -> tuple:
    """What changes when a version is added or promoted: mtime, inode (promotion replaces the file) and link
    count; plus a one-second tick, because two changes within one timestamp tick would look like none."""
    st = path.stat()
    return st.st_mtime_ns, st.st_ino, st.st_nlink, int(time.monotonic())


def _version_number(version: str) -> int | None:
    match = _VERSION_RE.match(version)
    return int(match.group(1)) if match else None


class ModelVersion:
    """One trained version: its metadata at once, the model itself loaded (and hash-checked) on first use."""

    def __init__(self, path: Path, meta: dict[str, Any]):
        self.path = path
        self.meta = meta
        self._model: Classifier | None = None
        self._lock = threading.Lock()

    dataset = property(lambda self: self.meta["dataset"])
    version = property(lambda self: self.meta["version"])
    labels = property(lambda self: list(self.meta["labels"]))
    metrics = property(lambda self: self.meta["metrics"])
    params = property(lambda self: self.meta["params"])
    created_at = property(lambda self: self.meta["created_at"])
    curves = property(lambda self: self.meta.get("curves", {}))
    embedding_model = property(lambda self: self.meta["embedding_model"])
    needs_vectors = property(lambda self: bool(self.meta["needs_vectors"]))
    data_hash = property(lambda self: self.meta["data_hash"])
    sizes = property(lambda self: self.meta["sizes"])

    def __repr__(self) -> str:
        return f"ModelVersion({self.dataset!r}, {self.version!r}, {self.params.get('model')!r})"

    @property
    def loaded(self) -> bool:
        """Whether the classifier is in memory (the first use reads and checks the artifact)."""
        return self._model is not None

    def model(self) -> Classifier:
        """The classifier, loaded once; refuses an artifact whose hash is not the one recorded at training."""
        with self._lock:
            if self._model is None:
                import joblib

                artifact = self.path / ARTIFACT
                actual = _sha256(artifact)
                if actual != self.meta["artifact_sha256"]:
                    raise IntegrityError(
                        f"{artifact}: sha256 {actual} is not the {self.meta['artifact_sha256']} recorded when "
                        f"{self.dataset} {self.version} was trained; retrain (data-debugger train) rather than "
                        "load a changed file"
                    )
                self._model = joblib.load(artifact)
                log.info("loaded model %s %s (%s)", self.dataset, self.version, self.params.get("model"))
            return self._model

    def predict_proba(self, texts: list[str], vectors: np.ndarray | None) -> np.ndarray:
        """(n, len(labels)) probabilities; `vectors` are the texts' embeddings (ignored by text-only models)."""
        if self.needs_vectors and vectors is None:
            raise InvalidInput(f"{self.dataset} {self.version} ({self.params.get('model')}) needs embeddings")
        return self.model().predict_proba(texts, vectors)

    def oof(self) -> tuple[list[PointId], np.ndarray]:
        """Out-of-fold probabilities of every labelled point it was trained on, columns in `labels` order."""
        ids = json.loads((self.path / OOF_IDS).read_text())
        with np.load(self.path / OOF) as data:
            proba = np.asarray(data["proba"], dtype=np.float64)
        return ids, proba

    def summary(self) -> dict[str, Any]:
        """The listing figures: headline metrics of validation and test, no curves."""
        def headline(split: str) -> dict[str, Any]:
            m = self.metrics.get(split) or {}
            keys = ("n", "accuracy", "macro_f1", "macro_f1_ci", "ece", "log_loss")
            return {k: m[k] for k in keys if k in m}

        return {
            "dataset": self.dataset, "version": self.version, "model": self.params.get("model"),
            "params": self.params, "created_at": self.created_at, "labels": self.labels,
            "sizes": self.sizes, "data_hash": self.data_hash, "source": self.meta.get("source"),
            "embedding_model": self.embedding_model,
            "metrics": {"validation": headline("validation"), "test": headline("test"),
                        "oof": self.metrics.get("oof", {})},
        }


class ModelRegistry:
    """Versions of each dataset's classifier, on disk; safe to share between threads and processes."""

    def __init__(self, models_dir: Path):
        self.root = Path(models_dir)
        self._cache: dict[tuple[str, str], ModelVersion] = {}
        # Per-request lookups (which versions exist, which is production) cost a stat, not a read.
        self._listing: dict[str, tuple[tuple, list[int]]] = {}
        self._production: dict[str, tuple[tuple, str]] = {}
        self._guard = threading.Lock()

    def _dir(self, dataset: str) -> Path:
        return self.root / check_name(dataset)

    @contextmanager
    def _locked(self, dataset: str) -> Iterator[Path]:
        """An exclusive lock over one dataset's versions, across processes (allocation and promotion)."""
        folder = self._dir(dataset)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".lock").open("a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield folder
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def datasets(self) -> list[str]:
        """Datasets with at least one version."""
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self._numbers(p.name))

    def _numbers(self, dataset: str) -> list[int]:
        folder = self._dir(dataset)
        try:
            stamp = _stamp(folder)
        except FileNotFoundError:
            return []
        cached = self._listing.get(dataset)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        found = [_version_number(p.name) for p in folder.iterdir() if (p / META).exists()]
        numbers = sorted(n for n in found if n is not None)
        self._listing[dataset] = (stamp, numbers)
        return numbers

    def _load(self, dataset: str, version: str) -> ModelVersion:
        key = (dataset, version)
        with self._guard:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        path = self._dir(dataset) / version
        if _version_number(version) is None or not (path / META).exists():
            known = ", ".join(f"v{n}" for n in self._numbers(dataset)) or "none"
            raise NotFound(f"model version {version!r} of {dataset!r} does not exist (versions: {known})")
        loaded = ModelVersion(path, json.loads((path / META).read_text()))
        with self._guard:
            return self._cache.setdefault(key, loaded)

    def versions(self, dataset: str) -> list[ModelVersion]:
        """Every version of a dataset, oldest first."""
        return [self._load(dataset, f"v{n}") for n in self._numbers(dataset)]

    def latest(self, dataset: str) -> ModelVersion | None:
        numbers = self._numbers(dataset)
        return self._load(dataset, f"v{numbers[-1]}") if numbers else None

    def production(self, dataset: str) -> str | None:
        """The promoted version's name, or None."""
        marker = self._dir(dataset) / PRODUCTION
        try:
            stamp = _stamp(marker)
        except FileNotFoundError:
            return None
        cached = self._production.get(dataset)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            version = json.loads(marker.read_text())["version"]
        except FileNotFoundError:
            return None
        self._production[dataset] = (stamp, version)
        return version

    def default_version(self, dataset: str) -> str | None:
        """What a request without a version gets: production, else the latest."""
        production = self.production(dataset)
        if production is not None and (self._dir(dataset) / production / META).exists():
            return production
        latest = self.latest(dataset)
        return latest.version if latest else None

    def get(self, dataset: str, version: str | None = None) -> ModelVersion:
        """A named version, or the default one (production, else latest)."""
        if version is None:
            version = self.default_version(dataset)
            if version is None:
                raise NotFound(f"no model version for {dataset!r}; train one with "
                               f"`data-debugger train --dataset {dataset}`")
        return self._load(dataset, version)

    def promote(self, dataset: str, version: str) -> ModelVersion:
        """Mark a version as production: requests without a version get it from now on."""
        chosen = self._load(dataset, version)
        with self._locked(dataset) as folder:
            tmp = folder / f".{PRODUCTION}.{uuid.uuid4().hex}"
            tmp.write_text(json.dumps({"version": version, "promoted_at": now_iso()}))
            os.replace(tmp, folder / PRODUCTION)
        log.info("promoted %s %s to production", dataset, version)
        return chosen

    def record(self, dataset: str, version: str, name: str, data: dict[str, Any]) -> None:
        """Write a named record beside a version's metadata (e.g. a retrain's verdict), atomically. The
        metadata itself never changes after registration; records say what happened to the version since."""
        if not name.isidentifier():
            raise ValueError(f"record name {name!r} must be an identifier")
        folder = self._load(dataset, version).path
        tmp = folder / f".{name}.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(jsonable(data), indent=1))
        os.replace(tmp, folder / f"{name}.json")

    def read_record(self, dataset: str, version: str, name: str) -> dict[str, Any] | None:
        """A record written by `record`, or None."""
        try:
            return json.loads((self._load(dataset, version).path / f"{name}.json").read_text())
        except FileNotFoundError:
            return None

    def create(self, dataset: str, model: Classifier, meta: dict[str, Any], oof_ids: list[PointId],
               oof_proba: np.ndarray) -> ModelVersion:
        """Write a new version (the next number) atomically and return it."""
        import joblib

        if oof_proba.shape != (len(oof_ids), len(meta["labels"])):
            raise InvalidInput(f"out-of-fold matrix {oof_proba.shape} does not match {len(oof_ids)} points "
                               f"x {len(meta['labels'])} labels")
        folder = self._dir(dataset)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            joblib.dump(model, tmp / ARTIFACT)
            np.savez_compressed(tmp / OOF, proba=oof_proba.astype(np.float32))
            (tmp / OOF_IDS).write_text(json.dumps(list(oof_ids)))
            meta = {**meta, "dataset": dataset, "artifact_sha256": _sha256(tmp / ARTIFACT)}
            with self._locked(dataset):
                numbers = self._numbers(dataset)
                version = f"v{(numbers[-1] if numbers else 0) + 1}"
                meta["version"] = version
                meta.setdefault("created_at", now_iso())
                (tmp / META).write_text(json.dumps(jsonable(meta), indent=1))
                os.rename(tmp, folder / version)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("registered %s %s", dataset, version)
        return self._load(dataset, version)
