// pybind11 bindings of the CUDA renderer: pybokeh._cuda.
//
// Linked with the static CUDA runtime, so it imports without the toolkit; the
// driver is loaded on the first CUDA call, and a machine without driver or GPU
// gets a clear status from device_status() instead of a failed import.
//
//   render(...)         NumPy arrays in and out (copied to the device and back)
//   render_device(...)  device pointers (torch / CuPy memory) on a given stream
//   device_status()     (number of usable devices, description or reason)
#include <cuda_runtime_api.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "module_gpu_common.h"
#include "render_gpu.h"

namespace py = pybind11;
using namespace pybokeh;

#define PB_CHECK(call) ::pybokeh::cuda_check((int)(call), #call, __FILE__, __LINE__)

namespace {

// Oldest GPU the shipped binaries run on (sm_75 SASS; PTX for newer ones).
constexpr int kMinComputeCapability = 75;

// Makes `device` current for the scope of a call (-1: keep the current one).
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    if (device < 0) return;
    PB_CHECK(cudaGetDevice(&prev_));
    if (prev_ != device) PB_CHECK(cudaSetDevice(device));
    else prev_ = -1;
  }
  ~DeviceScope() {
    if (prev_ >= 0) cudaSetDevice(prev_);
  }

 private:
  int prev_ = -1;
};

// Device memory from the renderer's pool, stream-ordered on `stream`.
class DeviceBuffer {
 public:
  DeviceBuffer(size_t bytes, cudaStream_t stream) : stream_(stream) { ptr_ = gpu_pool_alloc(bytes, stream); }
  ~DeviceBuffer() { gpu_pool_free(ptr_, stream_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

class Stream {
 public:
  Stream() { PB_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s_) cudaStreamDestroy(s_);
  }
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

py::tuple device_status() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return py::make_tuple(0, std::string("the CUDA runtime found no usable driver or device: ") +
                                 cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
  }
  if (n == 0) return py::make_tuple(0, std::string("no CUDA device is present"));
  int usable = 0;
  std::string desc, skipped;
  for (int d = 0; d < n; ++d) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    const int cc = prop.major * 10 + prop.minor;
    std::string item = "cuda:" + std::to_string(d) + " " + prop.name + " (compute capability " +
                       std::to_string(prop.major) + "." + std::to_string(prop.minor) + ")";
    if (cc < kMinComputeCapability) {
      skipped += (skipped.empty() ? "" : ", ") + item;
      continue;
    }
    ++usable;
    desc += (desc.empty() ? "" : ", ") + item;
  }
  if (!usable)
    return py::make_tuple(0, "no CUDA device with compute capability >= 7.5 (found " + skipped + ")");
  return py::make_tuple(usable, desc);
}

// The device of a pointer, checking that it is device (or managed) memory.
void check_device_pointer(std::uintptr_t ptr, int device, const char* name) {
  if (!ptr) throw std::invalid_argument(std::string(name) + " is a null pointer");
  cudaPointerAttributes attr;
  cudaError_t err = cudaPointerGetAttributes(&attr, reinterpret_cast<void*>(ptr));
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::invalid_argument(std::string(name) + " is not CUDA memory (" + cudaGetErrorString(err) + ")");
  }
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)
    throw std::invalid_argument(std::string(name) + " must be device memory, got host or unregistered memory");
  if (attr.device != device)
    throw std::invalid_argument(std::string(name) + " lives on cuda:" + std::to_string(attr.device) +
                                ", not on the rendering device cuda:" + std::to_string(device));
}

py::array render_host(py::array image, py::array coc, int blades, py::array aperture_luts, py::array aperture_extents,
                      py::object gain, float max_abs_coc, long long budget_bytes, int device) {
  binding::HostCall call =
      binding::host_call(image, coc, blades, aperture_luts, aperture_extents, gain, max_abs_coc, budget_bytes);
  GpuRenderArgs args = call.args;
  const size_t n = (size_t)args.height * args.width;
  const size_t image_bytes = n * 3 * image.itemsize();
  {
    py::gil_scoped_release release;
    DeviceScope scope(device);
    Stream stream;
    const bool has_gain = args.params.highlight_gain != nullptr;
    DeviceBuffer d_image(image_bytes, stream.get()), d_out(image_bytes, stream.get()),
        d_coc(n * sizeof(float), stream.get()), d_gain(has_gain ? n * sizeof(float) : 0, stream.get());
    PB_CHECK(cudaMemcpyAsync(d_image.get(), args.image, image_bytes, cudaMemcpyHostToDevice, stream.get()));
    PB_CHECK(cudaMemcpyAsync(d_coc.get(), args.coc, n * sizeof(float), cudaMemcpyHostToDevice, stream.get()));
    if (has_gain)
      PB_CHECK(cudaMemcpyAsync(d_gain.get(), args.params.highlight_gain, n * sizeof(float), cudaMemcpyHostToDevice,
                               stream.get()));
    void* host_out = args.out;
    args.image = d_image.get();
    args.coc = static_cast<const float*>(d_coc.get());
    args.params.highlight_gain = has_gain ? static_cast<const float*>(d_gain.get()) : nullptr;
    args.out = d_out.get();
    render_gpu_cuda(args, stream.get());
    PB_CHECK(cudaMemcpyAsync(host_out, d_out.get(), image_bytes, cudaMemcpyDeviceToHost, stream.get()));
    PB_CHECK(cudaStreamSynchronize(stream.get()));
  }
  return call.out;
}

