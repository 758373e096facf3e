"""`pybokeh serve` end to end in headless Chromium: open a photo, click to focus, drop files, download.

Drives Debian's Chromium (``/usr/bin/chromium``, or ``PYBOKEH_CHROMIUM``) through
Playwright; Playwright's own browser downloads are never used.  Without Chromium
or Playwright the tests skip on a developer's machine, with the reason, and fail
in CI (``CI`` set), where ``.ci/run`` installs Chromium.
"""
from __future__ import annotations

import base64
import io
import os
import shutil
import threading
import time

import numpy as np
import pytest
from PIL import Image

from _serve_scene import BACKGROUND_XY, HEIGHT, SUBJECT_XY, WIDTH, gradient_energy, photo_with_depth, unavailable

#: Flags Chromium needs on these machines: no sandbox as root, no GPU, and none of its background
#: connections (the network is closed; Playwright gives every launch a fresh profile directory).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000


def _chromium() -> str:
    chosen = os.environ.get("PYBOKEH_CHROMIUM")
    path = chosen or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not os.access(path, os.X_OK):
        unavailable(f"no Chromium at {chosen!r} (PYBOKEH_CHROMIUM)" if chosen else
                     "no Chromium on this machine (apt-get install chromium, or set PYBOKEH_CHROMIUM)")
    return path


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    try:
        from pybokeh.serve import bind, server
        import uvicorn  # noqa: F401
    except ImportError as exc:
        unavailable(f"the web extra is not installed: {exc}")
    sock = bind("127.0.0.1", 0)
    srv = server(sock, temp_dir=tmp_path_factory.mktemp("uploads"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(400):
        if srv.started:
            break
        time.sleep(0.05)
    assert srv.started, "the server did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    srv.should_exit = True
    thread.join(timeout=20)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install playwright; it drives Debian's "
                     "Chromium, no browser download)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(server_url)
    yield pg
    context.close()


def _wait(page, predicate: str) -> None:
    """Poll a JavaScript predicate (``page.wait_for_function`` uses eval, which the page's CSP forbids)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1e3
    while not page.evaluate(predicate):
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        page.wait_for_timeout(50)


def _wait_previews(page, count: int) -> None:
    _wait(page, f"() => Number(document.body.dataset.previews || 0) >= {count}")


def _shown(page) -> np.ndarray:
    """The picture the page shows, at its natural size, as RGB."""
    url = page.evaluate("""() => {
        const img = document.getElementById('view');
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        canvas.getContext('2d').drawImage(img, 0, 0);
        return canvas.toDataURL('image/png');
    }""")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def _click(page, xy: tuple[int, int]) -> None:
    """A real mouse click on photo pixel ``xy`` wherever the page laid the photo out."""
    box = page.locator("#view").bounding_box()
    page.mouse.click(box["x"] + (xy[0] + 0.5) / WIDTH * box["width"],
                     box["y"] + (xy[1] + 0.5) / HEIGHT * box["height"])


def _drop(page, data: bytes, name: str) -> None:
    """Drop a file on the photo area, as dragging one from the desktop does."""
    page.evaluate("""([b64, name]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, {type: 'image/jpeg'}));
        document.getElementById('stage').dispatchEvent(
            new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }""", [base64.b64encode(data).decode(), name])


def test_open_click_the_subject_and_it_becomes_sharp(page):
    page.set_input_files("#photo-file", files=[{"name": "scene.jpg", "mimeType": "image/jpeg",
                                                "buffer": photo_with_depth()}])
    _wait_previews(page, 1)  # the first preview: the automatic subject focus
    assert "embedded in the photo" in page.text_content("#depth-source")
    auto = _shown(page)
    assert auto.shape[:2] == (HEIGHT, WIDTH)  # a 0.26 MP photo is its own proxy

    _click(page, BACKGROUND_XY)
    _wait_previews(page, 2)
    on_background = _shown(page)
    _click(page, SUBJECT_XY)
    _wait_previews(page, 3)
    on_subject = _shown(page)

    assert np.abs(on_background.astype(int) - auto).mean() > 5  # the click changed the preview
    assert np.abs(on_subject.astype(int) - on_background).mean() > 5
    r = 40
    assert gradient_energy(on_subject, SUBJECT_XY, r) > 3 * gradient_energy(on_subject, BACKGROUND_XY, r)
    assert gradient_energy(on_background, BACKGROUND_XY, r) > 3 * gradient_energy(on_background, SUBJECT_XY, r)
    # The marker sits where the user clicked, and the page says how long the preview took.
    marker, view = page.locator("#marker").bounding_box(), page.locator("#view").bounding_box()
    centre_x = (marker["x"] + marker["width"] / 2 - view["x"]) / view["width"] * WIDTH
    assert abs(centre_x - SUBJECT_XY[0]) < 4
    assert "ms" in page.text_content("#timing")

    # The depth view: the subject is nearer, so brighter.
    page.check("#depth-view")
    _wait(page, "() => document.getElementById('view').complete")
    depth = _shown(page)[..., 0].astype(int)
    assert depth[SUBJECT_XY[1], SUBJECT_XY[0]] > depth[BACKGROUND_XY[1], BACKGROUND_XY[0]] + 100
    page.uncheck("#depth-view")

    # A slider re-renders the preview (f/1.8 -> f/8: far less blur on the background).
    page.locator("#f-number").fill("17")
    _wait_previews(page, 4)
    stopped_down = _shown(page)
    assert gradient_energy(stopped_down, BACKGROUND_XY, r) > 2 * gradient_energy(on_subject, BACKGROUND_XY, r)

    # Download: the full-resolution render, with the progress bar filled at the end.
    with page.expect_download() as download:
        page.click("#download")
    saved = Image.open(download.value.path())
    assert saved.size == (WIDTH, HEIGHT) and download.value.suggested_filename == "scene-bokeh.jpg"
    assert page.locator("#progress").evaluate("el => el.value") == 1
    assert page.locator("#error").is_hidden()


def test_a_dropped_bad_file_shows_one_error_and_a_dropped_photo_opens(page):
    _drop(page, b"\xff\xd8\xff\xe0 not really a JPEG", "broken.jpg")
    page.wait_for_selector("#error", state="visible")
    message = page.text_content("#error")
    assert "broken.jpg" in message and "\n" not in message.strip()
    assert page.locator("#error").count() == 1

    _drop(page, photo_with_depth(), "dropped.jpg")
    _wait_previews(page, 1)
    assert page.locator("#error").is_hidden()
    assert "dropped.jpg" in page.text_content("#photo-name")
