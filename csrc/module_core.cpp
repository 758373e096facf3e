// pybind11 bindings of the CPU renderer: pybokeh._core.
//
// The Python layer (pybokeh/renderer/) validates user input, computes the CoC
// map and the aperture table; module_args.h re-checks shapes and dtypes so that
// a direct call can raise but never crash.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "bokeh_math.h"
#include "module_args.h"
#include "render_cpu.h"

namespace py = pybind11;
using namespace pybokeh;

namespace {

template <typename T>
py::array_t<T> render_typed(py::array_t<T, py::array::c_style> image, const py::array& coc, const RenderParams& params) {
  const int H = (int)image.shape(0), W = (int)image.shape(1);
  py::array_t<T> out({(py::ssize_t)H, (py::ssize_t)W, (py::ssize_t)3});
  const T* src = image.data();
  CocMap c;  // checked: C-contiguous float32 or int16
  if (py::isinstance<py::array_t<int16_t>>(coc))
    c.steps = static_cast<const int16_t*>(coc.data());
  else
    c.px = static_cast<const float*>(coc.data());
  T* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    render_cpu<T>(src, c, dst, H, W, params);
  }
  return out;
}

py::array render(py::array image, py::array coc, int blades, py::array aperture_luts, py::array aperture_extents,
                 py::object highlight_gain, py::object threads) {
  binding::check_image_and_coc(image, coc, /*steps_allowed=*/true);
  RenderParams p;
  py::array luts, ext, gain;  // kept alive while p points into them
  binding::set_aperture(blades, aperture_luts, aperture_extents, p, luts, ext);
  binding::set_gain_map(highlight_gain, image, p, gain);
  p.threads = binding::thread_count(threads);
  if (py::isinstance<py::array_t<uint8_t>>(image)) return render_typed<uint8_t>(image, coc, p);
  if (py::isinstance<py::array_t<uint16_t>>(image)) return render_typed<uint16_t>(image, coc, p);
  if (py::isinstance<py::array_t<float>>(image)) return render_typed<float>(image, coc, p);
  throw std::invalid_argument("image dtype must be uint8, uint16 or float32");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "pybokeh compiled CPU kernels (occlusion-aware layered scatter renderer)";
  m.def("render", &render, py::arg("image"), py::arg("coc"), py::arg("blades"), py::arg("aperture_luts"),
        py::arg("aperture_extents"), py::arg("highlight_gain"),
        py::arg("threads"),
        "Render lens blur. image: HxWx3 uint8/uint16/float32 sRGB; coc: HxW signed CoC radius, float32 px or "
        "int16 steps of 1/COC_STEPS_PER_PX px (half the memory); highlight_gain: None or HxW float32 gain for "
        "clipped channels.");
  m.attr("APERTURE_LUT_SIZE") = kApertureLutSize;
  m.attr("IN_FOCUS_RADIUS") = kInFocusRadius;
  m.attr("MAX_GRID_RADIUS") = kMaxGridRadius;
  m.attr("MAX_COC_RADIUS") = kMaxCocRadius;
  m.attr("COC_STEPS_PER_PX") = kCocStepsPerPx;
  m.attr("MAX_HIGHLIGHT_GAIN") = kMaxHighlightGain;
  m.attr("MAX_PIXELS") = kMaxPixels;
  m.attr("MAX_THREADS") = binding::kMaxThreads;
}
