"""Pix2Pix depth networks and training, installed as ``pybokeh.nets``.

Needs PyTorch (``pip install "pybokeh[depth]"``).  Importing this package does not
import torch; the names below load on first use, so ``pybokeh --help`` and
``import pybokeh`` work without it.

Main entry points:

* networks: :class:`UNetGenerator` (reference ``unet_256`` defaults),
  :class:`PatchDiscriminator` (70×70 PatchGAN), :func:`levels_for_size`;
* inference: :func:`load_generator` / :func:`save_generator` (safetensors + JSON
  metadata) and :func:`predict_disparity` (any photo size, deterministic, brighter =
  nearer);
* data: :func:`open_frames` (rgbd layout, DIML indoor, NYU Depth v2), :class:`FrameCache`,
  :class:`PairDataset`, :func:`source_weights`;
* objective and metrics: :func:`masked_l1`, :func:`discriminator_loss`,
  :func:`depth_metrics`, and the depth-target convention :data:`TARGET_CONVENTION`;
* training: :class:`TrainConfig` and :func:`train_model` (what ``pybokeh train`` runs).
"""
from __future__ import annotations

import importlib

_LAZY = {
    "fused_instance_norm_leaky_relu": "fused_norm",
    "InstanceNormLeakyReLU": "fused_norm",
    "reference_instance_norm_leaky_relu": "fused_norm",
    "triton_available": "fused_norm",
    "fused_norm_backend": "fused_norm",
    "resolve_fused_norm_backend": "fused_norm",
    # networks
    "UNetGenerator": "unet",
    "GeneratorConfig": "unet",
    "levels_for_size": "unet",
    "PatchDiscriminator": "patchgan",
    # objective and depth convention
    "masked_l1": "losses",
    "discriminator_loss": "losses",
    "generator_gan_loss": "losses",
    "TARGET_CONVENTION": "depth_target",
    "depth_to_target": "depth_target",
    "target_to_disparity": "depth_target",
    "disparity_to_depth": "depth_target",
    # data
    "Frame": "data",
    "open_frames": "data",
    "read_rgbd": "data",
    "read_diml_indoor": "data",
    "read_nyu_depth_v2": "data",
    "FrameCache": "dataset",
    "PairDataset": "dataset",
    "AugmentConfig": "augment",
    "source_weights": "sampler",
    # metrics, files, inference, training
    "depth_metrics": "metrics",
    "mean_metrics": "metrics",
    "save_generator": "checkpoint",
    "load_generator": "checkpoint",
    "read_generator_meta": "checkpoint",
    "predict_disparity": "inference",
    "TrainConfig": "train",
    "train_model": "train",
}


def __getattr__(name: str):
    if name in _LAZY:
        try:
            module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        except ModuleNotFoundError as exc:
            if exc.name == "torch":
                raise ImportError(
                    f"pybokeh.nets.{name} needs PyTorch: pip install 'pybokeh[depth]'"
                ) from exc
            raise
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
