"""The enrichment client: sends a dataset's texts to a prediction API speaking the Humanloop contract and
writes the answers to the points' payloads, batch by batch (fields: service.fields, "predict").

Without an API URL the built-in model is called directly (service/predictions/direct.py, 1,024 texts a batch).
Over HTTP: batches of at most 20 texts, a bounded number in flight, a timeout per request, retries with exponential
backoff and jitter on 429, 5xx, timeouts and dropped connections (honouring Retry-After). A point whose
`model_version` already equals the version being asked is skipped, so an interrupted run resumes and a re-run
does nothing. The API key comes from settings (PREDICTION_API_KEY) only and is never logged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from embeddings.embedder import LazyEmbedder
from embeddings.store import Collection, PointId, iter_points
from service.diskspace import ensure_space
from service.errors import DataDebuggerError, InvalidInput, NotFound, Unavailable
from service.predictions.retry import RETRY_STATUSES, RetryPolicy
from service.predictions.schemas import MAX_TEXTS
from service.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from service.predictions.direct import DirectClient
    from service.workspace import Workspace

log = logging.getLogger(__name__)

IN_PROCESS_URL = "http://model-server.local"
FLUSH_EVERY = 25  # batches between store flushes


@dataclass
class EnrichReport:
    """What one enrichment run did."""

    dataset: str
    api: str
    model_version: str | None = None
    points: int = 0
    skipped: int = 0
    predicted: int = 0
    batches: int = 0
    failed_batches: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the terminal."""
        rate = self.predicted / self.seconds if self.seconds else 0.0
        failed = f", {self.failed_batches} batch(es) FAILED" if self.failed_batches else ""
        return (f"{self.dataset}: {self.predicted} of {self.points} points predicted by {self.model_version} "
                f"via {self.api}, {self.skipped} already done; {self.batches} batches, {self.requests} requests, "
                f"{self.retries} retries{failed} in {self.seconds:.1f} s ({rate:.0f} points/s)")


class BatchFailed(Exception):
    """A batch that will not succeed by retrying (or ran out of retries); `fatal` stops the whole run."""

    def __init__(self, message: str, fatal: bool = False, error: DataDebuggerError | None = None):
        super().__init__(message)
        self.fatal = fatal
        self.error = error


@dataclass
class Answer:
    """One text's prediction, as the payload fields it becomes."""

    model_version: str
    prediction: str
    confidence: float
    n_best: list[dict[str, Any]]
    entropy: float

    def payload(self, label: str | None) -> dict[str, Any]:
        status = "unlabelled" if label is None else ("correct" if label == self.prediction else "incorrect")
        return {"model_version": self.model_version, "prediction": self.prediction, "confidence": self.confidence,
                "n_best": self.n_best, "entropy": self.entropy, "prediction_status": status}


def _answer(item: Any, default_version: str) -> Answer:
    """Parse one item of a Humanloop-contract answer; raises ValueError on anything else."""
    if not isinstance(item, dict) or not isinstance(item.get("predictions"), list) or not item["predictions"]:
        raise ValueError(f"an answer item without predictions: {str(item)[:200]}")
    n_best: list[dict[str, Any]] = []
    for p in item["predictions"]:
        label = p.get("value", p.get("label"))
        probability = p.get("confidence", p.get("probability"))
        if not isinstance(label, str) or not isinstance(probability, int | float):
            raise ValueError(f"a prediction without a label and a confidence: {str(p)[:200]}")
        n_best.append({"label": label, "probability": float(probability)})
    n_best.sort(key=lambda p: -p["probability"])
    ent = item.get("entropy")
    if not isinstance(ent, int | float):
        # A server without entropy: the n best plus the rest as one outcome, a lower bound of the true entropy.
        probs = [p["probability"] for p in n_best]
        probs.append(max(0.0, 1.0 - sum(probs)))
        ent = -sum(q * math.log(q) for q in probs if q > 0)
    version = item.get("model_version") or default_version
    return Answer(str(version), n_best[0]["label"], n_best[0]["probability"], n_best, float(ent))