void render_device(std::uintptr_t image_ptr, std::uintptr_t coc_ptr, std::uintptr_t out_ptr, int height, int width,
                   const std::string& dtype, int blades, py::array aperture_luts, py::array aperture_extents,
                   std::uintptr_t gain_ptr, float max_abs_coc, std::uintptr_t stream, int device,
                   long long budget_bytes) {
  binding::HostCall call;
  if (dtype == "uint8") call.args.type = PixelType::kU8;
  else if (dtype == "uint16") call.args.type = PixelType::kU16;
  else if (dtype == "float32") call.args.type = PixelType::kF32;
  else throw std::invalid_argument("dtype must be 'uint8', 'uint16' or 'float32', got '" + dtype + "'");
  if (height <= 0 || width <= 0) throw std::invalid_argument("height and width must be positive");
  if (device < 0) throw std::invalid_argument("device must be a CUDA device index >= 0");
  binding::set_aperture(blades, aperture_luts, aperture_extents, call.args.params, call.lut, call.ext);
  binding::set_limits(call, max_abs_coc, budget_bytes);
  const size_t item = call.args.type == PixelType::kU8 ? 1 : (call.args.type == PixelType::kU16 ? 2 : 4);
  if (image_ptr % item || out_ptr % item || coc_ptr % sizeof(float) || gain_ptr % sizeof(float))
    throw std::invalid_argument("device pointers must be aligned to their element size");
  call.args.height = height;
  call.args.width = width;
  call.args.image = reinterpret_cast<const void*>(image_ptr);
  call.args.coc = reinterpret_cast<const float*>(coc_ptr);
  call.args.out = reinterpret_cast<void*>(out_ptr);
  call.args.params.highlight_gain = reinterpret_cast<const float*>(gain_ptr);  // null: no boost
  py::gil_scoped_release release;
  DeviceScope scope(device);
  check_device_pointer(image_ptr, device, "image");
  check_device_pointer(coc_ptr, device, "coc");
  check_device_pointer(out_ptr, device, "out");
  if (gain_ptr) check_device_pointer(gain_ptr, device, "highlight_gain");
  render_gpu_cuda(call.args, reinterpret_cast<void*>(stream));
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "pybokeh CUDA kernels (occlusion-aware layered scatter renderer on the GPU)";
  static py::exception<CudaError> cuda_error(m, "CudaError", PyExc_RuntimeError);
  static py::exception<CudaError> cuda_oom(m, "CudaOutOfMemoryError", cuda_error.ptr());
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const CudaError& e) {
      PyErr_SetString(e.oom ? cuda_oom.ptr() : cuda_error.ptr(), e.what());
    }
  });
  m.def("device_status", &device_status,
        "(usable device count, description) — (0, reason) without driver or device; never raises.");
  m.def("render", &render_host, py::arg("image"), py::arg("coc"), py::arg("blades"), py::arg("aperture_luts"),
        py::arg("aperture_extents"), py::arg("highlight_gain"), py::arg("max_abs_coc") = 4096.0f,
        py::arg("budget_bytes") = 0, py::arg("device") = -1,
        "Render lens blur on the GPU from NumPy arrays (same arguments as pybokeh._core.render; highlight_gain "
        "None or H x W float32); image, CoC and gain map are copied to the device and the result back.");
  m.def("render_device", &render_device, py::arg("image_ptr"), py::arg("coc_ptr"), py::arg("out_ptr"),
        py::arg("height"), py::arg("width"), py::arg("dtype"), py::arg("blades"), py::arg("aperture_luts"),
        py::arg("aperture_extents"), py::arg("highlight_gain_ptr"), py::arg("max_abs_coc"), py::arg("stream"),
        py::arg("device"), py::arg("budget_bytes") = 0,
        "Render from device memory: image (H x W x 3, C-contiguous, dtype), coc (H x W float32) and the "
        "highlight gain map (H x W float32; pointer 0: no boost) into out, all on `device`, queued on `stream` "
        "(a cudaStream_t as int; 0 = legacy default), which is synchronised before return.");
  m.def(
      "_debug_malloc",
      [](long long nbytes, int device) {
        py::gil_scoped_release release;
        DeviceScope scope(device);
        DeviceBuffer b((size_t)nbytes, nullptr);  // the legacy default stream
      },
      py::arg("nbytes"), py::arg("device") = -1, "Allocate and free nbytes (tests the error path).");
  m.def(
      "_debug_bad_launch",
      [](int device) {
        py::gil_scoped_release release;
        DeviceScope scope(device);
        render_gpu_cuda_bad_launch();
      },
      py::arg("device") = -1, "Launch a kernel with an invalid configuration (tests the error path).");
  m.attr("MIN_COMPUTE_CAPABILITY") = kMinComputeCapability;
}
