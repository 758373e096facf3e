"""The ``pybokeh serve`` subcommand: its arguments (no web imports) and its run."""
from __future__ import annotations

import argparse
import sys

from ..argtypes import bounded


#: Parsers of the serve options (see pybokeh.argtypes).
_port = bounded(int, 0, 65535, "a port number 0..65535")
_megabytes = bounded(float, 0, 2**20, "a size in MB", lo_open=True, unit=" MB")
_photos = bounded(int, 1, 1000, "a count")
_milliseconds = bounded(float, 0, 1e6, "milliseconds", unit=" ms")


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """The serve options (``pybokeh.cli`` adds ``--max-pixels``, shared with render)."""
    from .preview import DEFAULT_PREVIEW_TARGET_S
    from .sessions import DEFAULT_MAX_SESSIONS
    from .uploads import DEFAULT_MAX_UPLOAD_BYTES

    p.description = ("A local web page: open a photo, click to focus, adjust the lens with a live preview, download "
                     "the full-resolution render (needs the web extra: pip install \"pybokeh[web]\").")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only); another address lets "
                        "anyone who reaches it upload photos and use this computer's processors")
    p.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    p.add_argument("--max-upload-mb", type=_megabytes, default=DEFAULT_MAX_UPLOAD_BYTES / 2**20,
                   help=f"largest photo or depth-map file accepted, MB (default {DEFAULT_MAX_UPLOAD_BYTES / 2**20:g})")
    p.add_argument("--max-photos", type=_photos, default=DEFAULT_MAX_SESSIONS,
                   help=f"photos kept open at once, each in memory at full resolution "
                        f"(default {DEFAULT_MAX_SESSIONS}); the least recently used is forgotten")
    p.add_argument("--preview-ms", type=_milliseconds, default=DEFAULT_PREVIEW_TARGET_S * 1e3,
                   help=f"server time a preview may take before the next one uses a proxy with half the pixels "
                        f"(default {DEFAULT_PREVIEW_TARGET_S * 1e3:g}; 0: always the largest, 1 MP)")
    p.add_argument("--depth-model", default="pix2pix",
                   help="estimator for photos without embedded depth: pix2pix (packaged, default), "
                        "hf:<repo id or folder> (pybokeh[hf]) or a .onnx file (pybokeh[onnx])")
    p.add_argument("--device", default=None,
                   help="where depth estimation runs (cpu, cuda; default: CUDA when available)")
    p.add_argument("--backend", default="auto", help="renderer: auto, cuda, cpp, numba or numpy")
    p.add_argument("--threads", type=int, help="CPU threads for rendering (default: all available)")


def run_serve(args: argparse.Namespace) -> int:
    from . import bind, is_loopback, server

    sock = bind(args.host, args.port)
    try:
        srv = server(sock, max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels,
                     max_sessions=args.max_photos, preview_target_s=args.preview_ms / 1e3 or None,
                     depth_model=args.depth_model, device=args.device,
                     backend=args.backend, threads=args.threads)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        if not is_loopback(host):
            print(f"pybokeh serve: warning: listening on {host}, not only this computer: anyone who can reach "
                  f"it can upload photos and use its processors", file=sys.stderr, flush=True)
        print(f"pybokeh serve: open http://{shown}:{port}/ in a browser (Ctrl+C stops)", file=sys.stderr, flush=True)
        srv.run(sockets=[sock])
    finally:
        sock.close()
    return 0
