// pybind11 bindings of the CPU renderer: pybokeh._core.
//
// The Python layer (pybokeh/renderer/) validates user input, computes the CoC
// map and the aperture table; this module re-checks shapes and dtypes so that a
// direct call can raise but never crash.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "bokeh_math.h"
#include "render_cpu.h"

namespace py = pybind11;
using namespace pybokeh;

namespace {

template <typename T>
py::array_t<T> render_typed(py::array_t<T, py::array::c_style> image, py::array_t<float, py::array::c_style> coc,
                            const RenderParams& params) {
  const int H = (int)image.shape(0), W = (int)image.shape(1);
  py::array_t<T> out({(py::ssize_t)H, (py::ssize_t)W, (py::ssize_t)3});
  const T* src = image.data();
  const float* c = coc.data();
  T* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    render_cpu<T>(src, c, dst, H, W, params);
  }
  return out;
}

py::array render(py::array image, py::array coc, int blades, py::array aperture_luts, py::array aperture_extents,
                 py::object highlight_gain, int threads) {
  if (image.ndim() != 3 || image.shape(2) != 3)
    throw std::invalid_argument("image must be an H x W x 3 array");
  if (coc.ndim() != 2 || coc.shape(0) != image.shape(0) || coc.shape(1) != image.shape(1))
    throw std::invalid_argument("coc must be an H x W array matching the image");
  if (!py::isinstance<py::array_t<float>>(coc) || !(coc.flags() & py::array::c_style))
    throw std::invalid_argument("coc must be a C-contiguous float32 array");
  if (!(image.flags() & py::array::c_style)) throw std::invalid_argument("image must be C-contiguous");
  if (image.shape(0) > (1 << 30) / 4 || image.shape(1) > (1 << 30) / 4)
    throw std::invalid_argument("image is too large");
  if (blades != 0 && (blades < 3 || blades > 16)) throw std::invalid_argument("blades must be 0 or 3..16");
  if (threads < 1) throw std::invalid_argument("threads must be >= 1");

  auto ext = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(aperture_extents);
  if (!ext || ext.ndim() != 2 || ext.shape(0) != 2 || ext.shape(1) != 2)
    throw std::invalid_argument("aperture_extents must be a (2, 2) float32 array");
  py::array_t<float, py::array::c_style> luts;
  if (blades) {
    luts = py::array_t<float, py::array::c_style>::ensure(aperture_luts);
    if (!luts || luts.ndim() != 3 || luts.shape(0) != 2 || luts.shape(1) != kApertureLutSize + 1 ||
        luts.shape(2) != 2)
      throw std::invalid_argument("aperture_luts must be a (2, " + std::to_string(kApertureLutSize + 1) +
                                  ", 2) float32 array");
  }
  RenderParams p;
  for (int side = 0; side < 2; ++side) {
    p.shape[side].blades = blades;
    p.shape[side].lut = blades ? luts.data() + (size_t)side * (kApertureLutSize + 1) * 2 : nullptr;
    p.shape[side].ext_lo = ext.at(side, 0);
    p.shape[side].ext_hi = ext.at(side, 1);
    if (!(p.shape[side].ext_lo < 0.0f && p.shape[side].ext_hi > 0.0f && p.shape[side].ext_lo >= -1.0f &&
          p.shape[side].ext_hi <= 1.0f))
      throw std::invalid_argument("aperture_extents must lie in [-1, 1] around 0");
  }
  py::array_t<float, py::array::c_style> gain;
  if (!highlight_gain.is_none()) {
    gain = py::array_t<float, py::array::c_style>::ensure(highlight_gain);
    if (!gain || gain.ndim() != 2 || gain.shape(0) != image.shape(0) || gain.shape(1) != image.shape(1))
      throw std::invalid_argument("highlight_gain must be None or an H x W float32 array");
    p.highlight_gain = gain.data();
  }
  p.threads = threads;
  auto cf = py::array_t<float, py::array::c_style>::ensure(coc);
  if (py::isinstance<py::array_t<uint8_t>>(image)) return render_typed<uint8_t>(image, cf, p);
  if (py::isinstance<py::array_t<uint16_t>>(image)) return render_typed<uint16_t>(image, cf, p);
  if (py::isinstance<py::array_t<float>>(image)) return render_typed<float>(image, cf, p);
  throw std::invalid_argument("image dtype must be uint8, uint16 or float32");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "pybokeh compiled CPU kernels (occlusion-aware layered scatter renderer)";
  m.def("render", &render, py::arg("image"), py::arg("coc"), py::arg("blades"), py::arg("aperture_luts"),
        py::arg("aperture_extents"), py::arg("highlight_gain"),
        py::arg("threads"),
        "Render lens blur. image: HxWx3 uint8/uint16/float32 sRGB; coc: HxW float32 signed CoC radius (px); "
        "highlight_gain: None or HxW float32 gain for clipped channels.");
  m.attr("APERTURE_LUT_SIZE") = kApertureLutSize;
  m.attr("IN_FOCUS_RADIUS") = kInFocusRadius;
  m.attr("MAX_GRID_RADIUS") = kMaxGridRadius;
}
