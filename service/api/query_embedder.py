"""Embeds search queries: an in-memory LRU, then the dataset's embedding cache, then the model, with
concurrent queries batched into one model call (one forward pass of 16 texts costs far less than 16)."""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from embeddings.cache import CachedEmbedder, text_hash

log = logging.getLogger(__name__)


class QueryEmbedder:
    """Thread-safe; one worker thread owns the model calls. Queries are never written to the persistent
    cache: they are not data, and a busy search box would grow it without bound."""

    def __init__(self, embedder: Callable[[], CachedEmbedder], max_batch: int = 64, lru_size: int = 4096):
        self._embedder = embedder
        self.max_batch = max_batch
        self.lru_size = lru_size
        self._lru: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lru_lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, Future] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0
        self.model_calls_texts = 0

    @property
    def name(self) -> str:
        return self._embedder().name

    def embed(self, text: str, timeout: float = 60.0) -> np.ndarray:
        """The unit vector of one query text."""
        with self._lru_lock:
            vec = self._lru.get(text)
            if vec is not None:
                self._lru.move_to_end(text)
                return vec
        self._ensure_worker()
        future: Future = Future()
        self._queue.put((text, future))
        return future.result(timeout=timeout)

    def _ensure_worker(self) -> None:
        with self._start_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="dd-query-embedder", daemon=True)
                self._worker.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(nxt)
            self._embed_batch(batch)

    def _embed_batch(self, batch: list[tuple[str, Future]]) -> None:
        try:
            cached = self._embedder()
            texts = list(dict.fromkeys(text for text, _ in batch))
            hashes = {t: text_hash(t) for t in texts}
            found = cached.cache.get_many(cached.name, list(hashes.values()))
            vectors = {t: found[h] for t, h in hashes.items() if h in found}
            missing = [t for t in texts if t not in vectors]
            if missing:
                self.batches += 1
                self.model_calls_texts += len(missing)
                for t, v in zip(missing, cached.embedder.embed(missing), strict=True):
                    vectors[t] = np.asarray(v, dtype=np.float32)
            with self._lru_lock:
                for t, v in vectors.items():
                    self._lru[t] = v
                    self._lru.move_to_end(t)
                while len(self._lru) > self.lru_size:
                    self._lru.popitem(last=False)
            for text, future in batch:
                future.set_result(vectors[text])
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)

    def close(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            self._queue.put(None)
            self._worker.join(timeout=5)
