"""Time to first render of the dashboard's map in headless Chromium, for synthetic datasets of given sizes.

Starts the real service (embedded Qdrant in a temp dir) with N synthetic points carrying map fields, the
dashboard beside it, and loads the page R times per map backend (WebGL, canvas; chosen through the probe's
cookie). Prints, per size and backend, the median seconds from navigation to the map painted with all its
points; the first load of a size is also shown apart (it fetches /map from the API; later loads revalidate
it with the ETag). Each load starts once the dashboard is idle again (the previous page's deferred views
loaded and its session closed), as a new visitor's would: a reload fired while the last page's views are
still loading queues behind that work and measures the queue, not the render.

    .venv/bin/python scripts/bench_map.py --sizes 2327 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

PAINTED = """
const docs = (window.Bokeh && Bokeh.documents) || [];
for (const doc of docs) {
  const fig = doc.get_model_by_name('data-map');
  if (!fig) continue;
  const view = Bokeh.index.find_one(fig);
  const n = doc.get_model_by_name('map-source').get_length();
  return [n, !!(view && view.has_finished()), performance.now()];
}
return null;
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def add_synthetic(ws, name: str, n: int, seed: int = 0) -> None:
    """n points in 40 blobs, 10% mispredicted, 1 in 13 unlabelled, written straight to the store."""
    rng = np.random.default_rng(seed)
    labels = [f"intent_{i:02d}" for i in range(40)]
    centres = rng.normal(0, 8, (len(labels), 2))
    collection = ws.catalog.create(name, 4, "synthetic", "synthetic")
    for start in range(0, n, 10_000):
        ids = list(range(start, min(n, start + 10_000)))
        which = rng.integers(0, len(labels), len(ids))
        xy = centres[which] + rng.normal(0, 1.2, (len(ids), 2))
        predicted = np.where(rng.random(len(ids)) < 0.1, rng.integers(0, len(labels), len(ids)), which)
        payloads = [{
            "record_id": pid, "text": f"synthetic request {pid} about {labels[which[j]]}", "split": "training",
            "label": None if pid % 13 == 0 else labels[which[j]], "prediction": labels[predicted[j]],
            "confidence": float(rng.uniform(0.3, 1)), "entropy": float(rng.uniform(0, 2)),
            "prediction_status": "unlabelled" if pid % 13 == 0 else
            ("correct" if predicted[j] == which[j] else "incorrect"),
            "cluster": int(which[j]), "triage": "agree", "mislabel_score": float(rng.random()),
            "x": float(xy[j, 0]), "y": float(xy[j, 1]),
        } for j, pid in enumerate(ids)]
        collection.upsert(ids, rng.standard_normal((len(ids), 4)).astype(np.float32), payloads)
    collection.flush()


def wait_idle(quiet_share: float = 0.1, window: float = 0.3, limit: float = 60.0) -> None:
    """Until this process (API and dashboard servers) uses under `quiet_share` of a core over `window` s."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        cpu = time.process_time()
        time.sleep(window)
        if time.process_time() - cpu < quiet_share * window:
            return


def first_render(browser, url: str, n: int, backend: str) -> float:
    """Seconds from navigation to the map painted; `backend` goes in the probe's cookie first (the probe on
    each page rewrites it with what it detects)."""
    from dashboard.graphics import COOKIE

    browser.add_cookie({"name": COOKIE, "value": backend, "path": "/"})
    browser.get("about:blank")  # closes the previous page's session, so it does not compete with this one
    wait_idle()
    browser.get(url)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        state = browser.execute_script(PAINTED)
        if state and state[0] == n and state[1]:
            return state[2] / 1000
        time.sleep(0.02)
    raise TimeoutError(f"the map of {n} points did not render in 180 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2327, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    from dashboard.app import serve_dashboard
    from embeddings.embedder import FakeEmbedder
    from service.api.app import create_app
    from service.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="dd-bench-map-"))
    settings = Settings(home=home / "home", fake_embeddings=True, store_backend="edge")
    app = create_app(settings, embedder=FakeEmbedder())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    api = f"http://127.0.0.1:{server.config.port}"
    for n in args.sizes:
        started = time.perf_counter()
        add_synthetic(app.state.api.workspace, f"synthetic{n}", n)
        print(f"synthetic{n}: {n:,} points written in {time.perf_counter() - started:.1f} s")
    dashboard = serve_dashboard(api, free_port(), warm=False)

    options = Options()
    profile = tempfile.mkdtemp(prefix="dd-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1600,1000",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        browser.get(dashboard.url)
        renderer = None
        for n in args.sizes:
            url = f"{dashboard.url}?dataset=synthetic{n}"
            for backend in ("webgl", "canvas"):
                cold = first_render(browser, url, n, backend) if backend == "webgl" else None
                runs = [first_render(browser, url, n, backend) for _ in range(args.repeats)]
                extra = f", first visit {cold:.2f} s" if cold is not None else ""
                print(f"{n:>9,} points  {backend:<6}  median {statistics.median(runs):.2f} s "
                      f"(min {min(runs):.2f}, max {max(runs):.2f}, {len(runs)} loads){extra}")
            renderer = renderer or browser.execute_script(
                "const gl=document.createElement('canvas').getContext('webgl');"
                "const i=gl&&gl.getExtension('WEBGL_debug_renderer_info');"
                "return gl ? gl.getParameter(i ? i.UNMASKED_RENDERER_WEBGL : gl.RENDERER) : 'none'")
        print(f"browser WebGL renderer: {renderer}")
    finally:
        browser.quit()
        dashboard.stop()
        server.should_exit = True
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
