// pybind11 bindings for the CPU renderer (placeholder until the renderer lands).
#include <pybind11/pybind11.h>
namespace py = pybind11;
PYBIND11_MODULE(_core, m) {
  m.doc() = "pybokeh compiled CPU kernels";
  m.def("abi_version", []() { return 1; });
}
