"""Argument definitions and entry points for ``pybokeh train`` and ``pybokeh eval-depth``.

This module must import without PyTorch: only the ``run_*`` functions import it.
"""
from __future__ import annotations

import argparse
import json
import sys


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``pybokeh train`` options to ``parser``."""
    parser.description = (
        "Train the Pix2Pix depth model (U-Net generator + 70x70 PatchGAN, cGAN + lambda*L1). "
        "Multi-process/multi-node: torchrun --nproc_per_node=K -m pybokeh.cli train ...")
    g = parser.add_argument_group("run")
    g.add_argument("--data", required=True, help="data set directory (rgbd layout, DIML indoor or NYU Depth v2)")
    g.add_argument("--out", required=True, help="run directory: config, log.jsonl, checkpoints/, generator.safetensors")
    g.add_argument("--steps", type=_positive_int, required=True, help="optimisation steps in total")
    g.add_argument("--resume", action="store_true", help="continue the last checkpoint in --out exactly where it stopped")
    g.add_argument("--layout", choices=("auto", "rgbd", "diml", "nyu"), default="auto", help="data layout (default: detect)")
    g.add_argument("--seed", type=int, default=0, help="seed for weights, sampling, augmentation, dropout (default 0)")
    m = parser.add_argument_group("model")
    m.add_argument("--size", type=_positive_int, default=256, help="square training crop, multiple of 32 (default 256)")
    m.add_argument("--ngf", type=_positive_int, default=64, help="generator filters in the first level (default 64)")
    m.add_argument("--ndf", type=_positive_int, default=None,
                   help="discriminator filters in the first layer (default: --ngf; the discriminator dominates "
                        "the step time of small generators)")
    m.add_argument("--levels", type=_positive_int, default=None,
                   help="U-Net levels (default: from --size, 8 at 256 = 1x1 bottleneck)")
    m.add_argument("--init", default=None, metavar="FILE.safetensors",
                   help="start the generator from this generator file (the packaged model, "
                        "pybokeh/models/pix2pix_depth.safetensors, or a run's generator.safetensors) to fine-tune it; "
                        "--size, --ngf and --levels must match it (default: random weights)")
    m.add_argument("--l1-only", "--no-gan", dest="l1_only", action="store_true",
                   help="no discriminator: the same generator on its depth loss alone (lambda*L1 [+ SSI]; ablation)")
    o = parser.add_argument_group("optimisation")
    o.add_argument("--batch-size", type=_positive_int, default=4, help="samples per process per step (default 4)")
    o.add_argument("--lambda-l1", type=float, default=100.0, help="weight of the masked L1 term (default 100)")
    o.add_argument("--lambda-ssi", type=float, default=0.0,
                   help="weight of the scale-and-shift-invariant disparity loss (MiDaS-style; default 0 = off)")
    o.add_argument("--ssi-grad-weight", type=float, default=0.5,
                   help="weight of the multi-scale gradient-matching term inside the SSI loss (default 0.5)")
    o.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default 2e-4; betas 0.5, 0.999)")
    o.add_argument("--decay-start", type=float, default=0.5,
                   help="fraction of steps at constant lr before the linear decay to 0 (default 0.5)")
    o.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="keep an exponential moving average of the generator's weights with this decay per step "
                        "(e.g. 0.999), validate and write it (default 0 = off)")
    o.add_argument("--crop-aspect", type=float, default=4 / 3, metavar="A",
                   help="training crops have width/height in [1/A, A] before they are squeezed to the square input "
                        "(default 4/3; photos of aspect a are squeezed by a at inference, 16:9 = 1.78)")
    o.add_argument("--source-weight-power", type=float, default=0.5,
                   help="a source with n frames is drawn with total weight n**p: 1 = uniform frames, "
                        "0 = uniform sources (default 0.5)")
    s = parser.add_argument_group("synthetic data")
    s.add_argument("--synth-ratio", type=float, default=0.0,
                   help="fraction of every batch drawn from procedural 3D scenes textured with training photos "
                        "(default 0 = real frames only)")
    s.add_argument("--synth-frames", type=_positive_int, default=2000, help="size of the synthetic pool (default 2000)")
    s.add_argument("--synth-seed", type=int, default=0, help="seed of the synthetic pool (default 0)")
    s.add_argument("--synth-kinds", default=None, metavar="KIND=W,...",
                   help="share of each scene kind in the pool (outdoor, street, room, tabletop, closeup, desk), e.g. "
                        "'tabletop=0.4,room=0.25,outdoor=0.2,street=0.15' (default 0.3/0.25/0.3/0.15/0/0)")
    s.add_argument("--synth-cache", default=None,
                   help="directory to keep the synthetic pool in (reused by later runs with the same settings)")
    r = parser.add_argument_group("runtime")
    r.add_argument("--val-every", type=_positive_int, default=1000, help="validate on the eval split every N steps and at the end")
    r.add_argument("--val-limit", type=_positive_int, default=None, help="validate on the first N eval frames only")
    r.add_argument("--ckpt-every", type=_positive_int, default=1000, help="checkpoint every N steps and at the end")
    r.add_argument("--keep-checkpoints", type=_positive_int, default=2, help="checkpoints kept (default 2)")
    r.add_argument("--log-every", type=_positive_int, default=10, help="log losses every N steps (default 10)")
    r.add_argument("--workers", type=int, default=1, help="DataLoader worker processes (default 1)")
    r.add_argument("--cache-short-side", type=_positive_int, default=None,
                   help="frames are cached with at most this shorter side (default 2*size)")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: CUDA when available")
    r.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads (default: cores / local processes)")
    r.add_argument("--channels-last", action="store_true", help="channels-last memory format (faster on GPUs; slower for CPU training)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")


def _crop_ratio(aspect: float) -> tuple[float, float]:
    if not (aspect >= 1.0 and aspect < float("inf")):
        raise ValueError(f"--crop-aspect must be a finite number >= 1, got {aspect!r}")
    return 1.0 / aspect, aspect


def run_train(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from .augment import AugmentConfig
    from .train import TrainConfig, train_model

    try:
        cfg = TrainConfig(data=args.data, out=args.out, steps=args.steps, size=args.size, ngf=args.ngf, ndf=args.ndf,
                          levels=args.levels, batch_size=args.batch_size, l1_only=args.l1_only,
                          lambda_l1=args.lambda_l1, lambda_ssi=args.lambda_ssi,
                          ssi_grad_weight=args.ssi_grad_weight, synth_ratio=args.synth_ratio,
                          synth_frames=args.synth_frames, synth_seed=args.synth_seed, synth_cache=args.synth_cache,
                          synth_kinds=args.synth_kinds, init=args.init,
                          lr=args.lr, decay_start=args.decay_start, ema=args.ema, seed=args.seed,
                          val_every=args.val_every, val_limit=args.val_limit, ckpt_every=args.ckpt_every,
                          keep_checkpoints=args.keep_checkpoints, log_every=args.log_every, workers=args.workers,
                          source_weight_power=args.source_weight_power, layout=args.layout,
                          cache_short_side=args.cache_short_side, device=args.device, threads=args.threads,
                          channels_last=args.channels_last, resume=args.resume, progress=not args.no_progress,
                          augment=asdict(AugmentConfig(ratio=_crop_ratio(args.crop_aspect))))
        train_model(cfg)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as exc:
        print(f"pybokeh train: error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``pybokeh eval-depth`` options to ``parser``."""
    parser.description = (
        "Depth metrics of a trained generator on a data set's eval split (NYU Depth v2 protocol: per image over "
        "valid pixels, aligned to the ground truth, then averaged), per source and grouped (in-domain, unseen "
        "indoor, outdoor, people, photos, phone) beside the constant and lower-is-nearer baselines, with median "
        "scaling and with disparity scale-and-shift alignment.")
    parser.add_argument("--weights", required=True,
                        help="generator .safetensors file, or a training run directory (uses its final or latest generator)")
    parser.add_argument("--data", required=True, help="data set directory (rgbd layout, DIML indoor or NYU Depth v2)")
    parser.add_argument("--layout", choices=("auto", "rgbd", "diml", "nyu"), default="auto")
    parser.add_argument("--split", choices=("eval", "train"), default="eval", help="split to score (default eval)")
    parser.add_argument("--predictor", choices=("network", "estimate-depth"), default="network",
                        help="network: the generator alone, bilinear resize (default); estimate-depth: "
                             "pybokeh.estimate_depth with these weights (flip averaging, guided upsampling)")
    parser.add_argument("--mode", choices=("resize", "pad"), default="resize",
                        help="network predictor: resize photos to the training size (default) or pad them")
    parser.add_argument("--photos", default="auto",
                        help="photos with reference disparity for the 'photos' group (default: the 'photos' folder "
                             "beside --data, if any; 'none' to skip)")
    parser.add_argument("--phone", default="auto",
                        help="photos with depth embedded by the device for the 'phone' group (default: the 'phone' "
                             "folder beside --data, if any; 'none' to skip)")
    parser.add_argument("--limit", type=_positive_int, default=None, help="score the first N frames only")
    parser.add_argument("--min-depth", type=float, default=1e-3, help="metres (default 1e-3)")
    parser.add_argument("--max-depth", type=float, default=None,
                        help="metres; default per group: 80 outdoors, 10 elsewhere (photos, phone: 100 relative units)")
    parser.add_argument("--per-image", action="store_true", help="with --json: include every image's metrics")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads")


