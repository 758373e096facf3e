"""The lens-blur renderer: :func:`render` and its backends.

``render`` validates the inputs, turns depth + focus into a circle-of-confusion
map (:mod:`pybokeh.lens`), and hands image and CoC to a backend kernel:
``cpp`` (``csrc/render_cpu.cpp``), ``numba`` (:mod:`.numba_backend`),
``cuda`` (``csrc/render_cuda.cu``) or ``numpy`` (:mod:`.reference`, the plain
reference).  All backends implement the same occlusion-aware layered scatter
algorithm, described in ``csrc/render_cpu.cpp``.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..aperture import Aperture
from ..highlights import DEFAULT_HIGHLIGHT_BOOST, check_highlight_boost, highlight_gain_map
from ..inputs import as_image
from ..lens import coc_map
from .device_inputs import is_device_array, render_device
from .dispatch import BackendUnavailableError, backends, check_threads, get_backend

__all__ = ["render", "backends", "BackendUnavailableError", "DEFAULT_HIGHLIGHT_BOOST"]


def render(
    image: Any,
    depth: Any,
    focus: float | Sequence[float],
    *,
    depth_kind: str = "disparity",
    max_blur: float | None = None,
    f_number: float | None = None,
    focal_length_mm: float = 50.0,
    sensor_width_mm: float = 36.0,
    blades: int = 0,
    rotation_deg: float = 0.0,
    highlight_boost: float = DEFAULT_HIGHLIGHT_BOOST,
    focus_range: float = 0.0,
    backend: str = "auto",
    threads: int | None = None,
):
    """Render the photo as a wide-aperture lens focused at ``focus`` would have taken it.

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image, torch.Tensor or cupy.ndarray
        H×W×3 sRGB photo: uint8 (0–255), uint16 (0–65535) or float32 in
        [0, 1] (float64 is accepted and computed in float32).  PIL images in
        mode ``"RGB"``; torch tensors and CuPy arrays channels last.  A torch
        tensor on a CUDA device or a CuPy array is rendered on its GPU (see
        Notes; float16/bfloat16 tensors are computed in float32 there).
        Never modified.
    depth : array_like, shape (H', W')
        Disparity (default, brighter = nearer; min–max normalised to [0, 1])
        or metric depth in metres (``depth_kind="depth"``), as a NumPy array,
        PIL image, torch tensor or CuPy array (on any device).  A map of
        another size is resampled bilinearly to the image; invalid values
        (NaN, inf, negative; zero depth) are filled from valid neighbours.
        See :func:`pybokeh.coc_map`.
    focus : float or (x, y)
        Disparity mode: a normalised disparity in [0, 1] (0 = the map's
        farthest value, 1 = its nearest, whatever its dtype); depth mode: a
        distance in metres.  Or an image pixel
        ``(x, y)`` whose neighbourhood's median depth is brought into focus.
        :func:`pybokeh.subject_focus` picks one for the main subject.
    depth_kind : {"disparity", "depth"}
    max_blur : float, optional
        Disparity mode: CoC radius in pixels per unit of normalised disparity
        (default 2.5 % of the image diagonal).  Depth mode: optional cap on the
        CoC radius in pixels.
    f_number : float, optional
        Depth mode: the f-number (default 1.8).  Disparity mode: instead of
        ``max_blur``, the default strength scaled by 1.8 / ``f_number`` (blur
        ∝ aperture diameter: f/1.8 default, f/3.6 half, f/1.2 1.5×).
    focal_length_mm, sensor_width_mm : float
        Depth mode: focal length and sensor width in mm (50 mm, 36 mm).
    blades : int
        0 for a round aperture, or 3–16 diaphragm blades (a regular polygon).
    rotation_deg : float
        Counter-clockwise rotation of the polygon, degrees (0: a vertex up).
    highlight_boost : float
        Strength ``G`` in [0, 1000] of the energy given back to clipped light
        sources, so that out-of-focus lights bloom into bright discs of the
        aperture's shape.  A clipped pixel's linear colour is multiplied by
        ``1 + gain`` before the blur, the gain being ``G`` for a small,
        near-white light in the dark, nothing for saturated colours, a quarter
        of ``G`` at most for large white clipped areas, ramped in over |CoC|
        2–6 px and capped so that no pixel's light makes its blur disc brighter
        than the clip level (see :mod:`pybokeh.highlights`).  0 turns it off.
        Highlights boosted to twice the clip level or more keep a
        full-resolution splat at any blur radius, so their discs have crisp
        rims (see the README).
    focus_range : float
        Width of a depth band around the focus kept perfectly sharp: normalised
        disparity in [0, 1] (disparity mode) or metres (depth mode).
    backend : {"auto", "cuda", "cpp", "numba", "numpy"}
        Which implementation runs; "auto" takes the fastest available
        (:func:`pybokeh.backends`).  An explicit backend that is unavailable
        raises :class:`BackendUnavailableError`.  Images on a GPU accept
        "auto" and "cuda" only (a CPU backend raises ValueError).
    threads : int, optional
        CPU threads for the CPU backends, 1 to 1024 (default: all available
        cores; never more than the image has rows); ignored by the ``cuda``
        backend.

    Returns
    -------
    Same type as ``image``
        The rendered photo: same container type, dtype and shape.

    Notes
    -----
    Blur happens in linear light.  Pixels whose |CoC| is below 0.5 px and
    that no blurred foreground covers come out unchanged; a constant image
    stays constant.  See the README for the algorithm and its measured
    accuracy against a physically exact reference.

    Images on a GPU (a torch tensor with ``image.is_cuda``, or a CuPy array)
    stay there: the depth map is moved to the image's device, the CoC and
    highlight gain maps are computed on it, the ``cuda`` kernel runs on the
    device's current stream (torch's or CuPy's) and has finished when
    ``render`` returns, and the result is a new tensor / array on the same
    device, of the image's dtype.  This needs pybokeh built with its CUDA
    module (nvcc present at install time) and a GPU of compute capability
    7.5 or newer; otherwise :class:`BackendUnavailableError` is raised.
    """
    if is_device_array(image):  # torch CUDA tensor / CuPy array: the whole render stays on its GPU
        return render_device(image, depth, focus, depth_kind=depth_kind, max_blur=max_blur, f_number=f_number,
                             focal_length_mm=focal_length_mm, sensor_width_mm=sensor_width_mm, blades=blades,
                             rotation_deg=rotation_deg, highlight_boost=highlight_boost, focus_range=focus_range,
                             backend=backend, threads=threads)
    name, kernel = get_backend(backend)
    array, restore = as_image(image)
    aperture = Aperture(blades, rotation_deg)
    gain = check_highlight_boost(highlight_boost)
    threads = check_threads(threads)
    coc = coc_map(depth, focus, depth_kind=depth_kind, max_blur=max_blur, f_number=f_number,
                  focal_length_mm=focal_length_mm, sensor_width_mm=sensor_width_mm,
                  focus_range=focus_range, image_shape=array.shape[:2])
    out = kernel(array, coc, aperture, highlight_gain_map(array, gain, coc), threads)
    return restore(out)


