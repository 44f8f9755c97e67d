"""Label Studio's ML-backend protocol on the prediction API, so a project can ask Data Debugger's production
model for pre-annotations of tasks added there. Connect a project (Settings > Model) to
`<service>/label-studio/ml/<dataset>`; Label Studio then calls, under that URL:

    GET  /health    {"status": "UP", "model_class": ...}
    POST /setup     {"project", "schema" (the labelling config), ...} -> {"model_version"}
    POST /predict   {"tasks": [{"id", "data": {...}}], "label_config", "project", "params"}
                    -> {"results": [{"result": [a choices result], "score", "model_version"}], "model_version"}

The choice goes to the config's first <Choices> control and the text is read from the task field its
<Text> names ($text by default). When the prediction API has a key, the routes take it as X-API-Key or as the
password of HTTP Basic auth (what Label Studio's "Basic Authentication" for a model sends).
"""

from __future__ import annotations

import base64
import hmac
import xml.etree.ElementTree as ET
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Path

from embeddings.store import NAME_PATTERN
from service.labelstudio.tasks import FROM_NAME, TO_NAME, object_field

MODEL_CLASS = "DataDebuggerClassifier"
MAX_TASKS = 1000
ProjectPath = Annotated[str, Path(min_length=1, max_length=64, pattern=NAME_PATTERN,
                                   description="The dataset whose model answers")]


def controls(label_config: str | None) -> tuple[str, str, str]:
    """(from_name, to_name, data field) of the config's first Choices control and its Text."""
    if not isinstance(label_config, str) or not label_config:
        return FROM_NAME, TO_NAME, TO_NAME
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError:
        return FROM_NAME, TO_NAME, TO_NAME
    choices = next(root.iter("Choices"), None)
    from_name = choices.get("name", FROM_NAME) if choices is not None else FROM_NAME
    to_name = choices.get("toName", TO_NAME) if choices is not None else TO_NAME
    field = to_name
    for element in root.iter():
        if element.get("name") == to_name and str(element.get("value", "")).startswith("$"):
            field = element.get("value", "$")[1:]
    return from_name, to_name, field


def _key_check(api_key: str | None):
    async def require(x_api_key: Annotated[str | None, Header()] = None,
                      authorization: Annotated[str | None, Header()] = None) -> None:
        if api_key is None:
            return
        given = x_api_key
        if given is None and authorization and authorization.lower().startswith("basic "):
            try:
                given = base64.b64decode(authorization[6:]).decode().partition(":")[2]
            except ValueError:
                given = None
        if given is None or not hmac.compare_digest(given.encode(), api_key.encode()):
            raise HTTPException(401, "missing or wrong key: send X-API-Key, or the key as the Basic auth password",
                                headers={"WWW-Authenticate": "Basic"})

    return require


def ml_backend_router(predictor, api_key: str | None = None) -> APIRouter:
    """The protocol's routes over a prediction app's `Predictor`."""
    router = APIRouter(prefix="/label-studio/ml/{project}", dependencies=[Depends(_key_check(api_key))])

    @router.get("/health", operation_id="ml_backend_health")
    def ml_health(project: ProjectPath) -> dict[str, Any]:
        """Label Studio's check that the model is up."""
        return {"status": "UP", "model_class": MODEL_CLASS, "project": project}

    @router.post("/setup", operation_id="ml_backend_setup")
    def ml_setup(project: ProjectPath, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Label Studio connecting a project: answers the version that will predict."""
        return {"model_version": predictor.version(project, None).version}

    @router.post("/predict", operation_id="ml_backend_predict")
    async def ml_predict(project: ProjectPath, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Pre-annotations of the tasks: the model's top label as a choice, its probability as the score."""
        tasks = body.get("tasks")
        if not isinstance(tasks, list) or len(tasks) > MAX_TASKS:
            raise HTTPException(422, f"body.tasks must be a list of at most {MAX_TASKS} tasks")
        params = object_field(body, "params")
        wanted = params.get("model_version")
        chosen = predictor.version(project, wanted if isinstance(wanted, str) and wanted else None)
        from_name, to_name, field = controls(body.get("label_config"))
        texts = [str(((t or {}).get("data") or {}).get(field) or "") if isinstance(t, dict) else "" for t in tasks]
        results: list[dict[str, Any]] = []
        if texts:
            proba = await predictor.aproba(chosen, texts)
            for row in proba:
                best = int(row.argmax())
                results.append({"model_version": chosen.version, "score": float(row[best]), "result": [
                    {"from_name": from_name, "to_name": to_name, "type": "choices",
                     "value": {"choices": [chosen.labels[best]]}}]})
        return {"results": results, "model_version": chosen.version}

    return router
