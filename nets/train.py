"""Pix2Pix depth training loop: single process, or many with ``torchrun`` (DDP).

One step (the reference ``optimize_parameters`` order):

1. ``fake = G(photo)``;
2. discriminator: ``(BCE(D(photo, real), 1) + BCE(D(photo, fake.detach()), 0)) / 2``,
   with ``real`` = target depth, its holes filled by the detached fake
   (:func:`~pybokeh.nets.losses.fill_invalid`); real and fake go through D as one batch
   (instance norm is per sample, so this equals two calls, and DDP sees one forward);
3. generator: ``BCE(D(photo, fake), 1) + λ · masked L1`` with D frozen.

``--l1-only`` drops steps 2 and the GAN term: the same generator trained on ``λ · L1``
alone (the "naive CNN" ablation).  ``--lambda-ssi μ`` adds ``μ ·`` the
scale-and-shift-invariant disparity loss (:func:`~pybokeh.nets.losses.ssi_loss`) to the
generator objective, beside or (with ``--lambda-l1`` small) mostly instead of the L1.

``--synth-ratio r`` draws a fraction ``r`` of every batch from a pool of procedural
RGB-D scenes (:mod:`pybokeh.nets.synth`) textured with crops of the training frames;
the pool is a pure function of ``(synth_frames, synth_seed, cache size, train frames)``
and can be kept on disk (``--synth-cache``) for the next run.  Adam (lr 2e-4, β = (0.5, 0.999)) for both nets;
the learning rate is constant for the first ``decay_start`` fraction of the steps, then
decays linearly to zero.  ``--ema d`` keeps an exponential moving average of the
generator's weights (``w_ema = d·w_ema + (1 - d)·w`` after every step); validation and the
written generator use the average, which smooths the last steps' noise.

Determinism: the data of step ``k`` is a function of ``(seed, k)``
(:class:`~pybokeh.nets.sampler.StepBatchSampler`), and the global torch RNG (dropout) is
re-seeded from ``(seed, k, rank)`` before every step, so a resumed run replays exactly
what an uninterrupted one computes; checkpoints need no RNG state.
"""
from __future__ import annotations

import copy
import hashlib
import json
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from .augment import AugmentConfig
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, save_generator
from .data import open_frames
from .dataset import ConcatCache, FrameCache, PairDataset
from .distributed import DistInfo, all_reduce_sum, barrier, init_distributed, shutdown_distributed
from .evaluate import evaluate_pairs
from .losses import discriminator_loss, fill_invalid, generator_gan_loss, masked_l1, ssi_loss
from .metrics import METRIC_NAMES
from .patchgan import PatchDiscriminator
from .sampler import StepBatchSampler, mix_weights, source_weights
from .unet import UNetGenerator, levels_for_size

__all__ = ["TrainConfig", "train_model", "lr_multiplier", "ARCH_FIELDS"]

