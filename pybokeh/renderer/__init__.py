"""The lens-blur renderer: :func:`render` and its backends.

``render`` validates the inputs, turns depth + focus into a circle-of-confusion
map (:mod:`pybokeh.lens`), and hands image and CoC to a backend kernel:
``cpp`` (``csrc/render_cpu.cpp``), ``numba`` (:mod:`.numba_backend`),
``cuda`` (``csrc/render_cuda.cu``) or ``numpy`` (:mod:`.reference`, the plain
reference).  All backends implement the same occlusion-aware layered scatter
algorithm, described in ``csrc/render_cpu.cpp``.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np

from ..aperture import Aperture
from ..highlights import DEFAULT_HIGHLIGHT_BOOST, check_highlight_boost, highlight_candidates, highlight_gains
from ..inputs import as_depth, as_image
from ..lens import Lens
from .device_inputs import device_image, is_device_array
from .dispatch import GRID_STEP_BACKENDS, backends, check_threads, get_backend
from .errors import BackendUnavailableError

__all__ = ["render", "backends", "BackendUnavailableError", "DEFAULT_HIGHLIGHT_BOOST"]


def render(image: Any, depth: Any, focus: float | Sequence[float], *, depth_kind: str = "disparity",
           max_blur: float | None = None, f_number: float | None = None, focal_length_mm: float = 50.0,
           sensor_width_mm: float = 36.0, blades: int = 0, rotation_deg: float = 0.0,
           highlight_boost: float = DEFAULT_HIGHLIGHT_BOOST, focus_range: float = 0.0, backend: str = "auto",
           threads: int | None = None):
    """Render the photo as a wide-aperture lens focused at ``focus`` would have taken it.

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image, torch.Tensor or cupy.ndarray
        H×W×3 sRGB photo, channels last: uint8 (0–255), uint16 (0–65535) or float in [0, 1]
        (float16/bfloat16/float64 are computed in float32); PIL images in mode ``"RGB"``.  A
        torch CUDA tensor or a CuPy array is rendered on its GPU (see Notes).  Never modified.
    depth, focus, depth_kind, max_blur, f_number, focal_length_mm, sensor_width_mm, focus_range
        The depth map, H'×W' of any real dtype in any of the image's containers (disparity,
        brighter = nearer, in any units; or metres with ``depth_kind="depth"``; resampled to the
        image, invalid values filled), the focus (a normalised disparity in [0, 1], a distance in
        metres, or a pixel ``(x, y)``; :func:`pybokeh.subject_focus` picks one) and the lens: blur
        per unit of normalised disparity in px (default 2.5 % of the image diagonal) or an
        f-number (default f/1.8), focal length and sensor width in mm (50, 36), and the width of
        a sharp band around the focus in the focus's units.  See :func:`pybokeh.coc_map`.
    blades : int
        0 for a round aperture, or 3–16 diaphragm blades (a regular polygon).
    rotation_deg : float
        Counter-clockwise rotation of the polygon in degrees (0: a vertex up).
    highlight_boost : float
        Strength in [0, 1000] of the energy given back to clipped light sources, so that out of
        focus they bloom into bright discs of the aperture's shape; 0 turns it off.  See
        :mod:`pybokeh.highlights` for the model and the README for its effect.
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
        Which implementation runs; "auto" takes the fastest available (:func:`pybokeh.backends`),
        an unavailable one raises :class:`BackendUnavailableError`; images on a GPU take "auto"/"cuda".
    threads : int, optional
        CPU threads, 1 to 1024 (default: all available cores); ignored by ``cuda``.

    Returns
    -------
    Same type as ``image``
        The rendered photo: same container type, device, dtype and shape.

    Notes
    -----
    Blur happens in linear light; pixels with |CoC| below 0.5 px that no blurred foreground
    covers come out unchanged.  The CoC map is rounded to multiples of 1/64 px before the kernel
    runs (:func:`pybokeh.lens.round_to_kernel_grid`: at most 1/128 px off, so that the kernels
    reuse one precomputed splat per radius); :func:`pybokeh.coc_map` returns it unrounded.

    An image on a GPU stays there: the depth, CoC and highlight maps are computed on its device
    by the host's code (in torch; CuPy without torch goes through the host), and the ``cuda``
    kernel runs on the current stream and has finished on return.  This needs pybokeh built with
    CUDA (nvcc at install time) and a GPU of compute capability 7.5+.
    """
    lens = Lens(depth_kind, max_blur, f_number, focal_length_mm, sensor_width_mm, focus_range)
    aperture = Aperture(blades, rotation_deg)
    strength = check_highlight_boost(highlight_boost)
    threads = check_threads(threads)
    if is_device_array(image):  # a torch CUDA tensor / CuPy array: every step runs on its GPU
        array, restore, kernel = device_image(image, backend)
        name = "device"
    else:
        name, kernel = get_backend(backend)
        array, restore = as_image(image)
    depth = as_depth(depth, like=array, copy=False)  # only read: no copy of a float32 map
    # The CoC map on the kernels' radius grid; the C++ kernel reads it as int16 steps (half the memory).
    steps = name in GRID_STEP_BACKENDS
    if threads > 1 and isinstance(array, np.ndarray) and strength > 0:
        # The highlight candidates depend on the image alone: found on a second core meanwhile.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(highlight_candidates, array, strength)
            coc = lens.kernel_coc(depth, focus, array.shape[:2], steps=steps)
            candidates = pending.result()
    else:
        candidates = highlight_candidates(array, strength)
        coc = lens.kernel_coc(depth, focus, array.shape[:2], steps=steps)
    del depth
    return restore(kernel(array, coc, aperture, highlight_gains(candidates, coc), threads))