class PredictionClient:
    """Sends one batch of texts, retrying what is worth retrying; knows nothing of the store."""

    def __init__(self, http: httpx.AsyncClient, project: str, *, api_key: str | None = None,
                 n_best: int = 5, version: str | None = None, policy: RetryPolicy | None = None,
                 rng: random.Random | None = None):
        self.http = http
        self.project = project
        self.n_best = n_best
        self.version = version
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        self._headers = {"X-API-Key": api_key} if api_key else {}
        self.requests = 0
        self.retries = 0

    async def default_version(self) -> str | None:
        """The version the server would use (GET /models), or None where the server does not say."""
        try:
            response = await self.http.get("/models", params={"dataset": self.project}, headers=self._headers)
        except httpx.HTTPError as exc:
            log.info("could not ask the server for its default version (%s); will learn it from answers",
                     type(exc).__name__)
            return None
        if response.status_code == 401:
            raise Unavailable("the prediction API rejected the API key; set PREDICTION_API_KEY to its key")
        if response.status_code != 200:
            return None
        try:
            rows = response.json()["data"]
            return next((r["version"] for r in rows if r.get("default") and r.get("dataset") == self.project), None)
        except (ValueError, KeyError, TypeError):
            return None

    async def predict(self, texts: list[str], label: str = "batch") -> list[Answer]:
        """Answers for up to 20 texts, in order; raises BatchFailed."""
        if not 1 <= len(texts) <= MAX_TEXTS:
            raise InvalidInput(f"a batch holds 1 to {MAX_TEXTS} texts, not {len(texts)}")
        body: dict[str, Any] = {"data": [{"text": t} for t in texts], "n_best": self.n_best}
        params = {"version": self.version} if self.version else None
        url = f"/projects/{self.project}/predict"
        attempt = 0
        while True:
            self.requests += 1
            retry_after: str | None = None
            try:
                response = await self.http.post(url, json=body, params=params, headers=self._headers)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                reason = f"cannot reach the prediction API at {self.http.base_url} ({type(exc).__name__}); is it " \
                         "running, and is that its URL (--api-url)?"
            else:
                if response.status_code == 200:
                    return self._parse(response, len(texts), label)
                if response.status_code not in RETRY_STATUSES:
                    raise self._refused(response, label)
                reason = f"HTTP {response.status_code}"
                retry_after = response.headers.get("Retry-After")
            if attempt >= self.policy.max_retries:
                raise BatchFailed(f"{label}: {reason}, still failing after {attempt} retries")
            wait = self.policy.delay(attempt, retry_after, self.rng)
            attempt += 1
            self.retries += 1
            log.info("%s: %s; retry %d/%d in %.2f s", label, reason, attempt, self.policy.max_retries, wait)
            await asyncio.sleep(wait)

    def _parse(self, response: httpx.Response, n: int, label: str) -> list[Answer]:
        version = response.headers.get("X-Model-Version") or "external"
        try:
            items = response.json()
            if not isinstance(items, list) or len(items) != n:
                raise ValueError(f"expected a list of {n} answers, got {str(items)[:200]}")
            answers = [_answer(item, version) for item in items]
        except ValueError as exc:
            raise BatchFailed(f"{label}: the answer does not follow the Humanloop predict contract: {exc}") from exc
        if self.version and any(a.model_version != self.version for a in answers):
            raise BatchFailed(f"{label}: asked for version {self.version}, answered by "
                              f"{answers[0].model_version}", fatal=True)
        return answers

    def _refused(self, response: httpx.Response, label: str) -> BatchFailed:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        detail = str(detail)[:300]
        err: DataDebuggerError
        if response.status_code in (401, 403):
            err = Unavailable(f"the prediction API refused access (HTTP {response.status_code}); "
                              "set PREDICTION_API_KEY to the server's key")
            return BatchFailed(str(err), fatal=True, error=err)
        if response.status_code == 404:
            err = NotFound(f"the prediction API has no project {self.project!r}"
                           + (f" version {self.version}" if self.version else "") + f": {detail}")
            return BatchFailed(str(err), fatal=True, error=err)
        return BatchFailed(f"{label}: HTTP {response.status_code}: {detail}")


