// Entry points of the GPU renderer (render_cuda.cu) and of its serial CPU
// emulation (render_gpu_emu.cpp), which runs the very same per-thread steps
// (gpu_steps.h) and plan (gpu_plan.h) in loops, so that the CUDA backend's
// logic is tested on machines without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "render_cpu.h"

namespace pybokeh {

enum class PixelType { kU8 = 0, kU16 = 1, kF32 = 2 };

struct GpuRenderArgs {
  const void* image = nullptr;  // H x W x 3, C-contiguous, of `type`
  const float* coc = nullptr;   // H x W signed CoC radius (px)
  void* out = nullptr;          // H x W x 3 of `type`
  int height = 0, width = 0;
  PixelType type = PixelType::kU8;
  RenderParams params;          // aperture_lut is a host pointer; threads is ignored
  float max_abs_coc = 4096.0f;  // larger or non-finite CoC is rejected
  size_t budget_bytes = 0;      // layer buffers rendered together (0: default)
};

// Failures of a CUDA call; the message names the call and the CUDA error.
class CudaError : public std::runtime_error {
 public:
  explicit CudaError(const std::string& what, bool out_of_memory = false)
      : std::runtime_error(what), oom(out_of_memory) {}
  bool oom;
};

// Throws CudaError unless `code` (a cudaError_t) is cudaSuccess.  Defined in
// render_cuda.cu.
void cuda_check(int code, const char* call, const char* file, int line);

// Serial emulation on host memory.  Throws std::invalid_argument on bad input.
void render_gpu_emulated(const GpuRenderArgs& args);

// CUDA: image, coc and out are device pointers on the current device; all work
// is queued on `stream` (a cudaStream_t), which is synchronised before return.
void render_gpu_cuda(const GpuRenderArgs& args, void* stream);

// Stream-ordered device memory from the renderer's own pool on the current
// device (cudaMalloc/cudaFree where it has no pools): the host path's
// buffers, so that a render does not pay cudaMalloc's device-wide
// synchronisation.  Free on the same device and stream.
void* gpu_pool_alloc(size_t bytes, void* stream);
void gpu_pool_free(void* ptr, void* stream);

// Launches a kernel with an invalid configuration, to test error reporting.
void render_gpu_cuda_bad_launch();

}  // namespace pybokeh