def _resolve_weights(path):
    from pathlib import Path

    from .checkpoint import GEN_NAME, latest_checkpoint

    p = Path(path)
    if p.is_dir():
        if (p / "generator.safetensors").is_file():
            return p / "generator.safetensors"
        ckpt = latest_checkpoint(p)
        if ckpt is None:
            raise FileNotFoundError(f"{p} has neither generator.safetensors nor a checkpoint")
        return ckpt / GEN_NAME
    return p


def _beside_data(args, option: str):
    """The folder named by ``--photos``/``--phone``: ``auto`` = the folder of that name beside ``--data``."""
    from pathlib import Path

    value = getattr(args, option)
    if value == "none" or args.split != "eval":
        return None
    if value == "auto":
        candidate = Path(args.data).resolve().parent / option
        return candidate if candidate.is_dir() else None
    return Path(value)


def run_eval(args: argparse.Namespace) -> int:
    try:
        import torch
    except ModuleNotFoundError:
        print("pybokeh eval-depth: error: needs PyTorch: pip install 'pybokeh[depth]'", file=sys.stderr)
        return 2
    from .checkpoint import load_generator
    from .data import open_frames
    from .data.phone import read_phone_pairs
    from .data.photos import read_photo_pairs
    from .depth_target import disparity_to_depth
    from .evaluate import format_table, summarize
    from .groups import GROUPS, eval_items, evaluate_grouped, format_grouped
    from .inference import predict_disparity

    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        weights = _resolve_weights(args.weights)
        model, meta = load_generator(weights, device=args.device)
        all_frames = open_frames(args.data, args.layout)
        frames = [f for f in all_frames if f.split == args.split]
        if args.limit:
            frames = frames[: args.limit]
        if not frames:
            raise ValueError(f"{args.data}: no frames in the {args.split} split")
        photo_dir = _beside_data(args, "photos")
        photos = read_photo_pairs(photo_dir) if photo_dir is not None else []
        phone_dir = _beside_data(args, "phone")
        phone = read_phone_pairs(phone_dir) if phone_dir is not None else []
        if args.max_depth is not None and not args.max_depth > args.min_depth:
            raise ValueError(f"--max-depth must exceed --min-depth, got {args.max_depth} <= {args.min_depth}")
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"pybokeh eval-depth: error: {exc}", file=sys.stderr)
        return 2
    if args.predictor == "network":
        def predict(rgb):
            return disparity_to_depth(predict_disparity(model, rgb, mode=args.mode))
    else:
        from ..depth import estimate_depth

        def predict(rgb):
            return disparity_to_depth(estimate_depth(rgb, device=args.device, weights=weights))
    from tqdm import tqdm

    items = eval_items(frames, all_frames, photos, phone)
    bar = tqdm(total=len(items), desc="eval", unit="img", disable=args.json or not sys.stderr.isatty())
    overrides = None
    if args.max_depth is not None:
        overrides = {g: args.max_depth for g in GROUPS}
    result = evaluate_grouped(predict, items, min_depth=args.min_depth, max_depths=overrides, progress=bar)
    bar.close()
    rows = [{k: v for k, v in r.items() if k not in ("group", "method", "alignment")}
            for r in result["per_image"]
            if r["method"] == "model" and r["alignment"] == "median" and r["group"] not in ("photos", "phone")]
    summary = summarize(rows)
    if args.json:
        out = {"weights": str(weights), "data": str(args.data), "split": args.split, "mode": args.mode,
               "predictor": args.predictor, "photos": str(photo_dir) if photo_dir else None,
               "phone": str(phone_dir) if phone_dir else None,
               "architecture": meta.get("architecture"), "input_size": meta.get("input_size"),
               "protocol": "per-image alignment (median scaling of depth, or least-squares scale and shift of "
                           "inverse depth), valid pixels in (min_depth, max_depth), mean over images",
               "min_depth": args.min_depth, **summary, "groups": result["groups"]}
        if args.per_image:
            out["per_image"] = rows
            out["per_image_grouped"] = result["per_image"]
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"weights: {weights}\ndata: {args.data} (split {args.split}, {len(rows)} images, predictor "
              f"{args.predictor}, mode {args.mode})" + (f"; photos: {photo_dir} ({len(photos)})" if photos else "")
              + (f"; phone: {phone_dir} ({len(phone)})" if phone else ""))
        print("\nmodel per source (median scaling):")
        print(format_table(summary))
        print("\ngrouped, beside the baselines:")
        print(format_grouped(result))
    return 0