ARCH_FIELDS = ("size", "ngf", "ndf", "levels", "l1_only")
KILL_ENV = "PYBOKEH_TRAIN_KILL_AT_STEP"  # tests: SIGKILL this process right after step k


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``<out>/config.json``)."""

    data: str
    out: str
    steps: int
    size: int = 256
    ngf: int = 64
    ndf: int | None = None
    levels: int | None = None
    batch_size: int = 4
    l1_only: bool = False
    lambda_l1: float = 100.0
    lambda_ssi: float = 0.0
    ssi_grad_weight: float = 0.5
    synth_ratio: float = 0.0
    synth_frames: int = 2000
    synth_seed: int = 0
    synth_cache: str | None = None
    synth_kinds: str | None = None
    init: str | None = None
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_start: float = 0.5
    ema: float = 0.0
    seed: int = 0
    val_every: int = 1000
    val_limit: int | None = None
    ckpt_every: int = 1000
    keep_checkpoints: int = 2
    log_every: int = 10
    workers: int = 1
    source_weight_power: float = 0.5
    layout: str = "auto"
    cache_short_side: int | None = None
    device: str = "auto"
    threads: int | None = None
    channels_last: bool = False
    resume: bool = False
    progress: bool = True
    augment: dict = field(default_factory=lambda: asdict(AugmentConfig()))

    def __post_init__(self) -> None:
        def positive(name):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

        if self.ndf is None:
            self.ndf = self.ngf  # scale the discriminator with the generator (64/64 = reference)
        for name in ("steps", "size", "ngf", "ndf", "batch_size", "val_every", "ckpt_every", "log_every"):
            positive(name)
        auto_levels = levels_for_size(self.size)  # validates size
        if self.levels is None:
            self.levels = auto_levels
        elif not isinstance(self.levels, int) or not 2 <= self.levels or self.size % 2 ** self.levels:
            raise ValueError(f"levels must be an integer >= 2 with size divisible by 2**levels, "
                             f"got levels={self.levels!r} for size {self.size}")
        if not (isinstance(self.ema, (int, float)) and 0.0 <= self.ema < 1.0):
            raise ValueError(f"ema must be a decay in [0, 1) (0 = off), got {self.ema!r}")
        if not 0.0 <= self.decay_start <= 1.0:
            raise ValueError(f"decay_start must be in [0, 1], got {self.decay_start!r}")
        if not self.lr > 0 or not self.lambda_l1 >= 0:
            raise ValueError(f"lr must be > 0 and lambda_l1 >= 0, got {self.lr!r}, {self.lambda_l1!r}")
        if not self.lambda_ssi >= 0 or not self.ssi_grad_weight >= 0:
            raise ValueError(f"lambda_ssi and ssi_grad_weight must be >= 0, got {self.lambda_ssi!r}, "
                             f"{self.ssi_grad_weight!r}")
        if not self.lambda_l1 + self.lambda_ssi > 0:
            raise ValueError("lambda_l1 and lambda_ssi are both 0: the generator would have no depth loss")
        if not 0.0 <= self.synth_ratio < 1.0:
            raise ValueError(f"synth_ratio must be in [0, 1), got {self.synth_ratio!r}")
        if self.synth_ratio > 0:
            positive("synth_frames")
        if self.synth_kinds is not None:
            from .synth.scenes import parse_kind_weights

            parse_kind_weights(self.synth_kinds)  # validates
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers!r}")
        if self.cache_short_side is None:
            self.cache_short_side = 2 * self.size


def lr_multiplier(step: int, steps: int, decay_start: float) -> float:
    """LR factor for update ``step`` (0-based): 1, then linear to 0 after ``decay_start·steps``."""
    n_const = int(round(decay_start * steps))
    if step < n_const:
        return 1.0
    return max(0.0, (steps - step) / max(1, steps - n_const))


def _step_seed(seed: int, step: int, rank: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{step}:{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2 ** 63 - 1)


def _set_requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def _params_digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class _Logger:
    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def _loader(dataset, sampler, workers: int, pin: bool) -> DataLoader:
    kwargs: dict[str, Any] = {}
    if workers > 0:
        # fork shares the in-memory frame cache with the workers instead of pickling it.
        if "fork" in multiprocessing.get_all_start_methods():
            kwargs["multiprocessing_context"] = "fork"
        kwargs["prefetch_factor"] = 4
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, pin_memory=pin, **kwargs)


def _validate(G: UNetGenerator, cache: FrameCache, cfg: TrainConfig, info: DistInfo) -> dict[str, float]:
    """Mean metrics over the (rank-sharded) eval cache, reduced across ranks."""
    n = len(cache) if cfg.val_limit is None else min(len(cache), cfg.val_limit)
    mine = range(info.rank, n, info.world_size)
    pairs = ((cache.frames[i].source, cache.frames[i].name, cache.rgb[i],
              cache.depth_mm[i].astype(np.float32) * np.float32(0.001)) for i in mine)
    rows = evaluate_pairs(G, pairs, size=cfg.size)
    sums = torch.tensor([sum(r[k] for r in rows) for k in METRIC_NAMES] + [len(rows)], dtype=torch.float64)
    if info.device.type == "cuda":
        sums = sums.to(info.device)
    sums = all_reduce_sum(sums).cpu()
    count = int(sums[-1].item())
    out = {k: (float(sums[i]) / count if count else float("nan")) for i, k in enumerate(METRIC_NAMES)}
    out["count"] = count
    return out


def _check_resume_config(saved: dict[str, Any], cfg: TrainConfig, log) -> None:
    for name in ARCH_FIELDS:
        if saved.get(name) != getattr(cfg, name):
            raise ValueError(f"--resume: {name} is {getattr(cfg, name)!r} but the run was started with "
                             f"{saved.get(name)!r}; use the run's settings or a new --out")
    changed = [k for k in ("steps", "batch_size", "lambda_l1", "lambda_ssi", "ssi_grad_weight", "lr", "decay_start",
                           "seed", "source_weight_power", "synth_ratio", "synth_frames", "synth_seed", "synth_kinds",
                           "ema", "init")
               if saved.get(k, getattr(TrainConfig, k, None)) != getattr(cfg, k)]
    if changed:
        log(f"warning: resuming with changed {', '.join(changed)}: the run will not match an uninterrupted one")


def _check_init(cfg: TrainConfig) -> None:
    """Fail before any data is read when ``cfg.init`` is missing, not a generator file, or a generator
    of another architecture than this run's: a one-line error naming ``--init``."""
    from .checkpoint import read_generator_meta

    path = Path(cfg.init)
    if not path.is_file():
        raise FileNotFoundError(f"--init {cfg.init}: no such file")
    try:
        meta = read_generator_meta(path)
    except ValueError as exc:
        raise ValueError(f"--init {exc}") from None
    arch = meta.get("architecture") if isinstance(meta.get("architecture"), dict) else {}
    theirs = (arch.get("ngf"), arch.get("levels"), meta.get("input_size"))
    ours = (cfg.ngf, cfg.levels, cfg.size)
    if theirs != ours:
        raise ValueError(f"--init {cfg.init}: its generator has ngf, levels, size = {theirs}, this run {ours}; "
                         f"pass the file's --ngf, --levels and --size")


