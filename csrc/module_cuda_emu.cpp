// pybokeh._cuda_emu: the CUDA renderer's plan and per-thread steps run serially
// on the CPU.  Slow; it exists so that machines without a GPU test the CUDA
// backend's logic (see tests/renderer/cuda/).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "module_gpu_common.h"
#include "render_gpu.h"

namespace py = pybind11;
using namespace pybokeh;

PYBIND11_MODULE(_cuda_emu, m) {
  m.doc() = "Serial CPU emulation of pybokeh._cuda (same plan and per-thread steps), for tests";
  m.def(
      "render",
      [](py::array image, py::array coc, int blades, py::array aperture_luts, py::array aperture_extents,
         py::object highlight_gain, float max_abs_coc, long long budget_bytes) {
        binding::HostCall call = binding::host_call(image, coc, blades, aperture_luts, aperture_extents,
                                                    highlight_gain, max_abs_coc, budget_bytes);
        {
          py::gil_scoped_release release;
          render_gpu_emulated(call.args);
        }
        return call.out;
      },
      py::arg("image"), py::arg("coc"), py::arg("blades"), py::arg("aperture_luts"), py::arg("aperture_extents"),
      py::arg("highlight_gain"), py::arg("max_abs_coc") = 4096.0f,
      py::arg("budget_bytes") = 0,
      "Render like pybokeh._cuda.render, serially on the CPU. highlight_gain: None or H x W float32; "
      "budget_bytes bounds the layer buffers rendered together (0: 1 GiB), to exercise the multi-group path.");
}
