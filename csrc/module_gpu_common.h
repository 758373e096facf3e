// Argument checking shared by the bindings of pybokeh._cuda and
// pybokeh._cuda_emu (same signature as pybokeh._core.render, plus the CoC
// limit and the layer-buffer budget).
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
  py::array image, coc, lut, out;
  GpuRenderArgs args;
};

inline PixelType pixel_type(const py::array& image) {
  if (py::isinstance<py::array_t<uint8_t>>(image)) return PixelType::kU8;
  if (py::isinstance<py::array_t<uint16_t>>(image)) return PixelType::kU16;
  if (py::isinstance<py::array_t<float>>(image)) return PixelType::kF32;
  throw std::invalid_argument("image dtype must be uint8, uint16 or float32");
}

inline void check_aperture(int blades, const py::array& aperture_lut, HostCall& call) {
  if (blades != 0 && (blades < 3 || blades > 16)) throw std::invalid_argument("blades must be 0 or 3..16");
  if (blades) {
    auto lut = py::array_t<float, py::array::c_style>::ensure(aperture_lut);
    if (!lut || lut.ndim() != 2 || lut.shape(0) != kApertureLutSize + 1 || lut.shape(1) != 2)
      throw std::invalid_argument("aperture_lut must be a (" + std::to_string(kApertureLutSize + 1) +
                                  ", 2) float32 array");
    call.lut = lut;
    call.args.params.aperture_lut = lut.data();
  }
}

inline void fill_params(HostCall& call, int blades, float ext_lo, float ext_hi, float gain, float threshold,
                        float max_abs_coc, long long budget_bytes) {
  if (budget_bytes < 0) throw std::invalid_argument("budget_bytes must be >= 0");
  if (!(max_abs_coc > 0.0f)) throw std::invalid_argument("max_abs_coc must be positive");
  RenderParams& p = call.args.params;
  p.blades = blades;
  p.ext_lo = ext_lo;
  p.ext_hi = ext_hi;
  p.highlight_gain = gain;
  p.highlight_threshold = threshold;
  call.args.max_abs_coc = max_abs_coc;
  call.args.budget_bytes = (size_t)budget_bytes;
}

// Checks host arrays like pybokeh._core.render and allocates the output.
inline HostCall host_call(py::array image, py::array coc, int blades, py::array aperture_lut, float ext_lo,
                          float ext_hi, float gain, float threshold, float max_abs_coc, long long budget_bytes) {
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
  check_aperture(blades, aperture_lut, call);
  fill_params(call, blades, ext_lo, ext_hi, gain, threshold, max_abs_coc, budget_bytes);
  call.image = image;
  call.coc = coc;
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
