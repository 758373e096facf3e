"""The ASGI app behind ``pybokeh serve``: a page, and a small JSON/image API it calls.

API (all under ``/api``; errors are ``{"error": "one line"}`` with a 4xx/5xx status):

``POST /photos``                 body: the photo file (``application/octet-stream``; header
                                 ``X-Filename``: the browser's name for it, URL-encoded, only
                                 for messages) → the photo's id, sizes, depth source, subject focus
``POST /photos/{id}/depth``      body: a depth map file; ``?kind=disparity|depth`` → depth source, focus
``GET  /photos/{id}/photo.jpg``  the preview proxy, unblurred
``GET  /photos/{id}/depth.png``  the proxy's normalised disparity (brighter = nearer)
``POST /photos/{id}/preview``    JSON settings (:class:`~pybokeh.serve.preview.Settings`) → JPEG
                                 (headers: ``X-Render-Ms`` server time, ``X-Focus`` the focus as
                                 normalised disparity, ``X-Preview-Size`` the proxy's WxH)
``POST /photos/{id}/render``     JSON settings + ``format`` (jpeg, png) → ``{"job": id}``
``DELETE /photos/{id}``          forget the photo
``GET  /jobs/{id}``              the render's state, elapsed and expected seconds
``GET  /jobs/{id}/download``     the full-resolution render, as an attachment

Safety: the app answers only requests whose ``Host`` is one of ``trusted_hosts``
(on a loopback bind: ``localhost``, ``127.0.0.1``, ``::1``, so a web page that
rebinds its own domain name to 127.0.0.1 cannot reach it); state-changing
requests must carry a JSON or octet-stream body type, which no other site's page
can send to this origin without a CORS preflight that the app never grants; no
value from the client is used as a path; uploads are size-limited while they
stream, photos and depth maps pixel-limited from their header before decoding
(:mod:`pybokeh.io`), and their temporary files removed before the answer
(:mod:`.uploads`).
"""
from __future__ import annotations

import functools
import io as _bytes_io
import json
import pathlib
import time
import urllib.parse
from typing import Any, Callable

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import icc, io, phone
from ..io import ImageFileError
from ..metadata import ImageMetadata
from .preview import DEFAULT_PREVIEW_TARGET_S, F_NUMBER_RANGE, MAX_HIGHLIGHT_BOOST, PROXY_MAX_PIXELS, Pace, \
    Scene, Settings, normalised_disparity, to_uint8
from .sessions import DEFAULT_MAX_SESSIONS, Job, Session, Store
from .uploads import DEFAULT_MAX_UPLOAD_BYTES, UploadTooLarge, display_name, download_stem, private_folder, \
    read_as, spool

