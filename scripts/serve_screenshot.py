"""Screenshot of the `pybokeh serve` page with a photo open (the README's picture).

    python scripts/serve_screenshot.py PHOTO [--depth MAP] [--click X,Y] [--blades 6] -o docs/images/serve_page.jpg

Starts the app on a free localhost port, drives Debian's Chromium through
Playwright (no browser download), opens PHOTO (and MAP as "my own depth map"),
clicks photo pixel X,Y, and saves the page as a JPEG (or PNG) at --width pixels.
"""
from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import threading
import time

TESTS = pathlib.Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS / "serve"), str(TESTS)]  # the browser test and the photo files it builds on
from test_serve_browser import CHROMIUM_ARGS, _wait  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photo")
    ap.add_argument("--depth", help="a depth map to load as the user's own (disparity, brighter = nearer)")
    ap.add_argument("--click", help="photo pixel X,Y to click (default: the automatic subject focus)")
    ap.add_argument("--blades", type=int, default=0, help="aperture blades slider (0 = round)")
    ap.add_argument("--width", type=int, default=1100, help="width of the saved picture (px)")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    from PIL import Image
    from playwright.sync_api import sync_playwright

    from pybokeh.serve import bind, server

    sock = bind("127.0.0.1", 0)
    srv = server(sock)
    threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.set_input_files("#photo-file", args.photo)
        _wait(page, "() => Number(document.body.dataset.previews || 0) >= 1")
        count = 1
        if args.depth:
            page.set_input_files("#depth-file", args.depth)
            count += 1
            _wait(page, f"() => Number(document.body.dataset.previews || 0) >= {count}")
        if args.blades:
            page.locator("#blades").fill(str(args.blades))
            count += 1
            _wait(page, f"() => Number(document.body.dataset.previews || 0) >= {count}")
        if args.click:
            x, y = (float(v) for v in args.click.split(","))
            info = page.evaluate("() => [document.getElementById('view').getBoundingClientRect().toJSON()]")[0]
            size = page.text_content("#photo-name").rsplit(" ", 1)[-1]
            w, h = (int(v) for v in size.split("×"))
            page.mouse.click(info["x"] + (x + 0.5) / w * info["width"], info["y"] + (y + 0.5) / h * info["height"])
            count += 1
            _wait(page, f"() => Number(document.body.dataset.previews || 0) >= {count}")
        page.wait_for_timeout(300)
        tmp = pathlib.Path(args.output).with_suffix(".tmp.png")
        page.screenshot(path=str(tmp))
        browser.close()
    srv.should_exit = True
    shot = Image.open(tmp).convert("RGB")
    shot = shot.resize((args.width, round(shot.height * args.width / shot.width)), Image.LANCZOS)
    if args.output.lower().endswith((".jpg", ".jpeg")):
        shot.save(args.output, quality=85, optimize=True)
    else:
        shot.save(args.output, optimize=True)
    tmp.unlink()
    print(f"wrote {args.output} ({shot.width}×{shot.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
