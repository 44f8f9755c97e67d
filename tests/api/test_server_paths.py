"""No client can make the service read a server file outside the import roots, whatever it sends: run
options (ingest path, train from_file, smuggled internal flags), the upload form, or a Label Studio import.
Each way is tried with an absolute path, `..`, a symlink pointing out, and /proc."""

from __future__ import annotations

import os
import shutil

import pytest

from embeddings.store import load_all
from tests.api.conftest import HUMANLOOP_SMALL, N_POINTS, running, settings_in

pytestmark = pytest.mark.anyio

SECRET = "s3cr3t-token-from-a-credentials-file"


@pytest.fixture(scope="module")
async def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("paths")
    outside = root / "outside"
    outside.mkdir()
    # A credentials-like file outside every root, shaped as a valid CSV so a read would ingest it.
    (outside / "secrets.csv").write_text(f"text,label\n{SECRET},leak\n")
    async with running(settings_in(root)) as (app, client):
        imports = app.state.api.settings.imports_dir
        imports.mkdir(parents=True)
        (imports / "link.csv").symlink_to(outside / "secrets.csv")
        (imports / "linkdir").symlink_to(outside, target_is_directory=True)
        shutil.copy(HUMANLOOP_SMALL, imports / "small.json")
        yield app, client, outside


def _hostile_paths(app, outside) -> list[str]:
    home = app.state.api.settings.home
    imports = app.state.api.settings.imports_dir
    return [
        str(outside / "secrets.csv"),                      # absolute, outside
        "/etc/passwd",
        f"{imports}/../../outside/secrets.csv",            # `..` out of the root
        "../../outside/secrets.csv",                        # relative, `..` out of imports
        str(imports / "link.csv"),                          # a symlink in the root pointing out
        str(imports / "linkdir" / "secrets.csv"),           # through a symlinked folder
        "/proc/self/environ",
        "/proc/self/root/etc/passwd",
        str(home / "embedding_cache.sqlite"),               # the service's own files are not importable
        str(imports) + "/\x00/etc/passwd",
    ]


def _texts(app, dataset: str) -> list[str]:
    ws = app.state.api.workspace
    if not ws.catalog.exists(dataset):
        return []
    _, payloads, _ = load_all(ws.collection(dataset), with_vectors=False)
    return [p["text"] for p in payloads]


async def test_run_options_cannot_name_a_path_outside_the_roots(service):
    app, client, outside = service
    for path in _hostile_paths(app, outside):
        for options in ({"path": path, "format": "csv"}, {"path": path, "format": "csv", "upload": True},
                        {"path": path, "upload": True, "original_name": "x.csv"}):
            answer = await client.post("/api/datasets/stolen/runs", json={"step": "ingest", "options": options})
            assert answer.status_code == 422, (path, options, answer.text)
            assert answer.json()["field"] in ("options.path", "options.upload", "options.original_name")
            assert SECRET not in answer.text
        trained = await client.post("/api/datasets/stolen/runs",
                                    json={"step": "train", "options": {"from_file": path}})
        assert trained.status_code in (404, 422), (path, trained.text)  # no such dataset, or the path refused
    assert not app.state.api.workspace.catalog.exists("stolen")


async def test_internal_flags_are_not_options(service):
    _, client, _ = service
    for flag, value in (("upload", True), ("original_name", "x.csv")):
        answer = await client.post("/api/datasets/stolen/runs", json={"step": "ingest", "options": {flag: value}})
        assert answer.status_code == 422 and answer.json()["field"] == f"options.{flag}", answer.text


async def test_a_file_inside_the_import_root_ingests(service):
    app, client, _ = service
    for path in ("small.json", str(app.state.api.settings.imports_dir / "small.json")):
        answer = await client.post("/api/datasets/fromroot/runs",
                                   json={"step": "ingest", "options": {"path": path, "format": "humanloop"}})
        assert answer.status_code == 202, answer.text
        run = answer.json()
        for _ in range(600):
            run = (await client.get(f"/api/runs/{run['id']}")).json()
            if run["status"] not in ("queued", "running"):
                break
            import asyncio

            await asyncio.sleep(0.05)
        assert run["status"] == "succeeded", run
    assert len(_texts(app, "fromroot")) == N_POINTS


async def test_upload_form_cannot_name_a_server_path(service):
    app, client, outside = service
    files = {"file": ("data.csv", b"text,label\nhello there,greet\n", "text/csv")}
    for field, value in (("path", str(outside / "secrets.csv")), ("upload", "true"),
                         ("original_name", "/etc/passwd")):
        answer = await client.post("/api/datasets", files=files, data={"name": "formleak", field: value})
        assert answer.status_code == 422 and answer.json()["field"] == f"form.{field}", answer.text
    # A file name full of `..` and an absolute path is only a name: the bytes sent are what is ingested.
    for name in ("../../outside/secrets.csv", str(outside / "secrets.csv"), "/proc/self/environ"):
        sent = {"file": (name, b"text,label\nhello there,greet\n", "text/csv")}
        answer = await client.post("/api/datasets", files=sent, data={"name": "formleak", "format": "csv"})
        assert answer.status_code in (200, 201), answer.text
    assert SECRET not in " ".join(_texts(app, "formleak"))
    assert (outside / "secrets.csv").read_text().count(SECRET) == 1  # nothing written out there either
    assert sorted(os.listdir(outside)) == ["secrets.csv"]


async def test_label_studio_import_reads_no_path(service):
    app, client, outside = service
    hostile = _hostile_paths(app, outside)
    tasks = [{"id": n, "data": {"point_id": path, "record_id": path, "id": path, "text": path},
              "annotations": [{"result": [{"type": "choices", "value": {"choices": ["leak"]}}]}]}
             for n, path in enumerate(hostile)]
    tasks.append({"id": 99, "data": {"$ref": str(outside / "secrets.csv")}, "annotations": []})
    answer = await client.post("/api/datasets/fromroot/annotations/label-studio", json=tasks)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["applied"] == 0 and len(body["skipped"]) == len(tasks)
    assert SECRET not in answer.text and SECRET not in " ".join(_texts(app, "fromroot"))
