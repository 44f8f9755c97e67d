"""Time to first render of the dashboard's map in headless Chromium, for synthetic datasets of given sizes.

Starts the real service (embedded Qdrant in a temp dir) with N synthetic points carrying map fields, the
dashboard beside it, and loads the page R times per map backend (WebGL, canvas; chosen through the probe's
cookie). Prints, per size and backend, the median seconds from navigation to the map painted with all its
points; the first load of a size is also shown apart (it fetches /map from the API; later loads revalidate
it with the ETag). Each load starts once the dashboard is idle again (the previous page's deferred views
loaded and its session closed), as a new visitor's would: a reload fired while the last page's views are
still loading queues behind that work and measures the queue, not the render.

    .venv/bin/python scripts/bench_map.py --sizes 2327 100000 --repeats 3

With --home DIR the data home is kept and a size already written there is reused (writing a million points
takes 3-10 minutes; reading them back into the service's snapshot, done on every run, takes one or two).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file, not only as a module
from scripts.synthetic import VIEW_RANGE, add_synthetic, move_view, wait_idle, wait_painted  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def headless_chromium():
    """Headless Chromium on a new profile folder, as the browser tests start it: (browser, profile folder); the
    caller quits the browser and removes the folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    if shutil.which("chromium"):
        options.binary_location = shutil.which("chromium") or ""
    profile = tempfile.mkdtemp(prefix="dd-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1600,1000",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options), profile


def first_render(browser, url: str, n: int, backend: str, server_pid: int | None = None) -> float:
    """Seconds from navigation to the map painted; `backend` goes in the probe's cookie first (the probe on
    each page rewrites it with what it detects). `server_pid`: the servers' process when not this one."""
    from dashboard.graphics import COOKIE

    browser.add_cookie({"name": COOKIE, "value": backend, "path": "/"})
    browser.get("about:blank")  # closes the previous page's session, so it does not compete with this one
    wait_idle(pid=server_pid)
    browser.get(url)
    return wait_painted(browser, n)


def pan_and_zoom(browser) -> str:
    """Zoom into the middle half, pan by a quarter, zoom into a 2% window, and back to the whole map: what each
    move shows and the seconds until it is painted."""
    x0, x1, y0, y1 = browser.execute_script(VIEW_RANGE)
    w, h = x1 - x0, y1 - y0
    moves = {"zoom in": (x0 + w / 4, x1 - w / 4, y0 + h / 4, y1 - h / 4),
             "pan": (x0 + w / 2, x1, y0 + h / 4, y1 - h / 4),
             "zoom to 2%": (x0 + 0.49 * w, x0 + 0.51 * w, y0 + 0.49 * h, y0 + 0.51 * h),
             "zoom out": (x0, x1, y0, y1)}
    out = []
    for name, view in moves.items():
        wait_idle()
        shown, seconds = move_view(browser, *view)
        out.append(f"{name} {seconds:.2f} s ({shown})")
    return ", ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2327, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--home", type=Path, help="a data home to keep and reuse (default: a new temporary one)")
    args = parser.parse_args()

    import uvicorn

    from dashboard.app import serve_dashboard
    from dashboard.views.map_figure import GLYPH_LIMIT
    from embeddings.embedder import FakeEmbedder
    from service.api.app import create_app
    from service.settings import Settings

    home = args.home or Path(tempfile.mkdtemp(prefix="dd-bench-map-")) / "home"
    settings = Settings(home=home, fake_embeddings=True, store_backend="edge")
    app = create_app(settings, embedder=FakeEmbedder())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    api = f"http://127.0.0.1:{server.config.port}"
    for n in args.sizes:
        started = time.perf_counter()
        workspace = app.state.api.workspace
        written = "already written"
        if not workspace.catalog.exists(f"synthetic{n}"):
            add_synthetic(workspace, f"synthetic{n}", n)
            written = f"written in {time.perf_counter() - started:.1f} s"
        started = time.perf_counter()
        app.state.api.views.after_run(f"synthetic{n}", succeeded=True)  # what the service does after a run
        print(f"synthetic{n}: {n:,} points {written}, "
              f"read into the service's snapshot and encoded in {time.perf_counter() - started:.1f} s")
    dashboard = serve_dashboard(api, free_port(), warm=False)

    browser, profile = headless_chromium()
    try:
        # A page of the dashboard's origin that opens no session (a 404), for the cookie: the dashboard's own page
        # would load a map, and the first visit measured below would find it cached.
        browser.get(f"{dashboard.url}no-such-page")
        renderer = None
        for n in args.sizes:
            url = f"{dashboard.url}?dataset=synthetic{n}"
            for backend in ("webgl", "canvas"):
                cold = first_render(browser, url, n, backend) if backend == "webgl" else None
                runs = [first_render(browser, url, n, backend) for _ in range(args.repeats)]
                extra = f", first visit {cold:.2f} s" if cold is not None else ""
                print(f"{n:>9,} points  {backend:<6}  median {statistics.median(runs):.2f} s "
                      f"(min {min(runs):.2f}, max {max(runs):.2f}, {len(runs)} loads){extra}")
                if n > GLYPH_LIMIT:  # below it, pan and zoom happen in the browser alone
                    print(f"{'':>9}         {backend:<6}  " + pan_and_zoom(browser))
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
        if args.home is None:
            shutil.rmtree(home.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
