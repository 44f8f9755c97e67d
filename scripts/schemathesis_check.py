"""Fuzz the service against its own OpenAPI document with schemathesis and report any 5xx.

Starts the real app (embedded Qdrant in a temp dir, the fake embedder) on 127.0.0.1, loads the Humanloop
export as dataset "humanloop" (the OpenAPI path examples name it) and runs train -> predict -> analyze
through the API, so the fuzzer reaches every view with data behind it. Then runs `schemathesis run`
with the not_a_server_error check over every operation but DELETE, and a last pass over DELETE.

    .venv/bin/python scripts/schemathesis_check.py [--max-examples 30] [--checks not_a_server_error]

Before the fuzzer, a hostile sweep (`hostile`) sends every integer parameter and integer body field of the
document the values at and past the store's integer types (2^63-1, 2^63, 2^64-1, 2^64, 2^64+1, -2^63-1,
10^30), and every string path parameter and dataset name names with control characters (a final newline,
CR, tab, NUL, ESC, U+2028) and digit strings past 2^64: the cases that used to answer 500 (issue 13.4).

    .venv/bin/python scripts/schemathesis_check.py --max-examples 10 --small   # the quick run

Exit status 0 when no operation answered a 5xx.
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service.api.commands import serve  # noqa: E402
from service.settings import DEFAULT_HUMANLOOP_PATH, Settings  # noqa: E402

FALLBACK = REPO / "tests" / "api" / "fixtures" / "humanloop_small.json"


def start(settings: Settings) -> tuple[str, object, threading.Thread]:
    up = threading.Event()
    holder: dict = {}

    def started(server) -> None:
        holder["server"] = server
        up.set()

    def announce(text: str) -> None:
        holder["url"] = re.search(r"API\s+(http://[\d.]+:\d+)/api", text).group(1)

    thread = threading.Thread(target=serve, args=(settings,), daemon=True, kwargs={
        "host": "127.0.0.1", "port": 0, "companions": [], "announce": announce, "started": started})
    thread.start()
    if not up.wait(120):
        raise SystemExit("the service did not start")
    return holder["url"], holder["server"], thread


def seed(url: str, data: Path) -> None:
    """The default dataset, trained, predicted and analysed through the API."""
    with httpx.Client(base_url=url, timeout=600) as client:
        created = client.post("/api/datasets", files={"file": (data.name, data.read_bytes())},
                              data={"name": "humanloop"})
        created.raise_for_status()
        for step in ("train", "predict", "analyze"):
            run = client.post("/api/datasets/humanloop/runs", json={"step": step}).json()
            while run["status"] in ("queued", "running"):
                time.sleep(0.2)
                run = client.get(f"/api/runs/{run['id']}").json()
            if run["status"] != "succeeded":
                raise SystemExit(f"{step} failed: {run['error']}")
            print(f"seeded: {step} done", flush=True)


BIG_INTS = [2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**64 + 1, -(2**63) - 1, 10**30]
BAD_STRINGS = ["humanloop\n", "humanloop\r", "\thumanloop", "human\x00loop", "human\x1bloop", "humanloop\u2028",
               str(2**64), str(10**30), "²"]
# A valid value for each path parameter, so that one hostile parameter is tested at a time.
SAMPLE_PATH = {"dataset": "humanloop", "point_id": "1", "cluster_id": "0", "change_id": "1", "run_id": "none",
               "project": "humanloop", "version": "v1"}
# A body each operation accepts, so that one hostile field is tested at a time.
BASE_BODY = {"search_dataset": {"text": "card"}, "search_all": {"text": "card"}, "label_point": {"action": "reviewed"},
             "predict": {"texts": ["card"]}, "project_predict": {"texts": ["card"]}}


def _takes_int(schema: dict, doc: dict) -> bool:
    """Whether a schema (or an item, or a member of its union) is an integer."""
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if schema.get("type") == "integer":
        return True
    if schema.get("type") == "array":
        return _takes_int(schema.get("items", {}), doc)
    return any(_takes_int(s, doc) for s in schema.get("anyOf", []))


def hostile(url: str) -> list[str]:
    """Every integer parameter/field at and past 2^63/2^64 and every string path parameter with control
    characters, one at a time; returns the requests answered 5xx (DELETE only with a hostile dataset name)."""
    failures, sent = [], 0
    with httpx.Client(base_url=url, timeout=60) as client:
        doc = client.get("/openapi.json").json()
        for path, operations in doc["paths"].items():
            for method, op in operations.items():
                cases: list[tuple[dict, dict, object]] = []  # (path values, query, json body)
                for param in op.get("parameters", []):
                    name, where, schema = param["name"], param["in"], param.get("schema", {})
                    if where not in ("path", "query"):
                        continue
                    values = list(BIG_INTS) if _takes_int(schema, doc) else (
                        BAD_STRINGS if where == "path" or name == "dataset" else [])
                    for value in values:
                        if method == "delete" and name != "dataset":
                            continue
                        cases.append(({name: str(value)}, {}, None) if where == "path" else ({}, {name: value}, None))
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
                if body and method != "delete":
                    ref = body.get("$ref", "").rsplit("/", 1)[-1]
                    fields = doc["components"]["schemas"].get(ref, {}).get("properties", {})
                    base = BASE_BODY.get(op.get("operationId"), {})
                    for field, schema in fields.items():
                        if _takes_int(schema, doc):
                            many = schema.get("type") == "array" or "array" in str(schema.get("anyOf", ""))
                            cases += [({}, {}, {**base, field: [v] if many else v}) for v in BIG_INTS]
                    if "datasets" in fields:
                        cases += [({}, {}, {**base, "datasets": [name]}) for name in BAD_STRINGS]
                for values, query, json_body in cases:
                    concrete = path
                    for key, sample in SAMPLE_PATH.items():
                        concrete = concrete.replace("{" + key + "}", quote(values.get(key, sample), safe=""))
                    kwargs = {"params": query} if query else {}
                    if json_body is not None:
                        kwargs["json"] = json_body
                    elif method == "post":
                        kwargs["json"] = BASE_BODY.get(op.get("operationId"), {})
                    answer = client.request(method.upper(), concrete, **kwargs)
                    sent += 1
                    if answer.status_code >= 500:
                        failures.append(f"Server error: {method.upper()} {concrete} {query or ''} {json_body or ''} -> "
                                        f"{answer.status_code} {answer.text[:200]}")
        for name in BAD_STRINGS:  # the upload form's dataset name (stripped by the route: keep it inside)
            answer = client.post("/api/datasets", files={"file": ("a.csv", b"text\nhi\n")},
                                 data={"name": f"new{name}x"})
            sent += 1
            if answer.status_code >= 500:
                failures.append(f"Server error: POST /api/datasets name={name!r} -> {answer.status_code}")
    print(f"hostile sweep: {sent} requests, {len(failures)} answered 5xx", flush=True)
    return failures


def fuzz(url: str, extra: list[str], max_examples: int, checks: str, report: Path) -> tuple[int, str]:
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{url}/openapi.json",
               "--checks", checks, "--max-examples", str(max_examples), "--seed", "1",
               "--phases", "examples,coverage,fuzzing", "--request-timeout", "60", "--no-shrink",
               "--workers", "1", "--report", "junit", "--report-junit-path", str(report), *extra]
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=30)
    parser.add_argument("--checks", default="not_a_server_error")
    parser.add_argument("--keep", type=Path, help="directory for the junit reports (default: a temp dir)")
    parser.add_argument("--small", action="store_true", help="seed the 37-record test fixture (a quicker run)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = DEFAULT_HUMANLOOP_PATH if DEFAULT_HUMANLOOP_PATH.exists() and not args.small else FALLBACK
    with tempfile.TemporaryDirectory(prefix="dd-schemathesis-") as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        settings = Settings(home=Path(tmp) / "home", fake_embeddings=True, store_backend="edge")
        url, server, thread = start(settings)
        print(f"service on {url}; data {data}", flush=True)
        started = time.perf_counter()
        seed(url, data)
        swept = hostile(url)
        for line in swept:
            print(line, flush=True)
        results = [("hostile sweep", 1 if swept else 0, "\n".join(swept))]
        for name, extra in (("all but DELETE", ["--exclude-method", "DELETE"]),
                            ("DELETE", ["--include-method", "DELETE"])):
            code, output = fuzz(url, extra, args.max_examples, args.checks, out / f"junit-{len(results)}.xml")
            print(output[-6000:], flush=True)
            results.append((name, code, output))
        server.should_exit = True
        thread.join(30)
    print(f"\n== schemathesis ({time.perf_counter() - started:.0f} s, checks: {args.checks})")
    failed = False
    for name, code, output in results:
        server_errors = len(re.findall(r"Server error", output))
        print(f"{name}: exit {code}, 'Server error' findings: {server_errors}")
        failed |= code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
