"""Saving and loading: generator files for inference, checkpoints for training.

Generator files are safetensors (no pickle) with a JSON header under the metadata
key ``"pybokeh"``::

    {"format": "pybokeh-pix2pix-generator", "version": 1,
     "architecture": {"ngf": 64, "levels": 8, ...},   # GeneratorConfig
     "input_size": 256,                                 # training crop; inference resizes to it
     "input": "RGB in [0, 1] mapped to [-1, 1]",
     "depth_target": {...},                             # depth_target.TARGET_CONVENTION
     ...}                                               # plus caller metadata (training run, data)

A training checkpoint is a directory ``<run>/checkpoints/step_NNNNNNNN/`` holding
``generator.safetensors``, ``discriminator.safetensors`` (GAN runs) and
``train_state.pt`` (optimiser states, step, config; loaded with ``weights_only=True``).
It is written under a temporary name and renamed when complete; ``checkpoints/latest``
(replaced atomically afterwards) names the newest complete one, so a run killed at
any moment resumes from an intact checkpoint.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .depth_target import TARGET_CONVENTION
from .patchgan import PatchDiscriminator
from .unet import GeneratorConfig, UNetGenerator

__all__ = ["save_generator", "load_generator", "read_generator_meta", "save_checkpoint",
           "latest_checkpoint", "load_checkpoint", "FORMAT"]

FORMAT = "pybokeh-pix2pix-generator"
VERSION = 1
META_KEY = "pybokeh"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _state_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def _atomic_save_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def save_generator(path: str | Path, model: UNetGenerator, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s weights and metadata to a safetensors file, atomically.

    Parameters
    ----------
    path : path
        Destination, conventionally ``*.safetensors``.
    model : UNetGenerator
        A DDP/compiled wrapper is unwrapped.
    meta : dict, optional
        Extra JSON-serialisable metadata (training data, step, licence notes...); the
        architecture, ``input_size`` and depth-target convention are always added.
    """
    model = getattr(model, "module", model)
    if not isinstance(model, UNetGenerator):
        raise TypeError(f"model must be a UNetGenerator, got {type(model).__name__}")
    header = dict(meta or {})
    header.update({"format": FORMAT, "version": VERSION, "architecture": model.config.to_dict(),
                   "input_size": model.input_size, "input": "RGB in [0, 1] mapped to [-1, 1]",
                   "depth_target": TARGET_CONVENTION})
    try:
        text = json.dumps(header, sort_keys=True)
    except TypeError as exc:
        raise TypeError(f"meta must be JSON-serialisable: {exc}") from None
    path = Path(path)
    _atomic_save_safetensors(_state_tensors(model), path, {META_KEY: text, "format": "pt"})
    return path


def read_generator_meta(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a generator file, without loading its weights.

    Raises ``ValueError`` for a file that is not a pybokeh generator (not
    safetensors, no or unreadable metadata).
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except SafetensorError as exc:  # a malformed or non-safetensors file
        raise ValueError(f"{path} is not a safetensors file ({type(exc).__name__}: {exc})") from None
    if raw is None:
        raise ValueError(f"{path} is not a pybokeh generator file (no {META_KEY!r} metadata)")
    try:
        meta = json.loads(raw)
    except ValueError:
        raise ValueError(f"{path}: its {META_KEY!r} metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: its {META_KEY!r} metadata is not a JSON object")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown format {meta.get('format')!r}")
    if int(meta.get("version", 0)) > VERSION:
        raise ValueError(f"{path}: format version {meta['version']} is newer than this pybokeh supports ({VERSION})")
    return meta


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[UNetGenerator, dict[str, Any]]:
    """Load a generator saved by :func:`save_generator`.

    Returns
    -------
    model : UNetGenerator
        In eval mode on ``device``.
    meta : dict
        The file's metadata (``architecture``, ``input_size``, ``depth_target``, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"generator file {path} not found")
    meta = read_generator_meta(path)
    try:
        model = UNetGenerator.from_config(GeneratorConfig.from_dict(meta["architecture"]),
                                          input_size=meta.get("input_size"))
        model.load_state_dict(load_file(str(path), device="cpu"), strict=True)
    except (KeyError, TypeError, RuntimeError, SafetensorError) as exc:  # missing/mismatched architecture or tensors
        raise ValueError(f"{path}: not a generator this pybokeh can load ({type(exc).__name__}: {exc})") from None
    return model.to(device).eval(), meta


# --------------------------------------------------------------------------- training checkpoints

STATE_NAME = "train_state.pt"
GEN_NAME = "generator.safetensors"
DISC_NAME = "discriminator.safetensors"


def _ckpt_root(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save_checkpoint(run_dir: str | Path, step: int, generator: UNetGenerator, discriminator: PatchDiscriminator | None,
                    state: dict[str, Any], gen_meta: dict[str, Any] | None = None, keep: int = 2) -> Path:
    """Write checkpoint ``step`` of a run atomically and keep the newest ``keep``.

    ``state`` holds the rest of the training state (optimiser state dicts, config);
    it must contain only tensors, numbers, strings, lists and dicts.
    """
    root = _ckpt_root(Path(run_dir))
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    final = root / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
    try:
        save_generator(tmp / GEN_NAME, generator, gen_meta)
        if discriminator is not None:
            disc = getattr(discriminator, "module", discriminator)
            arch = {"in_channels": disc.in_channels, "ndf": disc.ndf, "n_layers": disc.n_layers, "norm": disc.norm}
            _atomic_save_safetensors(_state_tensors(disc), tmp / DISC_NAME, {"pybokeh-discriminator": json.dumps(arch)})
        with open(tmp / STATE_NAME, "wb") as f:
            torch.save(dict(state, step=step), f)
            f.flush()
            os.fsync(f.fileno())
        if final.exists():  # a re-save of the same step (e.g. after resuming at it)
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(root)
    pointer_tmp = root / f".latest.{os.getpid()}.tmp"
    pointer_tmp.write_text(name + "\n")
    os.replace(pointer_tmp, root / "latest")
    _fsync_dir(root)
    complete = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in complete[:-keep] if keep > 0 else []:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """Directory of the newest complete checkpoint of a run, or ``None``."""
    root = _ckpt_root(Path(run_dir))
    pointer = root / "latest"
    if pointer.is_file():
        candidate = root / pointer.read_text().strip()
        if (candidate / STATE_NAME).is_file():
            return candidate
    complete = sorted(p for p in root.glob("step_*") if (p / STATE_NAME).is_file())
    return complete[-1] if complete else None


def load_checkpoint(ckpt_dir: str | Path, generator: UNetGenerator, discriminator: PatchDiscriminator | None) -> dict[str, Any]:
    """Load weights into ``generator``/``discriminator`` (in place) and return the state dict."""
    ckpt_dir = Path(ckpt_dir)
    gen = getattr(generator, "module", generator)
    gen.load_state_dict(load_file(str(ckpt_dir / GEN_NAME), device="cpu"), strict=True)
    if discriminator is not None:
        path = ckpt_dir / DISC_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{ckpt_dir} has no discriminator (an --l1-only run?)")
        getattr(discriminator, "module", discriminator).load_state_dict(load_file(str(path), device="cpu"), strict=True)
    return torch.load(ckpt_dir / STATE_NAME, map_location="cpu", weights_only=True)