def _pending(collection: Collection, version: str | None, force: bool) -> tuple[list[tuple[PointId, str, Any]], int]:
    """(id, text, label) of the points to predict, and how many are already done by `version`."""
    todo, done = [], 0
    for page in iter_points(collection, with_vectors=False, fields=("model_version", "text", "label")):
        for p in page:
            if not force and version is not None and p.payload.get("model_version") == version:
                done += 1
            else:
                todo.append((p.id, p.payload["text"], p.payload.get("label")))
    return todo, done


def _http_client(ws: Workspace, dataset: str, api_url: str | None, transport: httpx.AsyncBaseTransport | None,
                 timeout: float, api_key: str | None, concurrency: int) -> tuple[httpx.AsyncClient, str]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    if api_url is not None and not api_url.startswith(("http://", "https://")):
        raise InvalidInput(f"the prediction API URL {api_url!r} is not an http:// or https:// URL; pass one like "
                           "--api-url http://127.0.0.1:8000 (or set DATA_DEBUGGER_PREDICTION_API_URL)")
    base = (api_url or IN_PROCESS_URL).rstrip("/")
    client = httpx.AsyncClient(base_url=base, transport=transport, timeout=timeout, limits=limits)
    return client, base


async def enrich_async(ws: Workspace, dataset: str, api_url: str | None = None,
                       transport: httpx.AsyncBaseTransport | None = None, *, project: str | None = None,
                       version: str | None = None, n_best: int = 5, batch_size: int = MAX_TEXTS,
                       concurrency: int = 4, timeout: float = 30.0, policy: RetryPolicy | None = None,
                       force: bool = False, show_progress: bool = False, raise_on_failure: bool = True,
                       rng: random.Random | None = None, progress: ProgressFn = no_progress) -> EnrichReport:
    """The async body of `enrich`."""
    if not 1 <= batch_size <= MAX_TEXTS:
        raise InvalidInput(f"batch_size must be 1 to {MAX_TEXTS} (the API's limit), not {batch_size}")
    if concurrency < 1:
        raise InvalidInput(f"concurrency must be at least 1, not {concurrency}")
    started = time.perf_counter()
    settings = ws.settings
    api_url = api_url or settings.prediction_api_url
    if project is None:
        external = api_url is not None and settings.prediction_project != "default"
        project = settings.prediction_project if external else dataset
    key = settings.prediction_api_key.get_secret_value() if settings.prediction_api_key else None
    collection = ws.collection(dataset)
    if api_url is None and transport is None:
        # The built-in model, called directly: no request to cap at 20 texts, no JSON round trip.
        from service.predictions.direct import IN_PROCESS_BATCH, DirectClient
        from service.predictions.registry import ModelRegistry

        client: PredictionClient | DirectClient = DirectClient(
            ModelRegistry(settings.models_dir), LazyEmbedder(lambda: ws.embedder), project, n_best=n_best,
            version=version)
        report = EnrichReport(dataset, "in-process")
        # Two workers: one batch's store write overlaps the next one's model call.
        await _predict_all(client, collection, force, report, IN_PROCESS_BATCH, min(concurrency, 2), show_progress,
                           progress, ws, dataset)
    else:
        http, where = _http_client(ws, dataset, api_url, transport, timeout, key, concurrency)
        report = EnrichReport(dataset, where)
        async with http:
            client = PredictionClient(http, project, api_key=key, n_best=n_best, version=version, policy=policy,
                                      rng=rng)
            await _predict_all(client, collection, force, report, batch_size, concurrency, show_progress, progress,
                               ws, dataset)
    collection.flush()
    report.seconds = time.perf_counter() - started
    log.info(report.summary())
    if report.failed_batches and raise_on_failure:
        raise Unavailable(
            f"{report.failed_batches} of {report.batches} batches failed ({'; '.join(report.errors[:3])}); "
            f"{report.predicted} points were written and are kept. Run the same command again to resume"
        )
    return report


