// Argument checking shared by the bindings of pybokeh._cuda and
// pybokeh._cuda_emu (pybokeh._core.render's arguments, plus the CoC limit and
// the layer-buffer budget).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bokeh_math.h"
#include "render_gpu.h"

namespace pybokeh {
namespace binding {

namespace py = pybind11;

// Holds the checked arrays (kept alive) and the filled-in arguments.
struct HostCall {
  py::array image, coc, lut, ext, gain, out;
  GpuRenderArgs args;
};

inline PixelType pixel_type(const py::array& image) {
  if (py::isinstance<py::array_t<uint8_t>>(image)) return PixelType::kU8;
  if (py::isinstance<py::array_t<uint16_t>>(image)) return PixelType::kU16;
  if (py::isinstance<py::array_t<float>>(image)) return PixelType::kF32;
  throw std::invalid_argument("image dtype must be uint8, uint16 or float32");
}

// The two aperture shapes (behind / in front of the focus plane), checked as
// pybokeh._core.render checks them.
inline void set_aperture(int blades, const py::array& aperture_luts, const py::array& aperture_extents,
                         HostCall& call) {
  if (blades != 0 && (blades < 3 || blades > 16)) throw std::invalid_argument("blades must be 0 or 3..16");
  auto ext = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(aperture_extents);
  if (!ext || ext.ndim() != 2 || ext.shape(0) != 2 || ext.shape(1) != 2)
    throw std::invalid_argument("aperture_extents must be a (2, 2) float32 array");
  if (blades) {
    auto luts = py::array_t<float, py::array::c_style>::ensure(aperture_luts);
    if (!luts || luts.ndim() != 3 || luts.shape(0) != 2 || luts.shape(1) != kApertureLutSize + 1 ||
        luts.shape(2) != 2)
      throw std::invalid_argument("aperture_luts must be a (2, " + std::to_string(kApertureLutSize + 1) +
                                  ", 2) float32 array");
    call.lut = luts;
  }
  call.ext = ext;
  RenderParams& p = call.args.params;
  for (int side = 0; side < 2; ++side) {
    ApertureShape& ap = p.shape[side];
    ap.blades = blades;
    ap.lut = blades ? static_cast<const float*>(call.lut.data()) + (size_t)side * (kApertureLutSize + 1) * 2
                    : nullptr;
    ap.ext_lo = ext.at(side, 0);
    ap.ext_hi = ext.at(side, 1);
    if (!(ap.ext_lo < 0.0f && ap.ext_hi > 0.0f && ap.ext_lo >= -1.0f && ap.ext_hi <= 1.0f))
      throw std::invalid_argument("aperture_extents must lie in [-1, 1] around 0");
  }
}

inline void set_limits(HostCall& call, float max_abs_coc, long long budget_bytes) {
  if (budget_bytes < 0) throw std::invalid_argument("budget_bytes must be >= 0");
  if (!(max_abs_coc > 0.0f)) throw std::invalid_argument("max_abs_coc must be positive");
  call.args.max_abs_coc = max_abs_coc;
  call.args.budget_bytes = (size_t)budget_bytes;
}

// The per-pixel highlight gain: None, or an H x W float32 array (checked as
// pybokeh._core.render checks it; a host pointer in args).
inline void set_gain_map(const py::object& highlight_gain, HostCall& call) {
  call.args.params.highlight_gain = nullptr;
  if (highlight_gain.is_none()) return;
  auto gain = py::array_t<float, py::array::c_style>::ensure(highlight_gain);
  if (!gain || gain.ndim() != 2 || gain.shape(0) != call.image.shape(0) || gain.shape(1) != call.image.shape(1))
    throw std::invalid_argument("highlight_gain must be None or an H x W float32 array");
  call.gain = gain;
  call.args.params.highlight_gain = gain.data();
}

// Checks host arrays like pybokeh._core.render and allocates the output.
inline HostCall host_call(py::array image, py::array coc, int blades, py::array aperture_luts,
                          py::array aperture_extents, const py::object& gain, float max_abs_coc,
                          long long budget_bytes) {
  HostCall call;
  if (image.ndim() != 3 || image.shape(2) != 3) throw std::invalid_argument("image must be an H x W x 3 array");
  if (coc.ndim() != 2 || coc.shape(0) != image.shape(0) || coc.shape(1) != image.shape(1))
    throw std::invalid_argument("coc must be an H x W array matching the image");
  if (!py::isinstance<py::array_t<float>>(coc) || !(coc.flags() & py::array::c_style))
    throw std::invalid_argument("coc must be a C-contiguous float32 array");
  if (!(image.flags() & py::array::c_style)) throw std::invalid_argument("image must be C-contiguous");
  if (image.shape(0) > (1 << 30) / 4 || image.shape(1) > (1 << 30) / 4)
    throw std::invalid_argument("image is too large");
  if (image.shape(0) == 0 || image.shape(1) == 0) throw std::invalid_argument("image must not be empty");
  call.args.type = pixel_type(image);
  set_aperture(blades, aperture_luts, aperture_extents, call);
  set_limits(call, max_abs_coc, budget_bytes);
  call.image = image;
  call.coc = coc;
  set_gain_map(gain, call);
  call.out = py::array(image.dtype(), {image.shape(0), image.shape(1), (py::ssize_t)3});
  call.args.image = image.data();
  call.args.coc = static_cast<const float*>(coc.data());
  call.args.out = call.out.mutable_data();
  call.args.height = (int)image.shape(0);
  call.args.width = (int)image.shape(1);
  return call;
}

}  // namespace binding
}  // namespace pybokeh