def _init_generator(G: UNetGenerator, cfg: TrainConfig) -> None:
    """Copy the weights of the generator file ``cfg.init`` (checked by :func:`_check_init`) into ``G``:
    fine-tuning starts there.  A float16 file (the packaged model) is widened to ``G``'s float32."""
    from .checkpoint import load_generator

    source, _ = load_generator(cfg.init)
    with torch.no_grad():
        G.load_state_dict(source.state_dict(), strict=True)


def train_model(cfg: TrainConfig) -> dict[str, Any]:
    """Run training as configured; returns a summary (final step, last losses, validation)."""
    info = init_distributed(cfg.device)
    try:
        return _train(cfg, info)
    finally:
        shutdown_distributed()


def _train(cfg: TrainConfig, info: DistInfo) -> dict[str, Any]:
    out = Path(cfg.out)
    main = info.is_main

    def log(msg: str) -> None:
        if main:
            print(msg, file=sys.stderr, flush=True)

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    elif info.enabled and info.device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // info.local_world_size))
    if info.device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    ckpt = latest_checkpoint(out) if out.exists() else None
    if ckpt is not None and not cfg.resume:
        raise FileExistsError(f"{out} already holds a checkpoint ({ckpt.name}); pass --resume to continue it "
                              f"or choose another --out")
    if ckpt is None and cfg.init is not None:
        _check_init(cfg)
    if main:
        out.mkdir(parents=True, exist_ok=True)
    barrier()

    # ---------------------------------------------------------------- data
    frames = open_frames(cfg.data, cfg.layout)
    train_frames = [f for f in frames if f.split == "train"]
    eval_frames = [f for f in frames if f.split == "eval"]
    if not train_frames:
        raise ValueError(f"{cfg.data}: no frames in the train split")
    t0 = time.perf_counter()
    train_cache = FrameCache(train_frames, cfg.cache_short_side)
    val_cache = FrameCache(eval_frames[: cfg.val_limit] if cfg.val_limit else eval_frames, cfg.cache_short_side)
    log(f"data: {len(train_cache)} train / {len(val_cache)} eval frames from {cfg.data}, cached in "
        f"{time.perf_counter() - t0:.1f} s ({(train_cache.nbytes() + val_cache.nbytes()) / 2**20:.0f} MiB)")
    weights = source_weights(train_cache.sources, cfg.source_weight_power)
    pool_cache = train_cache
    if cfg.synth_ratio > 0:
        from .synth import SynthPool
        from .synth.scenes import parse_kind_weights

        t0 = time.perf_counter()
        pool = SynthPool.build(cfg.synth_frames, seed=cfg.synth_seed, short_side=cfg.cache_short_side,
                               texture_photos=train_cache.rgb, cache_dir=cfg.synth_cache, log=log,
                               kind_weights=parse_kind_weights(cfg.synth_kinds) if cfg.synth_kinds else None)
        log(f"synthetic pool: {len(pool)} frames ({pool.nbytes() / 2**20:.0f} MiB) in "
            f"{time.perf_counter() - t0:.1f} s, {cfg.synth_ratio:.0%} of every batch")
        pool_cache = ConcatCache([train_cache, pool])
        weights = mix_weights(weights, len(pool), cfg.synth_ratio)
    dataset = PairDataset(pool_cache, cfg.size, AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v
                                                                   for k, v in cfg.augment.items()}))

    # ---------------------------------------------------------------- models
    torch.manual_seed(cfg.seed)
    G = UNetGenerator(ngf=cfg.ngf, levels=cfg.levels, input_size=cfg.size)
    D = None if cfg.l1_only else PatchDiscriminator(ndf=cfg.ndf)
    start_step, state = 0, None
    if ckpt is not None:
        state = load_checkpoint(ckpt, G, D)
        _check_resume_config(state["config"], cfg, log)
        if state.get("world_size", 1) != info.world_size:
            log(f"warning: resuming with {info.world_size} processes, the run used {state.get('world_size')}")
        start_step = int(state["step"])
        log(f"resuming from {ckpt} at step {start_step}")
    else:
        if cfg.resume:
            log(f"--resume: no checkpoint in {out} yet, starting at step 0")
        if cfg.init is not None:
            _init_generator(G, cfg)
            log(f"generator initialised from {cfg.init}")
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    G.to(info.device, memory_format=memory_format)
    if D is not None:
        D.to(info.device, memory_format=memory_format)
    betas = (cfg.beta1, cfg.beta2)
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=betas)
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=betas) if D is not None else None
    if state is not None:
        opt_G.load_state_dict(state["opt_G"])
        if opt_D is not None:
            opt_D.load_state_dict(state["opt_D"])
    G_core, D_core = G, D
    # The weight average (--ema): a frozen copy updated after every step; validated and written.
    G_ema = None
    if cfg.ema > 0:
        G_ema = copy.deepcopy(G_core).requires_grad_(False)
        if state is not None and "ema" in state:
            G_ema.load_state_dict(state["ema"], strict=True)
        elif state is not None:
            log("warning: the checkpoint holds no weight average; --ema starts it from the resumed weights")
    G_out = G_ema if G_ema is not None else G_core
    if info.enabled:
        ids = [info.local_rank] if info.device.type == "cuda" else None
        G = DDP(G, device_ids=ids)
        if D is not None:
            D = DDP(D, device_ids=ids)

    if main:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    logger = _Logger(out / "log.jsonl", main)
    if main and start_step and logger.path.is_file():
        # Drop what the interrupted run logged after its checkpoint: those steps are replayed.
        kept = [line for line in logger.path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= start_step]
        logger.path.write_text("".join(line + "\n" for line in kept))
    n_g = sum(p.numel() for p in G_core.parameters())
    n_d = sum(p.numel() for p in D_core.parameters()) if D_core is not None else 0
    log(f"model: U-Net ngf={cfg.ngf} levels={cfg.levels} ({n_g / 1e6:.2f} M params)"
        + ("" if D_core is None else f", PatchGAN ndf={cfg.ndf} ({n_d / 1e6:.2f} M)")
        + f"; {_objective(cfg)}; "
          f"{info.world_size} process(es) on {info.device.type}; batch {cfg.batch_size}/process")

    gen_meta = {"training": {"data": str(cfg.data), "steps": cfg.steps, "l1_only": cfg.l1_only,
                             "lambda_l1": cfg.lambda_l1, "lambda_ssi": cfg.lambda_ssi,
                             "ssi_grad_weight": cfg.ssi_grad_weight, "synth_ratio": cfg.synth_ratio,
                             "synth_frames": cfg.synth_frames if cfg.synth_ratio > 0 else 0,
                             **({"synth_kinds": cfg.synth_kinds} if cfg.synth_ratio > 0 and cfg.synth_kinds else {}),
                             **({"ema": cfg.ema} if cfg.ema > 0 else {}),
                             "batch_size": cfg.batch_size * info.world_size,
                             "sources": sorted(set(train_cache.sources))}}

    def checkpoint(step: int) -> None:
        if main:
            st = {"opt_G": opt_G.state_dict(), "config": asdict(cfg), "world_size": info.world_size,
                  "torch_version": str(torch.__version__),
                  # No RNG state to save: every step re-seeds from (seed, step, rank).
                  "rng": {"seed": cfg.seed, "scheme": "torch.manual_seed(blake2b(seed:step:rank)) per step"}}
            if opt_D is not None:
                st["opt_D"] = opt_D.state_dict()
            if G_ema is not None:
                st["ema"] = {k: v.detach().cpu() for k, v in G_ema.state_dict().items()}
            save_checkpoint(out, step, G_core, D_core, st, dict(gen_meta, step=step), keep=cfg.keep_checkpoints)
        barrier()

    sampler = StepBatchSampler(weights, cfg.batch_size, cfg.seed, start_step, cfg.steps, info.rank, info.world_size)
    loader = _loader(dataset, sampler, cfg.workers, info.device.type == "cuda")
    kill_at = int(os.environ.get(KILL_ENV, "-1"))
    bar = None
    if main and cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True,
                   mininterval=1.0 if sys.stderr.isatty() else 30.0)
    step, last, val, t_step = start_step, {}, None, time.perf_counter()
    G.train()
    if D is not None:
        D.train()
    for batch in loader:
        lr = cfg.lr * lr_multiplier(step, cfg.steps, cfg.decay_start)
        for opt in (opt_G, opt_D):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = lr
        torch.manual_seed(_step_seed(cfg.seed, step, info.rank))
        photo = batch["photo"].to(info.device, non_blocking=True).contiguous(memory_format=memory_format)
        target = batch["target"].to(info.device, non_blocking=True)
        valid = batch["valid"].to(info.device, non_blocking=True)
        losses = _step(G, D, D_core, opt_G, opt_D, photo, target, valid, cfg.lambda_l1,
                       lambda_ssi=cfg.lambda_ssi, ssi_grad_weight=cfg.ssi_grad_weight)
        step += 1
        if G_ema is not None:
            _ema_update(G_ema, G_core, cfg.ema)

        if step % cfg.log_every == 0 or step == cfg.steps:
            vec = torch.tensor([v.item() for v in losses.values()], dtype=torch.float64, device=info.device)
            vec = all_reduce_sum(vec).cpu() / info.world_size
            last = {k: float(v) for k, v in zip(losses, vec)}
            dt = (time.perf_counter() - t_step) / cfg.log_every
            t_step = time.perf_counter()
            logger.write({"step": step, "lr": lr, **last, "sec_per_step": dt})
            if bar is not None:
                bar.set_postfix({k: f"{v:.3f}" for k, v in last.items()}, refresh=False)
        if bar is not None:
            bar.update(1)
        if (step % cfg.val_every == 0 or step == cfg.steps) and len(val_cache):
            val = _validate(G_out, val_cache, cfg, info)
            logger.write({"event": "val", "step": step, **val})
            log(f"\nstep {step}: eval AbsRel {val['abs_rel']:.4f}  RMSE {val['rmse']:.4f}  "
                f"δ1 {val['delta1']:.4f}  ({val['count']} images)")
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            checkpoint(step)
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    if bar is not None:
        bar.close()

    digests = {"generator": _params_digest(G_core)}
    if D_core is not None:
        digests["discriminator"] = _params_digest(D_core)
    in_sync = True
    if info.enabled:
        gathered: list[Any] = [None] * info.world_size
        torch.distributed.all_gather_object(gathered, digests)
        in_sync = all(g == gathered[0] for g in gathered)
        logger.write({"event": "replicas", "step": step, "digests": gathered, "in_sync": in_sync})
        if not in_sync:
            raise RuntimeError("DDP replicas diverged: parameter digests differ across ranks")
    final = out / "generator.safetensors"
    if main:
        save_generator(final, G_out, dict(gen_meta, step=step))
        log(f"done: {step} steps; generator written to {final}")
    barrier()
    return {"step": step, "losses": last, "val": val, "generator": str(final), "digests": digests,
            "replicas_in_sync": in_sync}