async def _predict_all(client: PredictionClient | DirectClient, collection: Collection, force: bool,
                       report: EnrichReport, batch_size: int, concurrency: int, show_progress: bool,
                       progress: ProgressFn, ws: Workspace, dataset: str) -> None:
    """Learn the version, list what it has not predicted yet, and predict that batch by batch."""
    if client.version is None:
        client.version = await client.default_version()
    todo, report.skipped = _pending(collection, client.version, force)
    learned = client.version
    if learned is None and todo:
        # A server that does not say its version: learn it from one answer, then skip what it did.
        try:
            first = (await client.predict([todo[0][1]], "probe"))[0]
        except BatchFailed as exc:
            raise exc.error or Unavailable(str(exc)) from exc
        learned = first.model_version
        todo, report.skipped = _pending(collection, learned, force)
    report.model_version = learned
    report.points = len(todo) + report.skipped
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    report.batches = len(batches)
    log.info("%s: %d points to predict (%d already by %s) in %d batches via %s", dataset, len(todo),
             report.skipped, learned, len(batches), report.api)
    if batches:  # each answered batch is written at once: check the disk before the first
        ensure_space(ws.settings, f"writing the predictions of {dataset}")
    progress(stage="predict", done=0, total=len(todo))
    await _run_batches(client, collection, batches, concurrency, report, show_progress, progress)
    report.requests, report.retries = client.requests, client.retries


async def _run_batches(client: PredictionClient | DirectClient, collection: Collection, batches: list,
                       concurrency: int, report: EnrichReport, show_progress: bool,
                       listener: ProgressFn = no_progress) -> None:
    queue: asyncio.Queue = asyncio.Queue()
    for n, batch in enumerate(batches):
        queue.put_nowait((n, batch))
    stop: list[BatchFailed] = []
    progress = None
    if show_progress:
        from tqdm import tqdm

        progress = tqdm(total=sum(len(b) for b in batches), desc=f"predict {report.dataset}", unit="pt")

    async def worker() -> None:
        while not stop:
            try:
                n, batch = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                answers = await client.predict([text for _, text, _ in batch], f"batch {n}")
            except BatchFailed as exc:
                report.failed_batches += 1
                report.errors.append(str(exc))
                log.warning("%s", exc)
                if exc.fatal:
                    stop.append(exc)
                continue
            # Written as soon as answered: an interruption later loses nothing of this batch.
            collection.set_payloads({pid: a.payload(label) for (pid, _, label), a in zip(batch, answers, strict=True)})
            report.predicted += len(batch)
            if (n + 1) % FLUSH_EVERY == 0:
                collection.flush()
            if progress is not None:
                progress.update(len(batch))
            listener(advance=len(batch))

    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, max(1, len(batches))))))
    finally:
        if progress is not None:
            progress.close()
    if stop:
        collection.flush()
        if stop[0].error is not None:
            raise stop[0].error
        raise Unavailable(str(stop[0]))


def enrich(ws: Workspace, dataset: str, api_url: str | None = None, transport: httpx.AsyncBaseTransport | None = None,
           **options: Any) -> EnrichReport:
    """Predict every point of `dataset` not yet predicted by the server's version and write the payload
    fields of service.fields ("predict"). Default server: the built-in model server, in-process (ASGI).

    options: project, version, n_best (5), batch_size (20), concurrency (4), timeout (30 s), policy
    (RetryPolicy), force (re-predict everything), show_progress (a bar), progress (a listener hearing the
    points predicted), raise_on_failure (True), rng.
    """
    return asyncio.run(enrich_async(ws, dataset, api_url, transport, **options))
