"""The ``pybokeh`` command line.

``pybokeh render``      photo (+ depth map) → portrait-mode photo
``pybokeh depth``       photo → estimated depth (16-bit disparity PNG; needs an estimator's extra)
``pybokeh demo``        render the packaged demo photo end to end
``pybokeh export-onnx`` the packaged depth model as an ONNX file
``pybokeh train``       train the Pix2Pix depth model (needs the ``depth`` extra)
``pybokeh eval-depth``  depth metrics of a trained model on an eval split
``pybokeh serve``       a local web page: click to focus, live preview, download (needs the ``web`` extra)
"""
from __future__ import annotations

import argparse
import os
import sys
import time


class _Progress:
    """Stage messages with timings on stderr (quiet with ``-q``)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.start:6.2f}s] {message}", file=sys.stderr, flush=True)


def _pixel(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y (e.g. 640,360), got {text!r}") from None
    return x, y


def _quality(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer 1..100, got {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must lie in 1..100 (JPEG/WebP quality), got {value}")
    return value


def _max_pixels(text: str) -> int:
    try:
        value = int(float(text))
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"expected a pixel count (e.g. 200e6), got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def add_max_pixels_argument(p: argparse.ArgumentParser) -> None:
    from .io import DEFAULT_MAX_PIXELS

    p.add_argument("--max-pixels", type=_max_pixels, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse input images larger than this many pixels, checked before decoding "
                        f"(default {DEFAULT_MAX_PIXELS:.2g})")


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """--quality and --max-pixels (render)."""
    p.add_argument("--quality", type=_quality, default=95, help="JPEG/WebP quality, 1..100 (default 95)")
    add_max_pixels_argument(p)


def add_render_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("photo", help="input photo (JPEG, PNG, HEIC with the heif extra, ...)")
    p.add_argument("-o", "--output", required=True,
                   help="output image; format from the suffix (.jpg, .png, .heic with the heif extra)")
    p.add_argument("--depth",
                   help="depth map: 8/16-bit grey PNG (read at full precision), float TIFF or .npy; "
                        "default: see --depth-source")
    p.add_argument("--depth-source", choices=("auto", "embedded", "estimate"), default="auto",
                   help="without --depth: auto (default) uses the depth the phone embedded in the photo "
                        "(iPhone Portrait HEIC/JPEG, Google GDepth, XDM, Dynamic Depth) and estimates it "
                        "when there is none; embedded requires it; estimate ignores it")
    p.add_argument("--depth-model", default="pix2pix",
                   help="estimator when depth is estimated: pix2pix (packaged, default), "
                        "hf:<repo id or folder> (transformers; pybokeh[hf]) or a .onnx file (pybokeh[onnx])")
    p.add_argument("--save-depth", metavar="FILE",
                   help="without --depth: also write the disparity used, normalised to [0, 1] "
                        "(16-bit PNG, float TIFF or .npy)")
    p.add_argument("--depth-kind", choices=("disparity", "depth"), default="disparity",
                   help="--depth map: disparity, relative inverse depth, brighter = nearer (default); "
                        "depth: metric depth along the optical axis (see --depth-scale)")
    p.add_argument("--depth-scale", type=float, default=1.0,
                   help="multiply depth-map values by this to get metres in --depth-kind depth "
                        "(e.g. 0.001 for 16-bit PNGs in millimetres)")
    focus = p.add_mutually_exclusive_group()
    focus.add_argument("--focus", type=float,
                       help="disparity mode: normalised disparity in [0, 1], 0 = the map's farthest, 1 = its "
                            "nearest, whatever the file's bit depth (e.g. 0.8 for something near); "
                            "depth mode: metres (after --depth-scale)")
    focus.add_argument("--focus-xy", type=_pixel, metavar="X,Y",
                       help="focus on the depth at this pixel (column,row); "
                            "default: the main subject found in the depth map (printed)")
    p.add_argument("--max-blur", type=float,
                   help="disparity mode: CoC radius in px per unit of normalised disparity "
                        "(default 2.5%% of the diagonal); depth mode: cap on the CoC radius in px")
    p.add_argument("--f-number", type=float,
                   help="depth mode: the lens's f-number (default 1.8); disparity mode, instead of --max-blur: "
                        "blur strength like an aperture, f/1.8 = the default, f/3.6 half, f/1.2 1.5x")
    p.add_argument("--focal-length", type=float, default=50.0, help="depth mode: focal length in mm (50)")
    p.add_argument("--sensor-width", type=float, default=36.0, help="depth mode: sensor width in mm (36)")
    p.add_argument("--blades", type=int, default=0, help="aperture blades: 0 = round (default), 3..16 = polygon")
    p.add_argument("--rotation", type=float, default=0.0, help="polygon rotation in degrees, counter-clockwise")
    p.add_argument("--highlight-boost", type=float, help="gain for clipped highlights (default: the library's)")
    p.add_argument("--focus-range", type=float,
                   help="width of the depth band kept sharp: normalised disparity in [0, 1] (metres in depth "
                        "mode), e.g. 0.1; default: the subject's band when the focus is automatic, else 0")
    p.add_argument("--backend", default="auto", help="auto, cuda, cpp, numba or numpy")
    p.add_argument("--threads", type=int, help="CPU threads (default: all available)")
    p.add_argument("--device", default=None,
                   help="where depth estimation runs (cpu, cuda; default: CUDA when available)")
    add_output_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")


def run_render(args: argparse.Namespace) -> int:
    import numpy as np

    from . import io, render
    from .focus import subject_focus
    from .renderer import DEFAULT_HIGHLIGHT_BOOST

    io.check_output_path(args.output)
    if args.save_depth:
        io.check_output_path(args.save_depth, "--save-depth file", DEPTH_SUFFIXES)
    progress = _Progress(not args.quiet)
    progress(f"reading {args.photo}")
    if args.depth is None:
        if args.depth_kind != "disparity" or args.depth_scale != 1.0:
            raise ValueError("--depth-kind depth and --depth-scale need a --depth map; "
                             "embedded and estimated depth are rendered as disparity")
        photo, depth = _photo_and_depth(args, progress)
        if args.save_depth:
            progress(f"writing {args.save_depth}")
            write_depth(args.save_depth, depth)
    else:
        if args.save_depth:
            raise ValueError("--save-depth writes the embedded or estimated depth; it needs no --depth")
        if args.depth_source != "auto":
            raise ValueError(f"--depth-source {args.depth_source} chooses where depth comes from without --depth; "
                             "drop one of them")
        photo = io.read_photo(args.photo, args.max_pixels)
        depth, turned = io.orient_depth(io.read_depth(args.depth, args.max_pixels),
                                        io.photo_orientation(args.photo, args.max_pixels), photo.shape)
        progress(f"depth: {args.depth}")
        if turned:
            progress("the depth map matches the photo as stored; turned it like the photo's EXIF orientation")
    if args.depth_scale != 1.0:
        depth = depth.astype(np.float32) * np.float32(args.depth_scale)
    h, w = photo.shape[:2]
    focus_range = args.focus_range
    if args.focus is not None:
        focus = args.focus
        progress(f"focus: {_focus_units(args.depth_kind, focus)} (--focus)")
    elif args.focus_xy is not None:
        focus = args.focus_xy
        progress(f"focus: pixel {focus[0]:g},{focus[1]:g} (--focus-xy)")
    else:
        subject = subject_focus(depth, (h, w), depth_kind=args.depth_kind)
        if args.depth_kind == "disparity":
            focus = subject.value
            focus_range = subject.focus_range if focus_range is None else focus_range
            progress(f"focus: main subject at pixel {subject.xy[0]},{subject.xy[1]}, normalised disparity "
                     f"{subject.value:.3f}, sharp band {focus_range:.3f} (choose with --focus-xy X,Y or --focus)")
        else:  # metric depth: focus on the subject's pixel, band in metres only when asked for
            focus = subject.xy
            progress(f"focus: main subject at pixel {subject.xy[0]},{subject.xy[1]} "
                     f"(choose with --focus-xy X,Y or --focus)")
    progress(f"rendering {w}×{h} ({w * h / 1e6:.1f} MP), depth {depth.shape[1]}×{depth.shape[0]} {depth.dtype}")
    out = render(photo, depth, focus, depth_kind=args.depth_kind, max_blur=args.max_blur,
                 f_number=args.f_number, focal_length_mm=args.focal_length, sensor_width_mm=args.sensor_width,
                 blades=args.blades, rotation_deg=args.rotation,
                 highlight_boost=DEFAULT_HIGHLIGHT_BOOST if args.highlight_boost is None else args.highlight_boost,
                 focus_range=focus_range or 0.0, backend=args.backend, threads=args.threads)
    progress(f"writing {args.output}")
    io.write_image(args.output, out, quality=args.quality)
    progress("done")
    return 0


def _focus_units(depth_kind: str, value: float) -> str:
    return f"{value:g} m" if depth_kind == "depth" else f"normalised disparity {value:g}"


def _photo_and_depth(args: argparse.Namespace, progress):
    """The photo and the disparity to render it with: embedded by the phone, or estimated."""
    from . import io

    if args.depth_source == "estimate":
        photo = io.read_photo(args.photo, args.max_pixels)
        return photo, _estimate(photo, args.depth_model, args.device, progress)
    try:
        found = io.read_photo_with_depth(args.photo, args.max_pixels)
    except io.ImageFileError as exc:
        photo = io.read_photo(args.photo, args.max_pixels)  # an unreadable photo raises here, with its message
        if args.depth_source == "embedded":
            raise
        progress(f"the embedded depth is unreadable ({exc}); estimating depth instead")
    else:
        photo = found.image
        if found.depth is not None:
            progress(f"depth: embedded in the photo ({found.describe()})")
            return photo, found.disparity()
        if args.depth_source == "embedded":
            raise ValueError(f"{args.photo}: no embedded depth (no iPhone depth image, GDepth, XDM or Dynamic "
                             f"Depth map); use --depth-source auto or estimate, or --depth")
        progress("no embedded depth in the photo; estimating it")
    return photo, _estimate(photo, args.depth_model, args.device, progress)


def _estimate(photo, model, device, progress, hint: bool = True):
    from .depth import estimate_depth
    from .estimators import resolve

    estimator = resolve(model)
    h, w = photo.shape[:2]
    progress(f"depth: estimating it for {w}×{h} with the {estimator.name}")
    depth = estimate_depth(photo, model=model, device=device)
    if hint and estimator.packaged:  # once per run: each run estimates once
        progress("note: the packaged model was trained on indoor rooms and is often wrong on people and outdoors; "
                 "for better depth use a phone's Portrait photo (embedded depth is read automatically), pass a "
                 "map with --depth, or run a stronger estimator: --depth-model hf:depth-anything/"
                 "Depth-Anything-V2-Small-hf (pip install \"pybokeh[hf]\") or --depth-model model.onnx "
                 "(pip install \"pybokeh[onnx]\")")
    return depth


#: Suffixes of depth outputs (see :func:`write_depth`).
DEPTH_SUFFIXES = (".png", ".tif", ".tiff", ".npy")


def write_depth(path: str, disparity) -> None:
    """Write a [0, 1] disparity map atomically: 16-bit PNG (``.png``), float32 TIFF or ``.npy``."""
    import pathlib

    import numpy as np

    from . import io

    suffix = pathlib.Path(path).suffix.lower()
    if suffix not in DEPTH_SUFFIXES:
        raise ValueError(f"depth output {path!r} must end in .png (16-bit), .tif/.tiff (float32) or .npy")
    if suffix == ".png":
        io.write_image(path, np.round(np.clip(disparity, 0.0, 1.0) * 65535.0).astype(np.uint16))
    elif suffix in (".tif", ".tiff"):
        io.write_image(path, np.asarray(disparity, np.float32))
    else:
        io.check_output_path(path, "depth output", DEPTH_SUFFIXES)
        with io.atomic_output(path) as tmp:
            try:
                with open(tmp, "wb") as f:
                    np.save(f, np.asarray(disparity, np.float32), allow_pickle=False)
            except OSError as exc:
                raise io.ImageFileError(f"cannot write {path!r}: {exc.strerror or exc}") from exc


def add_depth_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Estimate depth from one photo (the packaged Pix2Pix model, a transformers model or an ONNX "
                     "file) and write it as disparity (brighter = nearer, 0..1; 16-bit PNG scales it to 0..65535).")
    p.add_argument("photo", help="input photo (JPEG, PNG, ...)")
    p.add_argument("-o", "--output", required=True,
                   help="depth file: .png (16-bit grey), .tif/.tiff (float32) or .npy (float32)")
    p.add_argument("--upsample", choices=("guided", "bilinear"), default="guided",
                   help="edge-aware guided upsampling (default) or plain bilinear")
    p.add_argument("--model", default="pix2pix",
                   help="pix2pix (packaged, default), hf:<repo id or folder> (transformers; pybokeh[hf]) "
                        "or a .onnx file (pybokeh[onnx])")
    p.add_argument("--weights", help="pix2pix: generator .safetensors from pybokeh train (default: the packaged model)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when available)")
    add_max_pixels_argument(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")


def run_depth(args: argparse.Namespace) -> int:
    from . import io
    from .depth import estimate_depth
    from .estimators import resolve

    io.check_output_path(args.output, "depth output", DEPTH_SUFFIXES)
    progress = _Progress(not args.quiet)
    progress(f"reading {args.photo}")
    photo = io.read_photo(args.photo, args.max_pixels)
    h, w = photo.shape[:2]
    progress(f"estimating depth for {w}×{h} with the {resolve(args.model, args.weights).name}")
    disparity = estimate_depth(photo, model=args.model, device=args.device, upsample=args.upsample,
                               weights=args.weights)
    progress(f"writing {args.output}")
    write_depth(args.output, disparity)
    progress("done")
    return 0


#: Packaged demo photo and where to focus it (the near hiker's face, at 1024×683).
DEMO_PHOTO = "demo_hikers.jpg"
DEMO_FOCUS_XY = (681, 241)


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Render the packaged demo photo (two hikers, MPIB inputs_new_11, Apache-2.0) end to end: "
                     "estimate its depth, then focus on the near hiker.")
    p.add_argument("-o", "--output", required=True, help="output image; format from the suffix")
    p.add_argument("--save-depth", metavar="FILE", help="also write the estimated disparity (16-bit PNG, .tif, .npy)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when available)")
    p.add_argument("--quality", type=_quality, default=95, help="JPEG/WebP quality, 1..100 (default 95)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")


def demo_photo_path():
    """Path of the packaged demo photo."""
    import pathlib

    return pathlib.Path(__file__).resolve().parent / "data" / DEMO_PHOTO


def run_demo(args: argparse.Namespace) -> int:
    from . import io, render

    io.check_output_path(args.output)
    if args.save_depth:
        io.check_output_path(args.save_depth, "--save-depth file", DEPTH_SUFFIXES)
    progress = _Progress(not args.quiet)
    path = demo_photo_path()
    progress(f"reading the demo photo {path.name}")
    photo = io.read_photo(path)
    depth = _estimate(photo, "pix2pix", args.device, progress, hint=False)  # the demo says it when done
    if args.save_depth:
        progress(f"writing {args.save_depth}")
        write_depth(args.save_depth, depth)
    h, w = photo.shape[:2]
    progress(f"rendering {w}×{h}, focus on the near hiker at {DEMO_FOCUS_XY}")
    out = render(photo, depth, DEMO_FOCUS_XY)
    progress(f"writing {args.output}")
    io.write_image(args.output, out, quality=args.quality)
    progress("done: the depth came from the packaged seed model, trained on indoor scenes (see MODEL.md);"
             " for outdoor photos pass a depth map from a stronger estimator to `pybokeh render --depth`")
    return 0


def add_export_onnx_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Write the packaged Pix2Pix depth model (or a generator from pybokeh train) as an ONNX file "
                     "that `--depth-model FILE.onnx` runs with onnxruntime, without PyTorch "
                     "(exporting needs the depth and onnx extras).")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--weights", help="generator .safetensors from pybokeh train (default: the packaged model)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")


def run_export_onnx(args: argparse.Namespace) -> int:
    from .estimators.export import export_onnx

    progress = _Progress(not args.quiet)
    progress(f"exporting {args.weights or 'the packaged model'} to {args.output}")
    export_onnx(args.output, args.weights)
    progress("done")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pybokeh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    add_render_arguments(sub.add_parser("render", help="render lens blur from a photo (and its depth map)"))
    add_depth_arguments(sub.add_parser("depth", help="estimate depth from one photo (16-bit PNG)"))
    add_demo_arguments(sub.add_parser("demo", help="render the packaged demo photo end to end"))
    add_export_onnx_arguments(sub.add_parser("export-onnx", help="write the packaged depth model as ONNX"))

    # Training and evaluation live with the networks; their argument definitions
    # import no torch, so `pybokeh --help` stays fast and torch-free.
    from pybokeh.nets import cli as nets_cli

    nets_cli.add_train_arguments(sub.add_parser("train", help="train the Pix2Pix depth model"))
    nets_cli.add_eval_arguments(sub.add_parser("eval-depth", help="depth metrics on an eval split"))

    from pybokeh.serve import command as serve_command  # argument definitions only: no web imports

    serve = sub.add_parser("serve", help="a local web page: click to focus, preview")
    serve_command.add_serve_arguments(serve)
    add_max_pixels_argument(serve)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"pybokeh: warning: {message}", file=sys.stderr if file is None else file, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not os.environ.get("PYBOKEH_DEBUG"):
        import warnings

        warnings.showwarning = _one_line_warning  # no source lines or paths for users
    try:
        if args.command == "render":
            return run_render(args)
        if args.command == "depth":
            return run_depth(args)
        if args.command == "demo":
            return run_demo(args)
        if args.command == "export-onnx":
            return run_export_onnx(args)
        if args.command == "serve":
            from pybokeh.serve import command as serve_command

            return serve_command.run_serve(args)
        from pybokeh.nets import cli as nets_cli

        if args.command == "train":
            return nets_cli.run_train(args)
        if args.command == "eval-depth":
            return nets_cli.run_eval(args)
    except MemoryError:
        if os.environ.get("PYBOKEH_DEBUG"):
            raise
        print(f"pybokeh {args.command}: error: not enough memory (try a smaller image, or fewer --threads)",
              file=sys.stderr)
        return 1
    except (ValueError, TypeError, RuntimeError, OSError, ImportError) as exc:
        # User-facing errors (unreadable files, bad values, missing extras):
        # one clear line, no traceback (PYBOKEH_DEBUG=1 shows it).
        if os.environ.get("PYBOKEH_DEBUG"):
            raise
        print(f"pybokeh {args.command}: error: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