@torch.no_grad()
def _ema_update(avg: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``avg = decay·avg + (1 - decay)·model``, parameter by parameter (buffers copied)."""
    for a, p in zip(avg.parameters(), model.parameters()):
        a.lerp_(p.detach(), 1.0 - decay)
    for a, b in zip(avg.buffers(), model.buffers()):
        a.copy_(b)


def _objective(cfg: TrainConfig) -> str:
    terms = [] if cfg.l1_only else ["cGAN"]
    if cfg.lambda_l1 > 0:
        terms.append(f"{cfg.lambda_l1:g}·L1")
    if cfg.lambda_ssi > 0:
        terms.append(f"{cfg.lambda_ssi:g}·SSI(grad {cfg.ssi_grad_weight:g})")
    return " + ".join(terms) + (f"; weight average (EMA {cfg.ema:g})" if cfg.ema > 0 else "")


def _depth_loss(fake, target, valid, lambda_l1: float, lambda_ssi: float, ssi_grad_weight: float):
    """``λ_L1 · masked L1 + λ_SSI · SSI``, and the terms for logging."""
    l1 = masked_l1(fake, target, valid)
    total, terms = lambda_l1 * l1, {"G_L1": l1.detach()}
    if lambda_ssi > 0:
        ssi = ssi_loss(fake, target, valid, grad_weight=ssi_grad_weight)
        total = total + lambda_ssi * ssi
        terms["G_SSI"] = ssi.detach()
    return total, terms


def _step(G, D, D_core, opt_G, opt_D, photo, target, valid, lambda_l1: float, *, lambda_ssi: float = 0.0,
          ssi_grad_weight: float = 0.5) -> dict[str, torch.Tensor]:
    fake = G(photo)
    if D is None:
        loss, terms = _depth_loss(fake, target, valid, lambda_l1, lambda_ssi, ssi_grad_weight)
        opt_G.zero_grad(set_to_none=True)
        loss.backward()
        opt_G.step()
        return terms
    n = photo.shape[0]
    real = fill_invalid(target, valid, fake)
    _set_requires_grad(D_core, True)
    opt_D.zero_grad(set_to_none=True)
    logits = D(torch.cat([photo, photo]), torch.cat([real, fake.detach()]))
    loss_D, d_real, d_fake = discriminator_loss(logits[:n], logits[n:])
    loss_D.backward()
    opt_D.step()
    _set_requires_grad(D_core, False)  # G's step must not touch D (and must not trigger DDP hooks)
    opt_G.zero_grad(set_to_none=True)
    g_gan = generator_gan_loss(D_core(photo, fake))
    loss, terms = _depth_loss(fake, target, valid, lambda_l1, lambda_ssi, ssi_grad_weight)
    (g_gan + loss).backward()
    opt_G.step()
    _set_requires_grad(D_core, True)
    return {"G_GAN": g_gan.detach(), **terms, "D_real": d_real.detach(), "D_fake": d_fake.detach()}
