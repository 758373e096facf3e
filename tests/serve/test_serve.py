"""`pybokeh serve`: the API through Starlette's test client, the safety limits, and the subcommand."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
import urllib.request
import zlib

import numpy as np
import pytest
from PIL import Image

from _serve_scene import BACKGROUND_XY, HEIGHT, SUBJECT, SUBJECT_XY, WIDTH, gradient_energy, need, \
    photo_with_depth, scene

need("starlette", 'the web extra is not installed (pip install "pybokeh[web]")')
need("uvicorn", 'the web extra is not installed (pip install "pybokeh[web]")')
need("httpx", "starlette's test client needs httpx (the test extra)")
from starlette.testclient import TestClient  # noqa: E402

import pybokeh  # noqa: E402
from pybokeh.serve import create_app  # noqa: E402

OCTET = {"Content-Type": "application/octet-stream"}


def client(tmp_path, **options) -> TestClient:
    options.setdefault("temp_dir", tmp_path)
    return TestClient(create_app(**options), base_url="http://127.0.0.1")


def upload(c: TestClient, data: bytes, name: str = "scene.jpg"):
    return c.post("/api/photos", content=data, headers={**OCTET, "X-Filename": name})


def finished(c: TestClient, job: str) -> dict:
    """The status of a download job once it is done (30 s at most; an error fails)."""
    for _ in range(600):
        status = c.get(f"/api/jobs/{job}").json()
        if status["state"] in ("done", "error"):
            break
        time.sleep(0.05)
    assert status["state"] == "done", status
    return status


def decode(response) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))


@pytest.fixture(scope="module")
def scene_jpeg() -> bytes:
    return photo_with_depth()


def test_page_and_its_files_are_served_with_security_headers(tmp_path):
    c = client(tmp_path)
    page = c.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for needed in ('id="photo-file"', 'id="view"', 'id="depth-view"', 'id="depth-file"', 'id="download"',
                   'id="f-number"', 'id="blades"', 'id="rotation"', 'id="highlights"', 'id="focus-range"'):
        assert needed in page.text, needed
    assert c.get("/static/app.js").status_code == 200
    assert c.get("/static/style.css").status_code == 200
    assert c.get("/static/../app.py").status_code == 404  # no way out of the static folder


def test_embedded_depth_is_used_and_the_subject_found(tmp_path, scene_jpeg):
    c = client(tmp_path)
    r = upload(c, scene_jpeg)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (WIDTH, HEIGHT)
    assert body["depth"]["source"] == "embedded" and "Google depth" in body["depth"]["text"]
    assert body["focus"]["value"] > 0.9  # the subject's plane (its pixel may sit a little outside the box)
    x0, y0, x1, y1 = SUBJECT
    assert x0 <= body["focus"]["x"] < x1 and y0 - 40 <= body["focus"]["y"] < y1
    assert list(tmp_path.iterdir()) == []  # the upload's temporary file is gone


def test_preview_answers_a_click_with_the_clicked_plane_sharp(tmp_path, scene_jpeg):
    c = client(tmp_path, proxy_pixels=100_000)
    sid = upload(c, scene_jpeg).json()["id"]
    on_subject = c.post(f"/api/photos/{sid}/preview", json={"x": SUBJECT_XY[0], "y": SUBJECT_XY[1]})
    on_background = c.post(f"/api/photos/{sid}/preview", json={"x": BACKGROUND_XY[0], "y": BACKGROUND_XY[1]})
    for r in (on_subject, on_background):
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert float(r.headers["x-render-ms"]) >= 0
    a, b = decode(on_subject), decode(on_background)
    for image, response in ((a, on_subject), (b, on_background)):
        assert image.shape[0] * image.shape[1] <= 100_000
        assert abs(image.shape[1] / image.shape[0] - WIDTH / HEIGHT) < 0.02
        assert response.headers["x-preview-size"] == f"{image.shape[1]}x{image.shape[0]}"

    def at(image, xy):  # the proxy's pixel for a photo pixel (the proxy may have stepped down in between)
        s = image.shape[1] / WIDTH
        return int(xy[0] * s), int(xy[1] * s)

    assert gradient_energy(a, at(a, SUBJECT_XY), 15) > 3 * gradient_energy(a, at(a, BACKGROUND_XY), 15)
    assert gradient_energy(b, at(b, BACKGROUND_XY), 15) > 3 * gradient_energy(b, at(b, SUBJECT_XY), 15)
    assert float(on_subject.headers["x-focus"]) == pytest.approx(1.0)
    assert float(on_background.headers["x-focus"]) == pytest.approx(0.0)


def test_slow_previews_step_down_to_smaller_proxies(tmp_path, scene_jpeg):
    c = client(tmp_path, preview_target_s=1e-9)  # every preview is "too slow"
    sid = upload(c, scene_jpeg).json()["id"]
    sizes = []
    for _ in range(4):
        r = c.post(f"/api/photos/{sid}/preview", json={"x": SUBJECT_XY[0], "y": SUBJECT_XY[1]})
        w, h = (int(v) for v in r.headers["x-preview-size"].split("x"))
        assert decode(r).shape[:2] == (h, w)
        sizes.append(w * h)
    assert sizes[0] == WIDTH * HEIGHT  # a 0.26 MP photo starts as its own proxy
    assert sizes[1] == pytest.approx(sizes[0] / 2, rel=0.02) and sizes[2] == pytest.approx(sizes[0] / 4, rel=0.02)
    assert sizes[3] == sizes[2]  # the smallest level is the floor
    fixed = client(tmp_path, preview_target_s=None)
    sid = upload(fixed, scene_jpeg).json()["id"]
    for _ in range(2):
        r = fixed.post(f"/api/photos/{sid}/preview", json={"x": 1, "y": 1})
        assert r.headers["x-preview-size"] == f"{WIDTH}x{HEIGHT}"


def test_photo_proxy_and_depth_view(tmp_path, scene_jpeg):
    c = client(tmp_path, proxy_pixels=60_000)
    sid = upload(c, scene_jpeg).json()["id"]
    photo = decode(c.get(f"/api/photos/{sid}/photo.jpg"))
    depth = np.asarray(Image.open(io.BytesIO(c.get(f"/api/photos/{sid}/depth.png").content)))
    assert photo.shape[:2] == depth.shape and depth.shape[0] * depth.shape[1] <= 60_000
    s = depth.shape[1] / WIDTH
    assert depth[int(SUBJECT_XY[1] * s), int(SUBJECT_XY[0] * s)] == 255  # nearer = brighter
    assert depth[int(BACKGROUND_XY[1] * s), int(BACKGROUND_XY[0] * s)] == 0


def test_download_is_the_full_resolution_render_of_the_same_settings(tmp_path, scene_jpeg):
    c = client(tmp_path)
    sid = upload(c, scene_jpeg, "../../etc/My Photo.jpg").json()["id"]
    settings = {"x": SUBJECT_XY[0], "y": SUBJECT_XY[1], "f_number": 2.8, "blades": 5, "rotation_deg": 20,
                "highlight_boost": 8, "focus_range": 0.1}
    r = c.post(f"/api/photos/{sid}/render", json={**settings, "format": "png"})
    assert r.status_code == 200, r.text
    job = r.json()["job"]
    status = finished(c, job)
    assert status["expected_s"] > 0 and status["pixels"] == WIDTH * HEIGHT
    got = c.get(f"/api/jobs/{job}/download")
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"] == 'attachment; filename="My_Photo-bokeh.png"'
    shot = pybokeh.read_photo_with_depth(_write(tmp_path / "check.jpg", photo_with_depth()))
    expected = pybokeh.render(shot.image, shot.disparity(), 1.0, f_number=2.8, blades=5, rotation_deg=20,
                              highlight_boost=8, focus_range=0.1)
    np.testing.assert_array_equal(decode(got), expected)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_a_bad_file_gets_one_line_naming_it_and_leaves_no_file(tmp_path):
    c = client(tmp_path)
    r = upload(c, b"these are not the pixels you are looking for", "holiday.jpg")
    assert r.status_code == 400
    message = r.json()["error"]
    assert "holiday.jpg" in message and "\n" not in message and str(tmp_path) not in message
    truncated = photo_with_depth()[:2000]
    r = upload(c, truncated, "cut.jpg")
    assert r.status_code == 400 and "cut.jpg" in r.json()["error"]
    assert list(tmp_path.iterdir()) == []


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width``×``height`` grey pixels, followed by one tiny compressed row."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    c = client(tmp_path, max_pixels=5_000_000)
    start = time.perf_counter()
    messages = []
    for side in (3_000, 30_000):  # 9 MP and 900 MP in about 100 bytes
        r = upload(c, _png_header_only(side, side), "bomb.png")
        assert r.status_code == 400
        messages.append(r.json()["error"])
        assert "'bomb.png'" in messages[-1] and "over the limit of 5,000,000" in messages[-1]
    assert "3000×3000 (9,000,000 pixels)" in messages[0]
    assert time.perf_counter() - start < 5  # nothing was decoded
    assert list(tmp_path.iterdir()) == []


def test_uploads_over_the_size_limit_are_cut_off(tmp_path, scene_jpeg):
    c = client(tmp_path, max_upload_bytes=len(scene_jpeg) - 1)
    r = upload(c, scene_jpeg)
    assert r.status_code == 413 and "upload limit" in r.json()["error"]

    def chunks():  # no Content-Length: the limit applies while the body streams
        for i in range(0, len(scene_jpeg), 4096):
            yield scene_jpeg[i:i + 4096]

    r = c.post("/api/photos", content=chunks(), headers=OCTET)
    assert r.status_code == 413
    assert list(tmp_path.iterdir()) == []
    assert upload(client(tmp_path, max_upload_bytes=len(scene_jpeg)), scene_jpeg).status_code == 200


def test_only_loopback_host_names_are_answered(tmp_path):
    c = client(tmp_path)
    assert c.get("/", headers={"Host": "localhost:8000"}).status_code == 200
    assert c.get("/", headers={"Host": "[::1]:8000"}).status_code == 200
    r = c.get("/", headers={"Host": "attacker.example"})  # a rebound domain name
    assert r.status_code == 400 and "answers only to" in r.json()["error"]
    open_to_all = TestClient(create_app(trusted_hosts=None), base_url="http://attacker.example")
    assert open_to_all.get("/").status_code == 200


def test_state_changing_requests_need_non_simple_body_types(tmp_path, scene_jpeg):
    # A form or a text/plain fetch from another site's page needs no CORS preflight; these types do.
    c = client(tmp_path)
    r = c.post("/api/photos", content=scene_jpeg, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    sid = upload(c, scene_jpeg).json()["id"]
    r = c.post(f"/api/photos/{sid}/preview", content=b'{"x": 1, "y": 1}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    r = c.post(f"/api/photos/{sid}/preview", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    r = c.post(f"/api/photos/{sid}/preview", json={"x": WIDTH, "y": 0})
    assert r.status_code == 400 and r.json()["error"].startswith("x must lie in")


def test_a_photo_without_depth_and_without_an_estimator_takes_a_depth_map(tmp_path, monkeypatch):
    import pybokeh.depth

    def missing(*args, **kwargs):
        raise ImportError('the packaged depth model needs PyTorch: pip install "pybokeh[depth]"')

    monkeypatch.setattr(pybokeh.depth, "estimate_depth", missing)
    photo, disparity = scene()
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="PNG")
    c = client(tmp_path)
    body = upload(c, buf.getvalue(), "plain.png").json()
    assert body["depth"]["source"] == "none" and 'pip install "pybokeh[depth]"' in body["depth"]["text"]
    assert body["focus"] is None
    sid = body["id"]
    r = c.post(f"/api/photos/{sid}/preview", json={"x": 1, "y": 1})
    assert r.status_code == 409 and "load a depth map" in r.json()["error"]
    # The user's map, as depth (brighter = farther) in a .npy file at half size.
    depth = np.where(disparity[::2, ::2] > 100, 1.5, 6.0).astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, depth)
    r = c.post(f"/api/photos/{sid}/depth?kind=depth", content=buf.getvalue(), headers={**OCTET, "X-Filename": "d.npy"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["depth"]["source"] == "uploaded" and "d.npy" in body["depth"]["text"]
    assert body["focus"]["value"] > 0.9
    r = c.post(f"/api/photos/{sid}/preview", json={"x": SUBJECT_XY[0], "y": SUBJECT_XY[1]})
    assert r.status_code == 200 and float(r.headers["x-focus"]) == pytest.approx(1.0)
    # A map of the wrong shape is refused with the reason.
    wrong = io.BytesIO()
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(wrong, format="PNG")
    r = c.post(f"/api/photos/{sid}/depth", content=wrong.getvalue(), headers={**OCTET, "X-Filename": "sq.png"})
    assert r.status_code == 400 and "aspect ratio" in r.json()["error"]
    r = c.post(f"/api/photos/{sid}/depth?kind=metres", content=wrong.getvalue(), headers=OCTET)
    assert r.status_code == 400
    assert list(tmp_path.iterdir()) == []


def test_the_estimator_runs_when_the_photo_has_no_depth(tmp_path):
    pytest.importorskip("torch", reason="the packaged estimator needs the depth extra")
    photo, _ = scene()
    buf = io.BytesIO()
    Image.fromarray(photo[:200, :320]).save(buf, format="JPEG")
    body = upload(client(tmp_path), buf.getvalue(), "plain.jpg").json()
    assert body["depth"]["source"] == "estimated"
    assert "packaged Pix2Pix" in body["depth"]["text"] and "often wrong" in body["depth"]["text"]
    assert body["focus"] is not None


def test_photos_are_forgotten_when_closed_or_crowded_out(tmp_path, scene_jpeg):
    c = client(tmp_path, max_sessions=1)
    first = upload(c, scene_jpeg).json()["id"]
    second = upload(c, scene_jpeg).json()["id"]
    r = c.post(f"/api/photos/{first}/preview", json={"x": 1, "y": 1})
    assert r.status_code == 404 and "open it again" in r.json()["error"]
    assert c.delete(f"/api/photos/{second}").json() == {"closed": True}
    assert c.get(f"/api/photos/{second}/photo.jpg").status_code == 404
    assert c.get("/api/jobs/nope").status_code == 404


def test_create_app_checks_its_limits():
    with pytest.raises(ValueError, match="max_upload_bytes"):
        create_app(max_upload_bytes=0)
    with pytest.raises(ValueError, match="max_sessions"):
        create_app(max_sessions=0)
    with pytest.raises(ValueError, match="threads"):
        create_app(threads=0)
    with pytest.raises(ValueError, match="neither 'pix2pix'"):
        create_app(depth_model="no-such-model")
    with pytest.raises(ValueError, match="backend"):
        create_app(backend="no-such-backend")
    if "cuda" not in pybokeh.backends():
        with pytest.raises(pybokeh.BackendUnavailableError):
            create_app(backend="cuda")


def test_missing_web_extra_is_named(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(ImportError, match=r'pip install "pybokeh\[web\]"'):
        create_app()
    from pybokeh.cli import main

    assert main(["serve", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err == 'pybokeh serve: error: pybokeh serve needs uvicorn: install the web extra, pip install "pybokeh[web]"\n'


def test_serve_subcommand_binds_localhost_and_serves_the_page(tmp_path):
    from pybokeh.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pybokeh.cli", "serve", "--port", "0"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        match = re.search(r"open (http://127\.0\.0\.1:(\d+)/)", line)
        assert match, line
        with urllib.request.urlopen(match.group(1), timeout=20) as page:
            assert page.status == 200 and b'id="photo-file"' in page.read()
        # The address in use: one line, exit status 1.
        busy = subprocess.run([sys.executable, "-m", "pybokeh.cli", "serve", "--port", match.group(2)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert busy.returncode == 1
        assert busy.stderr.startswith("pybokeh serve: error: cannot listen on 127.0.0.1:")
        assert busy.stderr.count("\n") == 1
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_download_keeps_the_photos_exif_and_colour_profile(tmp_path):
    """Like `pybokeh render`: camera EXIF and the ICC profile carried, orientation 1 (the
    pixels come out upright), the pixel size of the render."""
    from PIL import ImageCms

    photo, disparity = scene()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "PyBokehCam", "Model 7", 6  # make, model, orientation
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "JPEG", quality=95, exif=exif, icc_profile=icc)
    c = client(tmp_path)
    sid = upload(c, buf.getvalue(), "cam.jpg").json()["id"]
    depth = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(np.rot90(disparity, -1))).save(depth, "PNG")  # the displayed (turned) frame
    r = c.post(f"/api/photos/{sid}/depth", content=depth.getvalue(), headers={**OCTET, "X-Filename": "d.png"})
    assert r.status_code == 200, r.text
    r = c.post(f"/api/photos/{sid}/render", json={"x": 10, "y": 10, "format": "jpeg"})
    assert r.status_code == 200, r.text
    job = r.json()["job"]
    status = finished(c, job)
    out = Image.open(io.BytesIO(c.get(f"/api/jobs/{job}/download").content))
    assert out.size == (HEIGHT, WIDTH)  # displayed upright: the photo turned by its orientation 6
    got = out.getexif()
    assert got[0x010F] == "PyBokehCam" and got[0x0110] == "Model 7" and got.get(0x0112, 1) == 1
    assert out.info.get("icc_profile") == icc


def test_previews_and_downloads_blur_in_the_linear_light_of_the_photos_profile(tmp_path):
    """As `pybokeh render` does (tests/io/test_fidelity.py): a 1-px black/white checkerboard far
    out of focus averages to half the light, code 0.5 ** (1 / 1.8) = 0.680 under a gamma-1.8
    profile, where sRGB's curve would give 0.735."""
    from _batch_files import gamma_curve, icc_profile

    from pybokeh.serve.preview import F_NUMBER_RANGE

    h, w = 160, 160
    checker = ((np.indices((h, w)).sum(0) % 2) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.repeat(checker[..., None], 3, axis=2)).save(buf, "PNG", icc_profile=icc_profile(gamma_curve(1.8)))
    c = client(tmp_path)
    sid = upload(c, buf.getvalue(), "gamma.png").json()["id"]
    disparity = np.zeros((h, w), np.uint8)
    disparity[:, :12] = 255                      # a near strip to focus on; the rest far behind
    depth = io.BytesIO()
    Image.fromarray(disparity).save(depth, "PNG")
    r = c.post(f"/api/photos/{sid}/depth", content=depth.getvalue(), headers={**OCTET, "X-Filename": "d.png"})
    assert r.status_code == 200, r.text
    settings = {"x": 4, "y": 80, "f_number": F_NUMBER_RANGE[0], "highlight_boost": 0}
    middle = (slice(60, 100), slice(80, 120))
    preview = c.post(f"/api/photos/{sid}/preview", json=settings)
    assert preview.status_code == 200, preview.text
    r = c.post(f"/api/photos/{sid}/render", json={**settings, "format": "png"})
    assert r.status_code == 200, r.text
    job = r.json()["job"]
    finished(c, job)
    full = np.asarray(Image.open(io.BytesIO(c.get(f"/api/jobs/{job}/download").content)).convert("RGB"))
    for got in (decode(preview), full):
        assert abs(got[middle].mean() / 255 - 0.5 ** (1 / 1.8)) < 0.015, got[middle].mean() / 255
    np.testing.assert_array_equal(full[:, :4, 0], checker[:, :4])  # in focus: unchanged through the curve


def test_a_malformed_colour_profile_is_named_on_the_page_and_the_photo_still_renders(tmp_path):
    from _batch_files import gamma_curve, icc_profile

    photo, disparity = scene()
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG", icc_profile=icc_profile(gamma_curve(1.8))[:-4])  # curve past the end
    c = client(tmp_path)
    r = upload(c, buf.getvalue(), "broken.png")
    assert r.status_code == 200, r.text
    assert "colour profile is unreadable" in r.json()["depth"]["text"] and "sRGB curve" in r.json()["depth"]["text"]
    depth = io.BytesIO()
    Image.fromarray(disparity).save(depth, "PNG")
    sid = r.json()["id"]
    assert c.post(f"/api/photos/{sid}/depth", content=depth.getvalue(),
                  headers={**OCTET, "X-Filename": "d.png"}).status_code == 200
    assert c.post(f"/api/photos/{sid}/preview", json={"x": 10, "y": 10}).status_code == 200
