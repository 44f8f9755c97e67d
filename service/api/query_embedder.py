"""Embeds search queries: an in-memory LRU, then the dataset's embedding cache, then the model, with
concurrent queries batched into one model call (one forward pass of 16 texts costs far less than 16)."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from embeddings.cache import CachedEmbedder, text_hash

log = logging.getLogger(__name__)


def _share_cores(embedder) -> None:
    """The model shares this process's cores with the event loop (see SentenceTransformerEmbedder.share_cores)."""
    share = getattr(embedder, "share_cores", None)
    if share is not None:
        share()
        log.info("embedding model set to share the cores with the service")


class QueryEmbedder:
    """Thread-safe; one worker thread owns the model calls. Queries are never written to the persistent
    cache: they are not data, and a busy search box would grow it without bound."""

    def __init__(self, embedder: Callable[[], CachedEmbedder], max_batch: int = 64, lru_size: int = 4096,
                 gather_seconds: float = 0.003, busy_seconds: float = 0.02):
        self._embedder = embedder
        self.max_batch = max_batch
        self.lru_size = lru_size
        # Under load (a batch ended less than `busy_seconds` ago) the worker waits up to `gather_seconds` for
        # as many queries as the last batch held before a model call: clients answered together send their
        # next queries a moment later, and one pass over 16 texts costs far less than four over 4 (README,
        # "Similarity search"). Spread-out arrivals make small batches, so they are not held back, and
        # an idle service answers a lone query at once.
        self.gather_seconds = gather_seconds
        self.busy_seconds = busy_seconds
        self._last_batch_size = 0
        self._last_batch_end = float("-inf")
        self._lru: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lru_lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, Future] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.ready = False  # set once a model call has succeeded (the model is loaded)

    @property
    def name(self) -> str:
        return self._embedder().name

    def _cached(self, text: str) -> np.ndarray | None:
        with self._lru_lock:
            vec = self._lru.get(text)
            if vec is not None:
                self._lru.move_to_end(text)
            return vec

    def submit(self, text: str) -> Future:
        """A future of the text's vector (already resolved when the LRU has it)."""
        future: Future = Future()
        vec = self._cached(text)
        if vec is not None:
            future.set_result(vec)
            return future
        self._ensure_worker()
        self._queue.put((text, future))
        return future

    def embed(self, text: str, timeout: float = 60.0) -> np.ndarray:
        """The unit vector of one query text (blocking)."""
        return self.submit(text).result(timeout=timeout)

    async def aembed(self, text: str) -> np.ndarray:
        """The unit vector of one query text, awaited without holding a thread."""
        vec = self._cached(text)
        if vec is not None:
            return vec
        return await asyncio.wrap_future(self.submit(text))

    def warm_up(self) -> None:
        """Load the model now (in the background), not on the first search."""
        self.submit("warm up")

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
            busy = time.monotonic() - self._last_batch_end < self.busy_seconds
            expected = self._last_batch_size if busy else 0
            gather_until = time.monotonic() + self.gather_seconds
            while len(batch) < self.max_batch:
                try:
                    left = gather_until - time.monotonic() if len(batch) < expected else 0.0
                    nxt = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(nxt)
            self._embed_batch(batch)
            self._last_batch_end, self._last_batch_size = time.monotonic(), len(batch)

    def _embed_batch(self, batch: list[tuple[str, Future]]) -> None:
        try:
            cached = self._embedder()
            texts = list(dict.fromkeys(text for text, _ in batch))
            hashes = {t: text_hash(t) for t in texts}
            found = cached.cache.get_many(cached.name, list(hashes.values()))
            vectors = {t: found[h] for t, h in hashes.items() if h in found}
            missing = [t for t in texts if t not in vectors]
            if missing:
                # Embedders may have a quicker path for a few short texts (SentenceTransformerEmbedder does).
                embed = getattr(cached.embedder, "embed_queries", cached.embedder.embed)
                for t, v in zip(missing, embed(missing), strict=True):
                    vectors[t] = np.asarray(v, dtype=np.float32)
                if not self.ready:
                    _share_cores(cached.embedder)
            self.ready = True
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
