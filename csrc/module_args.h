// Argument checks shared by the bindings of pybokeh._core, pybokeh._cuda and
// pybokeh._cuda_emu: the Python layer validates user input; these re-check
// shapes and dtypes so that a direct call raises (std::invalid_argument ->
// ValueError) but never crashes.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "bokeh_math.h"
#include "render_cpu.h"

namespace pybokeh {
namespace binding {

namespace py = pybind11;

// Raises unless every value of a float32 array lies in [lo, hi] (NaN fails).
inline void check_values(const py::array& a, float lo, float hi, const std::string& what) {
  const float* v = static_cast<const float*>(a.data());
  const size_t n = (size_t)a.size();
  bool ok = true;
  for (size_t i = 0; i < n; ++i) ok &= (v[i] >= lo) & (v[i] <= hi);  // branch-free: vectorises
  if (!ok) throw std::invalid_argument(what);
}

// image: C-contiguous H x W x 3 with at most kMaxPixels pixels; coc:
// C-contiguous H x W float32, finite, |coc| <= kMaxCocRadius (or, where
// steps_allowed, int16 counts of 1 / kCocStepsPerPx px: any value is valid).
inline void check_image_and_coc(const py::array& image, const py::array& coc, bool steps_allowed = false) {
  if (image.ndim() != 3 || image.shape(2) != 3) throw std::invalid_argument("image must be an H x W x 3 array");
  if (coc.ndim() != 2 || coc.shape(0) != image.shape(0) || coc.shape(1) != image.shape(1))
    throw std::invalid_argument("coc must be an H x W array matching the image");
  const bool steps = steps_allowed && py::isinstance<py::array_t<int16_t>>(coc);
  if (!(steps || py::isinstance<py::array_t<float>>(coc)) || !(coc.flags() & py::array::c_style))
    throw std::invalid_argument(steps_allowed ? "coc must be a C-contiguous float32 (px) or int16 (1/" +
                                                    std::to_string(kCocStepsPerPx) + " px steps) array"
                                              : "coc must be a C-contiguous float32 array");
  if (!(image.flags() & py::array::c_style)) throw std::invalid_argument("image must be C-contiguous");
  if ((long long)image.shape(0) * (long long)image.shape(1) > kMaxPixels)
    throw std::invalid_argument("image is too large: at most " + std::to_string(kMaxPixels) + " pixels");
  if (!steps)
    check_values(coc, -kMaxCocRadius, kMaxCocRadius,
                 "coc must be finite with |coc| <= " + std::to_string((int)kMaxCocRadius) + " px");
}

// The CPU threads argument: a Python int (or NumPy integer) in [1, kMaxThreads].
constexpr long long kMaxThreads = 1024;
inline int thread_count(const py::object& threads) {
  if (PyBool_Check(threads.ptr())) throw py::type_error("threads must be an int, not bool");
  PyObject* index = PyNumber_Index(threads.ptr());
  if (!index) {
    PyErr_Clear();
    throw py::type_error("threads must be an int");
  }
  int overflow = 0;
  const long long n = PyLong_AsLongLongAndOverflow(index, &overflow);
  Py_DECREF(index);
  if (overflow || n < 1 || n > kMaxThreads)
    throw std::invalid_argument("threads must be between 1 and " + std::to_string(kMaxThreads));
  return (int)n;
}

// The two aperture shapes (behind / in front of the focus plane) into p.shape;
// lut and ext keep the checked arrays alive while p points into them.
inline void set_aperture(int blades, const py::array& aperture_luts, const py::array& aperture_extents,
                         RenderParams& p, py::array& lut, py::array& ext) {
  if (blades != 0 && (blades < 3 || blades > 16)) throw std::invalid_argument("blades must be 0 or 3..16");
  auto e = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(aperture_extents);
  if (!e || e.ndim() != 2 || e.shape(0) != 2 || e.shape(1) != 2)
    throw std::invalid_argument("aperture_extents must be a (2, 2) float32 array");
  if (blades) {
    auto l = py::array_t<float, py::array::c_style>::ensure(aperture_luts);
    if (!l || l.ndim() != 3 || l.shape(0) != 2 || l.shape(1) != kApertureLutSize + 1 || l.shape(2) != 2)
      throw std::invalid_argument("aperture_luts must be a (2, " + std::to_string(kApertureLutSize + 1) +
                                  ", 2) float32 array");
    lut = l;
  }
  ext = e;
  for (int side = 0; side < 2; ++side) {
    ApertureShape& ap = p.shape[side];
    ap.blades = blades;
    ap.lut = blades ? static_cast<const float*>(lut.data()) + (size_t)side * (kApertureLutSize + 1) * 2 : nullptr;
    ap.ext_lo = e.at(side, 0);
    ap.ext_hi = e.at(side, 1);
    if (!(ap.ext_lo < 0.0f && ap.ext_hi > 0.0f && ap.ext_lo >= -1.0f && ap.ext_hi <= 1.0f))
      throw std::invalid_argument("aperture_extents must lie in [-1, 1] around 0");
  }
}

// The per-pixel highlight gain: None, or an H x W float32 array matching the
// image (kept alive in gain).
inline void set_gain_map(const py::object& highlight_gain, const py::array& image, RenderParams& p,
                         py::array& gain) {
  p.highlight_gain = nullptr;
  if (highlight_gain.is_none()) return;
  auto g = py::array_t<float, py::array::c_style>::ensure(highlight_gain);
  if (!g || g.ndim() != 2 || g.shape(0) != image.shape(0) || g.shape(1) != image.shape(1))
    throw std::invalid_argument("highlight_gain must be None or an H x W float32 array");
  check_values(g, 0.0f, kMaxHighlightGain,
               "highlight_gain must lie in [0, " + std::to_string((int)kMaxHighlightGain) + "]");
  gain = g;
  p.highlight_gain = g.data();
}

}  // namespace binding
}  // namespace pybokeh
