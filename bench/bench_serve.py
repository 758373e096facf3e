"""`pybokeh serve`: how long a click takes to come back as a preview, over real HTTP on localhost.

The app runs under uvicorn on 127.0.0.1 in this process; a keep-alive HTTP client
posts what the page posts on a click (the clicked pixel and the lens settings) and
reads the whole JPEG, alternating between two far-apart focus points.  Two modes:
``adaptive`` is the default server (the proxy steps down from 1 MP when previews
take over 200 ms on the server; measured after 4 warm-up clicks, so it has
settled), ``fixed-1mp`` always renders the 1 MP proxy.  Measured:
the round trip (wall), plus in ``extra_info`` the server's own render time
(``X-Render-Ms``), the CPU seconds the process spent per click, the proxy size and
the load average before the run (the machine is shared; wall times follow the load).

    pytest bench/bench_serve.py --benchmark-only --benchmark-json=bench-serve.json

Photos: a synthetic 12 MP frame (bench_render.frame: texture, 2000 clipped lights, a
ground plane, a subject, a foreground object) sent with its disparity as the user's
own map, and the real 12 MP iPhone Portrait HEIC from ../shared/data/phone with its
embedded depth (skipped when that folder is absent).
"""
from __future__ import annotations

import http.client
import io
import json
import os
import pathlib
import statistics
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("uvicorn", reason="the web extra is not installed")

from pybokeh.serve import bind, server  # noqa: E402
from pybokeh.serve.preview import DEFAULT_PREVIEW_TARGET_S  # noqa: E402

from bench_render import frame  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
HEIC = "phone/pillowheif_pug.heic"


def _shared(name: str) -> pathlib.Path | None:
    for base in (REPO.parent, REPO.parent.parent):
        path = base / "shared" / "data" / name
        if path.is_file():
            return path
    return None


@pytest.fixture(scope="module")
def servers():
    """Address of a running app per preview mode, started on first use."""
    running: dict[str, tuple] = {}

    def address(mode: str):
        if mode not in running:
            sock = bind("127.0.0.1", 0)
            srv = server(sock, preview_target_s=None if mode == "fixed-1mp" else DEFAULT_PREVIEW_TARGET_S)
            thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
            thread.start()
            while not srv.started:
                time.sleep(0.05)
            running[mode] = (srv, thread, sock)
        return running[mode][2].getsockname()[:2]

    yield address
    for srv, thread, sock in running.values():
        srv.should_exit = True
        thread.join(timeout=20)
        sock.close()


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, content_type: str, name: str = ""):
    conn.request("POST", path, body=body, headers={"Content-Type": content_type, "X-Filename": name})
    response = conn.getresponse()
    data = response.read()
    assert response.status == 200, data[:300]
    return response, data


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _open_synthetic(conn) -> tuple[dict, list[tuple[int, int]]]:
    image, disparity = frame()
    _, data = _post(conn, "/api/photos", _png(image), "application/octet-stream", "frame.png")
    sid = json.loads(data)["id"]
    depth = np.round(disparity * 65535).astype(np.uint16)
    _, data = _post(conn, f"/api/photos/{sid}/depth", _png(depth), "application/octet-stream", "frame-depth.png")
    return json.loads(data), [(2000, 1800), (3500, 400)]  # the subject, the far ground


def _open_heic(conn) -> tuple[dict, list[tuple[int, int]]]:
    path = _shared(HEIC)
    if path is None:
        pytest.skip(f"../shared/data/{HEIC} is not present")
    _, data = _post(conn, "/api/photos", path.read_bytes(), "application/octet-stream", path.name)
    described = json.loads(data)
    return described, [(described["focus"]["x"], described["focus"]["y"]), (3600, 400)]  # the pug, the wall


@pytest.mark.parametrize("mode", ["adaptive", "fixed-1mp"])
@pytest.mark.parametrize("photo", ["synthetic-12mp", "iphone-heic-12mp"])
def test_click_to_preview(benchmark, servers, photo, mode):
    conn = http.client.HTTPConnection(*servers(mode), timeout=120)
    described, points = (_open_synthetic if photo == "synthetic-12mp" else _open_heic)(conn)
    sid = described["id"]
    settings = {"f_number": 1.8, "blades": 6, "rotation_deg": 0, "highlight_boost": 4,
                "focus_range": described["focus"]["focus_range"]}
    clicks = {"n": 0}
    render_ms, cpu_s = [], []

    def click():
        x, y = points[clicks["n"] % len(points)]
        clicks["n"] += 1
        cpu = time.process_time()
        response, data = _post(conn, f"/api/photos/{sid}/preview",
                               json.dumps({"x": x, "y": y, **settings}).encode(), "application/json")
        cpu_s.append(time.process_time() - cpu)
        render_ms.append(float(response.getheader("X-Render-Ms")))
        return data

    for _ in range(4):  # warm up: first-call costs, and the adaptive proxy settles on its level
        click()
    render_ms.clear()
    cpu_s.clear()
    load = os.getloadavg()[0]
    benchmark.group = f"pybokeh serve: click to preview, {mode} proxy (round trip on localhost)"
    data = benchmark.pedantic(click, rounds=10, iterations=1)
    preview = Image.open(io.BytesIO(data))
    assert preview.width * preview.height <= 1_000_000
    benchmark.extra_info.update(mode=mode,
        photo=f"{described['width']}x{described['height']}", proxy=f"{preview.width}x{preview.height}",
        server_render_ms_median=statistics.median(render_ms), process_cpu_s_per_click_median=statistics.median(cpu_s),
        load_average_1min_before=round(load, 2), cpus=os.cpu_count())
    conn.close()
