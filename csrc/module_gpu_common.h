// Argument checking shared by the bindings of pybokeh._cuda and
// pybokeh._cuda_emu (pybokeh._core.render's arguments, plus the CoC limit and
// the layer-buffer budget).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bokeh_math.h"
#include "module_args.h"
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

inline void set_limits(HostCall& call, float max_abs_coc, long long budget_bytes) {
  if (budget_bytes < 0) throw std::invalid_argument("budget_bytes must be >= 0");
  if (!(max_abs_coc > 0.0f && max_abs_coc <= kMaxCocRadius))
    throw std::invalid_argument("max_abs_coc must lie in (0, " + std::to_string((int)kMaxCocRadius) + "]");
  call.args.max_abs_coc = max_abs_coc;
  call.args.budget_bytes = (size_t)budget_bytes;
}

// Checks host arrays like pybokeh._core.render and allocates the output.
inline HostCall host_call(py::array image, py::array coc, int blades, py::array aperture_luts,
                          py::array aperture_extents, const py::object& gain, float max_abs_coc,
                          long long budget_bytes) {
  HostCall call;
  check_image_and_coc(image, coc);
  if (image.shape(0) == 0 || image.shape(1) == 0) throw std::invalid_argument("image must not be empty");
  call.args.type = pixel_type(image);
  set_aperture(blades, aperture_luts, aperture_extents, call.args.params, call.lut, call.ext);
  set_limits(call, max_abs_coc, budget_bytes);
  call.image = image;
  call.coc = coc;
  set_gain_map(gain, image, call.args.params, call.gain);
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