STATIC = pathlib.Path(__file__).resolve().parent / "static"
#: Host names a loopback server answers to.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Download formats: suffix, media type.
DOWNLOAD_FORMATS = {"jpeg": (".jpg", "image/jpeg"), "png": (".png", "image/png")}
PREVIEW_QUALITY = 90
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
                                 b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def api(handler: Callable) -> Callable:
    """Turn the errors a handler raises into one-line JSON answers."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            status, message = exc.status, str(exc)
        except UploadTooLarge as exc:
            status, message = 413, str(exc)
        except (ImageFileError, ValueError, TypeError) as exc:
            status, message = 400, one_line(exc)
        except ImportError as exc:  # an optional extra is missing; its message names it
            status, message = 400, one_line(exc)
        except MemoryError:
            status, message = 507, "not enough memory for this photo"
        except Exception as exc:  # anything else: still one line for the page, never a traceback
            status, message = 500, f"the server failed: {one_line(exc)}"
        return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})

    return wrapped


class Guard:
    """ASGI middleware: refuse untrusted ``Host`` headers, add security headers to every answer."""

    def __init__(self, app, trusted_hosts: tuple[str, ...] | None) -> None:
        self.app = app
        self.trusted = None if trusted_hosts is None else {h.lower() for h in trusted_hosts}

    @staticmethod
    def host_name(value: str) -> str:
        value = value.strip().lower()
        if value.startswith("["):  # [::1]:8000
            return value[1:value.find("]")] if "]" in value else value
        return value.rsplit(":", 1)[0] if value.count(":") == 1 else value

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.trusted is not None:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if self.host_name(host) not in self.trusted:
                response = JSONResponse({"error": f"this server answers only to {', '.join(sorted(self.trusted))}"},
                                        status_code=400)
                await response(scope, receive, send)
                return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + SECURITY_HEADERS}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _need_body_type(request: Request, media_type: str) -> None:
    got = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if got != media_type:
        raise ApiError(415, f"send the body as {media_type}")


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    buf = _bytes_io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _png(grey: np.ndarray) -> bytes:
    buf = _bytes_io.BytesIO()
    Image.fromarray(grey).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def create_app(*, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, max_pixels: int = io.DEFAULT_MAX_PIXELS,
               depth_model: str = "pix2pix", device: str | None = None, backend: str = "auto",
               threads: int | None = None, max_sessions: int = DEFAULT_MAX_SESSIONS,
               proxy_pixels: int = PROXY_MAX_PIXELS, preview_target_s: float | None = DEFAULT_PREVIEW_TARGET_S,
               trusted_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS,
               temp_dir: str | pathlib.Path | None = None) -> "Guard":
    """The web app (an ASGI application).

    Parameters
    ----------
    max_upload_bytes : int
        Largest photo or depth-map file accepted, in bytes (checked while it streams).
    max_pixels : int
        Largest photo or depth map, width × height, checked from the file's header before decoding.
    depth_model : str
        Estimator for photos without embedded depth (see :func:`pybokeh.estimate_depth`).
    device : str, optional
        Where the estimator runs (cpu, cuda; default: CUDA when available).
    backend, threads
        Renderer backend and CPU threads (see :func:`pybokeh.render`).
    max_sessions : int
        Photos kept open at once (each holds its full-resolution pixels in memory).
    proxy_pixels : int
        Largest preview proxy, in pixels (at most 1 MP by default).
    preview_target_s : float or None
        Server time a preview may take (render and encode) before the next one
        uses a proxy with half the pixels (:class:`~pybokeh.serve.preview.Pace`);
        None always uses the largest.
    trusted_hosts : tuple of str or None
        Host names the server answers to; None answers any (for a server bound to
        a network interface on purpose).
    temp_dir : path, optional
        Where uploads are spooled while they are read (default: the system's temporary folder).
    """
    for name, value in (("max_upload_bytes", max_upload_bytes), ("max_pixels", max_pixels),
                        ("proxy_pixels", proxy_pixels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    from ..renderer.dispatch import check_threads, get_backend

    if backend != "auto":
        get_backend(backend)  # an unavailable backend fails now, not on the first click
    if threads is not None:
        check_threads(threads)
    from ..estimators import resolve

    try:
        resolve(depth_model)  # a misspelt model fails now; a missing extra is said per photo, in the page
    except ImportError:
        pass
    store = Store(max_sessions)
    pace = Pace(preview_target_s)

    async def body_file(request: Request, folder: pathlib.Path) -> pathlib.Path:
        _need_body_type(request, "application/octet-stream")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_upload_bytes:
            raise UploadTooLarge(f"the file is over the upload limit of {max_upload_bytes / 2**20:g} MB")
        return await spool(request.stream(), folder, max_upload_bytes)

    def session(request: Request) -> Session:
        try:
            return store.get(request.path_params["sid"])
        except KeyError:
            raise ApiError(404, "this photo is no longer open on the server; open it again") from None

    async def settings(request: Request, sess: Session) -> tuple[Settings, dict]:
        _need_body_type(request, "application/json")
        try:
            data = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "the settings are not valid JSON") from None
        return Settings.parse(data, sess.scene.shape), data

    def estimate(image: np.ndarray) -> tuple[np.ndarray | None, dict[str, Any]]:
        from ..depth import estimate_depth
        from ..estimators import resolve

        try:
            estimator = resolve(depth_model)
            disparity = estimate_depth(image, model=depth_model, device=device)
        except ImportError as exc:
            return None, {"source": "none",
                          "text": f"No depth: the photo carries none, and estimating it needs an extra "
                                  f"({one_line(exc)}). Load a depth map of your own."}
        text = f"Depth estimated from the photo by the {estimator.name}."
        if estimator.packaged:
            text += (" It is small, trained on few real scenes and synthetic ones, and often wrong on people: a phone's "
                     "Portrait photo or a depth map of your own gives better results.")
        return normalised_disparity(disparity, image.shape[:2]), {"source": "estimated", "text": text}

    def open_photo(path: pathlib.Path, name: str) -> tuple[Scene, dict[str, Any], int, ImageMetadata]:
        note = ""
        try:
            found = read_as(path, name, lambda p: phone.read_photo_with_depth(p, max_pixels))
        except ImageFileError as exc:
            image = read_as(path, name, lambda p: io.read_photo(p, max_pixels))  # a bad photo raises here
            found, note = None, f"The embedded depth is unreadable ({exc}). "
        else:
            image = found.image
        orientation = read_as(path, name, lambda p: io.photo_orientation(p, max_pixels))
        metadata = read_as(path, name, lambda p: io.read_metadata(p, max_pixels))  # carried to the download
        try:  # blur in the linear light of the profile's curve, as `pybokeh render` does
            curve = icc.transfer_curve(metadata.icc_profile)
        except icc.ProfileError as exc:
            curve, note = None, note + f"The colour profile is unreadable ({exc}): blurring with the sRGB curve. "
        if found is not None and found.depth is not None:
            disparity = normalised_disparity(found.disparity(), image.shape[:2])
            info = {"source": "embedded", "text": f"Depth embedded in the photo: {found.describe()}."}
        else:
            disparity, info = estimate(image)
        info["text"] = note + info["text"]
        return Scene(image, disparity, proxy_pixels, curve), info, orientation, metadata

    def describe(sid: str, sess: Session) -> dict[str, Any]:
        scene = sess.scene
        out: dict[str, Any] = {"id": sid, "name": sess.name, "width": scene.shape[1], "height": scene.shape[0],
                               "proxy_width": scene.largest_proxy().shape[1],
                               "proxy_height": scene.largest_proxy().shape[0],
                               "depth": sess.depth, "focus": None}
        if scene.disparity is not None:
            subject = scene.subject()
            out["focus"] = {"x": subject.xy[0], "y": subject.xy[1], "value": subject.value,
                            "focus_range": subject.focus_range}
        return out

    @api
    async def upload_photo(request: Request) -> Response:
        name = display_name(urllib.parse.unquote(request.headers.get("x-filename", "")))
        with private_folder(temp_dir) as folder:
            path = await body_file(request, folder)
            scene, info, orientation, metadata = await run_in_threadpool(open_photo, path, name)
        sess = Session(scene, name, info, orientation, metadata=metadata)
        sid = store.add(sess)
        return JSONResponse(await run_in_threadpool(describe, sid, sess))

    @api
    async def upload_depth(request: Request) -> Response:
        sess = session(request)
        kind = request.query_params.get("kind", "disparity")
        if kind not in ("disparity", "depth"):
            raise ApiError(400, f"kind must be disparity or depth, got {kind!r}")
        name = display_name(urllib.parse.unquote(request.headers.get("x-filename", "")), "depth map")

        def read(path: pathlib.Path) -> np.ndarray:
            raw = read_as(path, name, lambda p: io.read_depth(p, max_pixels))
            raw, _ = io.orient_depth(raw, sess.orientation, sess.scene.image.shape)
            return normalised_disparity(raw, sess.scene.shape, kind)

        with private_folder(temp_dir) as folder:
            path = await body_file(request, folder)
            disparity = await run_in_threadpool(read, path)

        def use() -> None:
            with sess.lock:  # not in the middle of a preview
                sess.scene.set_disparity(disparity)

        await run_in_threadpool(use)
        what = "disparity, brighter = nearer" if kind == "disparity" else "depth, brighter = farther"
        sess.depth = {"source": "uploaded", "text": f"Depth from your map {name} ({what})."}
        return JSONResponse(await run_in_threadpool(describe, request.path_params["sid"], sess))

    @api
    async def photo_proxy(request: Request) -> Response:
        sess = session(request)
        data = await run_in_threadpool(_jpeg, sess.scene.largest_proxy(), PREVIEW_QUALITY)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @api
    async def depth_view(request: Request) -> Response:
        sess = session(request)
        if sess.scene.disparity is None:
            raise ApiError(409, "this photo has no depth yet: load a depth map")
        data = await run_in_threadpool(_png, sess.scene.depth_view())
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})

    @api
    async def preview(request: Request) -> Response:
        sess = session(request)
        chosen, _ = await settings(request, sess)

        def work() -> tuple[bytes, float, float, tuple[int, int]]:
            scene = sess.scene
            with sess.lock:
                start = time.perf_counter()
                out = scene.render_preview(chosen, backend, threads)
                rendered = time.perf_counter() - start
                data = _jpeg(out, PREVIEW_QUALITY)
                seconds = time.perf_counter() - start
                sess.seconds_per_pixel = rendered / (out.shape[0] * out.shape[1])
                scene.set_level(pace.next_level(scene.level, scene.levels, seconds))
                return data, seconds, scene.focus_of(chosen), out.shape[:2]

        if sess.scene.disparity is None:
            raise ApiError(409, "this photo has no depth yet: load a depth map")
        data, seconds, focus, (h, w) = await run_in_threadpool(work)
        return Response(data, media_type="image/jpeg",
                        headers={"Cache-Control": "no-store", "X-Render-Ms": f"{seconds * 1e3:.0f}",
                                 "X-Focus": f"{focus:.4f}", "X-Preview-Size": f"{w}x{h}"})

    @api
    async def start_render(request: Request) -> Response:
        sid = request.path_params["sid"]
        sess = session(request)
        chosen, data = await settings(request, sess)
        fmt = data.get("format", "jpeg")
        if fmt not in DOWNLOAD_FORMATS:
            raise ApiError(400, f"format must be one of {', '.join(DOWNLOAD_FORMATS)}, got {fmt!r}")
        if sess.scene.disparity is None:
            raise ApiError(409, "this photo has no depth yet: load a depth map")
        suffix, media_type = DOWNLOAD_FORMATS[fmt]
        h, w = sess.scene.shape
        rate = store.full_seconds_per_pixel or sess.seconds_per_pixel or 2e-7
        job = Job(sid, h * w, expected_s=rate * h * w, media_type=media_type,
                  filename=f"{download_stem(sess.name)}-bokeh{suffix}")

        def work(job: Job) -> None:
            try:
                with store.render_lock:
                    job.state, job.render_started = "rendering", time.monotonic()
                    out = sess.scene.render_full(chosen, backend, threads)
                    store.full_seconds_per_pixel = (time.monotonic() - job.render_started) / (h * w)
                    job.state = "encoding"
                    with private_folder(temp_dir) as folder:
                        target = folder / f"render{suffix}"
                        # JPEG at io.DEFAULT_QUALITY (95); the photo's EXIF (orientation 1: the pixels are
                        # upright) and ICC profile carried as by `pybokeh render`
                        io.write_image(target, out, metadata=sess.metadata)
                        job.data = target.read_bytes()
                job.state = "done"
            except MemoryError:
                job.state, job.error = "error", "not enough memory to render this photo at full resolution"
            except Exception as exc:  # reported to the page, one line
                job.state, job.error = "error", one_line(exc)
            finally:
                job.finished = time.monotonic()

        jid = store.start_job(sid, job, work)
        return JSONResponse({"job": jid, **job.status()})

    def job_of(request: Request) -> Job:
        try:
            return store.job(request.path_params["jid"])
        except KeyError:
            raise ApiError(404, "this render is no longer on the server; start it again") from None

    @api
    async def job_status(request: Request) -> Response:
        return JSONResponse(job_of(request).status(), headers={"Cache-Control": "no-store"})

    @api
    async def download(request: Request) -> Response:
        job = job_of(request)
        if job.state != "done":
            raise ApiError(409, f"the render is not finished ({job.state})")
        return Response(job.data, media_type=job.media_type,
                        headers={"Content-Disposition": f'attachment; filename="{job.filename}"',
                                 "Cache-Control": "no-store"})

    @api
    async def close_photo(request: Request) -> Response:
        return JSONResponse({"closed": store.remove(request.path_params["sid"])})

    async def config(request: Request) -> Response:
        return JSONResponse({"max_upload_bytes": max_upload_bytes, "max_pixels": max_pixels,
                             "f_number_range": list(F_NUMBER_RANGE), "max_highlight_boost": MAX_HIGHLIGHT_BOOST})

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", index),
        Route("/api/config", config),
        Route("/api/photos", upload_photo, methods=["POST"]),
        Route("/api/photos/{sid}", close_photo, methods=["DELETE"]),
        Route("/api/photos/{sid}/depth", upload_depth, methods=["POST"]),
        Route("/api/photos/{sid}/photo.jpg", photo_proxy),
        Route("/api/photos/{sid}/depth.png", depth_view),
        Route("/api/photos/{sid}/preview", preview, methods=["POST"]),
        Route("/api/photos/{sid}/render", start_render, methods=["POST"]),
        Route("/api/jobs/{jid}", job_status),
        Route("/api/jobs/{jid}/download", download),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    guard = Guard(Starlette(routes=routes), None if trusted_hosts is None else tuple(trusted_hosts))
    guard.store = store  # for tests and the command's shutdown
    return guard
