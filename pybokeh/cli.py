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

from .argtypes import bounded, pixel_count


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


_quality = bounded(int, 1, 100, "an integer 1..100", unit=" (JPEG, WebP, HEIC quality)")


def add_max_pixels_argument(p: argparse.ArgumentParser) -> None:
    from .io import DEFAULT_MAX_PIXELS

    p.add_argument("--max-pixels", type=pixel_count, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse input images larger than this many pixels, checked before decoding "
                        f"(default {DEFAULT_MAX_PIXELS:.2g})")


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """--quality and --max-pixels (render)."""
    p.add_argument("--quality", type=_quality,
                   help="JPEG, WebP and HEIC quality, 1..100 (default 95); refused for lossless outputs (PNG, TIFF)")
    add_max_pixels_argument(p)


_positive_int = bounded(int, 1, None, "a positive integer")
_gpus = bounded(float, 0.0, 64.0, "a number of GPUs (e.g. 1 or 0.25)")


def add_render_arguments(p: argparse.ArgumentParser) -> None:
    from .batch import DEFAULT_NAME

    p.description = ("Render lens blur: one photo to -o FILE, or a batch (several photos, folders, glob patterns) "
                     "into --out-dir, with a progress bar, in --jobs processes or on a Ray cluster (--ray).")
    p.add_argument("photos", nargs="+", metavar="PHOTO",
                   help="photo files (JPEG, PNG, TIFF, WebP, HEIC with the heif extra, ...), folders (their photos, "
                        "not subfolders) or glob patterns such as 'shoot/*.jpg'")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-o", "--output",
                       help="one photo: the output image; format from the suffix (.jpg, .png, .tif, .webp, .heic)")
    where.add_argument("--out-dir", metavar="FOLDER",
                       help="batch: the folder the outputs go to, named by --name; outputs already there are "
                            "skipped (see --overwrite)")
    p.add_argument("--name", default=DEFAULT_NAME, metavar="PATTERN",
                   help=f"batch: output file name from the fields {{stem}}, {{suffix}} (with its dot, as the photo "
                        f"has it), {{ext}}, {{name}}; the suffix chooses the format (default {DEFAULT_NAME!r}; "
                        f"e.g. '{{stem}}.jpg' writes JPEGs)")
    p.add_argument("--overwrite", action="store_true", help="batch: render outputs that exist again")
    p.add_argument("--jobs", type=_positive_int, metavar="N",
                   help="batch: render in N worker processes, the CPU threads divided among them (default 1: "
                        "this process, all threads); with --ray: N Ray workers (default: one per CPU)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="batch: render on Ray (pip install \"pybokeh[ray]\"): a local instance, or the cluster at "
                        "ADDRESS ('auto', 'ray://head:10001'); put it after the photos or write --ray=ADDRESS. "
                        "Photos, depth maps and --out-dir must be paths every worker can read and write")
    p.add_argument("--ray-gpus", type=_gpus, default=0.0, metavar="N",
                   help="with --ray: GPUs per worker for depth estimation (e.g. 1, or 0.25 to share one among "
                        "four workers); the workers then estimate on CUDA")
    p.add_argument("--depth",
                   help="one photo: its depth map: 8/16-bit grey PNG (read at full precision), float TIFF or .npy; "
                        "default: see --depth-pattern and --depth-source")
    p.add_argument("--depth-pattern", metavar="PATTERN",
                   help="each photo's depth map: the file named so beside it, e.g. '{stem}_depth.png' "
                        "(fields as --name); a photo without one fails")
    p.add_argument("--depth-source", choices=("auto", "embedded", "estimate"), default="auto",
                   help="without a depth map file: auto (default) uses the depth the phone embedded in the photo "
                        "(iPhone Portrait HEIC/JPEG, Google GDepth, XDM, Dynamic Depth) and estimates it "
                        "when there is none; embedded requires it; estimate ignores it")
    p.add_argument("--depth-model", default="pix2pix",
                   help="estimator when depth is estimated: pix2pix (packaged, default), a generator "
                        ".safetensors from pybokeh train, hf:<repo id or folder> (transformers; pybokeh[hf]) "
                        "or a .onnx file (pybokeh[onnx])")
    p.add_argument("--save-depth", metavar="FILE",
                   help="one photo, without a depth map file: also write the disparity used, normalised to [0, 1] "
                        "(16-bit PNG, float TIFF or .npy)")
    p.add_argument("--depth-kind", choices=("disparity", "depth"), default="disparity",
                   help="depth map files: disparity, relative inverse depth, brighter = nearer (default); "
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
    p.add_argument("--threads", type=int,
                   help="CPU threads per process (default: all available, divided among --jobs)")
    p.add_argument("--device", default=None,
                   help="where depth estimation runs (cpu, cuda; default: CUDA when available)")
    add_output_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages (nor progress bar)")


#: Said once per run when the packaged model estimated depth.
PACKAGED_MODEL_NOTE = (
    "note: the packaged model is small, trained on few real scenes and synthetic ones, and is often wrong on people; "
    "for better depth use a phone's Portrait photo (embedded depth is read automatically), pass a "
    "map with --depth or --depth-pattern, or run a stronger estimator: --depth-model hf:depth-anything/"
    "Depth-Anything-V2-Small-hf (pip install \"pybokeh[hf]\") or --depth-model model.onnx "
    "(pip install \"pybokeh[onnx]\")")


def run_render(args: argparse.Namespace) -> int:
    import pathlib

    from . import batch

    settings = batch.RenderSettings.from_args(args)
    if args.output is None:
        if args.out_dir is None:
            raise ValueError("give -o OUTPUT for one photo, or --out-dir FOLDER for a batch "
                             "(several photos, folders, glob patterns)")
        if args.depth:
            raise ValueError("--depth names the map of one photo; for a batch, name each photo's map with "
                             "--depth-pattern (e.g. '{stem}_depth.png')")
        if args.save_depth:
            raise ValueError("--save-depth is for one photo (-o OUTPUT)")
        return run_batch(args, settings)
    photo = args.photos[0]
    if pathlib.Path(photo).is_dir():
        raise ValueError(f"photo {photo!r} is a directory; to render the photos in it use --out-dir FOLDER "
                         f"instead of -o")
    if len(args.photos) > 1 or (any(c in photo for c in "*?[") and not pathlib.Path(photo).exists()):
        raise ValueError("-o names the output of one photo; for several photos or a pattern use --out-dir FOLDER")
    if args.ray is not None or args.jobs is not None:
        raise ValueError("--jobs and --ray render batches: use --out-dir FOLDER")
    depth = args.depth
    if depth is None and args.depth_pattern:
        p = pathlib.Path(photo)
        depth = str(p.parent / batch.name_for(args.depth_pattern, p, "--depth-pattern"))
    progress = _Progress(not args.quiet)
    result = batch.render_file(batch.Job(photo, args.output, depth, args.save_depth), settings, progress)
    if result.packaged_model:
        progress(PACKAGED_MODEL_NOTE)
    progress("done")
    return 0


def run_batch(args: argparse.Namespace, settings) -> int:
    """Render a batch (see :mod:`pybokeh.batch`): progress bar, one line per failure, a summary."""
    import collections
    import signal

    from . import batch, io

    start = time.perf_counter()
    plan = batch.plan(batch.find_photos(args.photos), args.out_dir, args.name, args.depth_pattern, args.overwrite)
    todo = plan.todo
    for job in todo:  # a bad --quality fails the command, not every file
        suffix = os.path.splitext(job.output)[1].lower()
        if suffix not in io.OUTPUT_FORMATS:
            raise ValueError(f"output {job.output!r} has an unknown file type; choose one with --name "
                             f"(e.g. '{{stem}}.jpg')")
        if settings.quality is not None:
            io.check_quality(settings.quality, io.OUTPUT_FORMATS[suffix])
    if args.ray is not None and todo:
        from . import ray_render

        runner = ray_render.Cluster(args.ray, args.jobs, args.threads, args.ray_gpus)
        settings = runner.settings_for(settings)
        how = runner.describe()
        results = runner.run(todo, settings)
    else:
        workers = max(1, min(args.jobs or 1, len(todo)))
        settings = settings.with_threads(batch.split_threads(workers, args.threads))
        how = f"{workers} process{'es' if workers > 1 else ''} × {settings.threads} thread{'s' * (settings.threads > 1)}"
        results = batch.run(todo, settings, workers)
    skipped = f", {len(plan.skipped)} already there (--overwrite renders them again)" if plan.skipped else ""
    if not args.quiet:
        print(f"pybokeh render: {len(todo)} photo{'s' * (len(todo) != 1)} to render into {args.out_dir}{skipped}; "
              f"{how}", file=sys.stderr, flush=True)
    from tqdm import tqdm

    counts: collections.Counter = collections.Counter()
    sources: collections.Counter = collections.Counter()
    packaged = False
    bar = tqdm(total=len(todo), unit="photo", desc="rendering", file=sys.stderr, disable=args.quiet or not todo,
               dynamic_ncols=True, smoothing=0.05)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill`/timeouts end a batch as Ctrl-C does
    try:
        for result in results:
            counts[result.status] += 1
            bar.update(1)
            for warning in result.warnings:
                bar.write(f"pybokeh render: warning: {_naming(result.photo, warning)}", file=sys.stderr)
            if result.status == batch.FAILED:
                bar.write(f"pybokeh render: error: {_naming(result.photo, result.error)}", file=sys.stderr)
            else:
                sources[result.depth_source] += 1
                packaged |= result.packaged_model
    except KeyboardInterrupt:
        bar.close()
        print(f"pybokeh render: interrupted after {counts[batch.RENDERED]} of {len(todo)} photos; every output "
              f"written is complete, none partial: run the same command again to render the rest", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        bar.close()
    elapsed = time.perf_counter() - start
    names = {"file": "from depth map files", "embedded": "embedded in the photo", "estimated": "estimated"}
    depth = ", ".join(f"{n} {names.get(source, source)}" for source, n in sorted(sources.items()))
    print(f"pybokeh render: {counts[batch.RENDERED]} rendered, {len(plan.skipped)} skipped, {counts[batch.FAILED]} "
          f"failed in {elapsed:.1f} s" + (f" (depth: {depth})" if depth else ""), file=sys.stderr, flush=True)
    if packaged and not args.quiet:
        print(f"pybokeh render: {PACKAGED_MODEL_NOTE}", file=sys.stderr)
    return 1 if counts[batch.FAILED] else 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _naming(photo: str, message: str) -> str:
    """The message, prefixed with the photo unless it names it already."""
    return message if photo in message else f"{photo}: {message}"


def add_depth_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Estimate depth from one photo (the packaged Pix2Pix model, a transformers model or an ONNX "
                     "file) and write it as disparity (brighter = nearer, 0..1; 16-bit PNG scales it to 0..65535).")
    p.add_argument("photo", help="input photo (JPEG, PNG, ...)")
    p.add_argument("-o", "--output", required=True,
                   help="depth file: .png (16-bit grey), .tif/.tiff (float32) or .npy (float32)")
    p.add_argument("--upsample", choices=("guided", "bilinear"), default="guided",
                   help="edge-aware guided upsampling (default) or plain bilinear")
    p.add_argument("--model", default="pix2pix",
                   help="pix2pix (packaged, default), a generator .safetensors from pybokeh train, "
                        "hf:<repo id or folder> (transformers; pybokeh[hf]) or a .onnx file (pybokeh[onnx])")
    p.add_argument("--weights", help="pix2pix: generator .safetensors from pybokeh train (default: the packaged model)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when available)")
    add_max_pixels_argument(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")


def run_depth(args: argparse.Namespace) -> int:
    from . import io
    from .depth import estimate_depth
    from .estimators import resolve

    io.check_output_path(args.output, "depth output", io.DEPTH_SUFFIXES)
    progress = _Progress(not args.quiet)
    progress(f"reading {args.photo}")
    photo = io.read_photo(args.photo, args.max_pixels)
    h, w = photo.shape[:2]
    progress(f"estimating depth for {w}×{h} with the {resolve(args.model, args.weights).name}")
    disparity = estimate_depth(photo, model=args.model, device=args.device, upsample=args.upsample,
                               weights=args.weights)
    progress(f"writing {args.output}")
    io.write_depth(args.output, disparity)
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
    p.add_argument("--quality", type=_quality,
                   help="JPEG, WebP and HEIC quality, 1..100 (default 95); refused for lossless outputs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")


def demo_photo_path():
    """Path of the packaged demo photo."""
    import pathlib

    return pathlib.Path(__file__).resolve().parent / "data" / DEMO_PHOTO


def run_demo(args: argparse.Namespace) -> int:
    from . import io, render
    from .batch import RenderSettings, estimate

    out = io.check_output_path(args.output)
    if args.quality is not None:
        io.check_quality(args.quality, io.OUTPUT_FORMATS[out.suffix.lower()])
    if args.save_depth:
        io.check_output_path(args.save_depth, "--save-depth file", io.DEPTH_SUFFIXES)
    progress = _Progress(not args.quiet)
    path = demo_photo_path()
    progress(f"reading the demo photo {path.name}")
    photo = io.read_photo(path)
    depth, _, _ = estimate(photo, RenderSettings(device=args.device), progress)  # the demo's own note at the end
    if args.save_depth:
        progress(f"writing {args.save_depth}")
        io.write_depth(args.save_depth, depth)
    h, w = photo.shape[:2]
    progress(f"rendering {w}×{h}, focus on the near hiker at {DEMO_FOCUS_XY}")
    rendered = render(photo, depth, DEMO_FOCUS_XY)
    progress(f"writing {args.output}")
    io.write_image(args.output, rendered, quality=args.quality)
    progress("done: the depth came from the small packaged model, trained on few real scenes (see MODEL.md);"
             " for photos of people pass a depth map from a stronger estimator to `pybokeh render --depth`")
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
