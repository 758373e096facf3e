"""Procedural RGB-D scenes for depth training: exact depth, photo textures, CPU only.

:func:`synth_frame` turns a seed into one colour image and its exact depth map: a random
3D scene (:mod:`.scenes`: open ground, streets, rooms, table-tops; boxes, spheres,
cylinders, people; occluders near the lens) is ray-cast on the CPU with vectorised
NumPy (:mod:`.render`), textured with crops of real training photos (:mod:`.textures`),
shaded, hazed, and seen through a random camera (height, pitch, roll, field of view).
:class:`SynthPool` holds a pool of such frames for training (``pybokeh train
--synth-ratio``).  The monocular cues the scenes teach are listed in :mod:`.scenes`.
"""
from __future__ import annotations


from .camera import Camera
from .pool import ASPECTS, SynthPool, synth_frame
from .render import Scene, render
from .scenes import KINDS, random_scene
from .textures import TextureBank

__all__ = ["synth_frame", "SynthPool", "TextureBank", "Camera", "Scene", "render", "random_scene", "KINDS", "ASPECTS"]
