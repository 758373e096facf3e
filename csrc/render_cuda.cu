// CUDA renderer: the layered scatter of render_cpu.cpp on the GPU.
//
// The per-thread work lives in gpu_steps.h (shared with the serial CPU
// emulation that the CPU test-suite runs), the layer planning in gpu_plan.h;
// this file holds the kernels that map those steps onto threads, the memory
// management and the error checking.  Pipeline (all on the caller's stream):
//
//   k_classify        pixel -> layer key; per-key count, |CoC| sum and bounding box; the
//                     largest highlight boost (sets the colour fixed point);
//                     coarse keys: histogram and bounding box of highlights
//   (one 24 KB copy to the host, the only synchronisation before the end: the
//    layer table, the fine-highlight thresholds and the buffer sizes depend on it)
//   k_aggregate       coarse layers: one splat per grid cell
//   k_aggregate_covers  one coverage splat per grid cell (coarse layers)
//   k_far_level       farthest-content pyramid, level by level
//   per group of layers whose buffers fit the memory budget:
//     memset, k_splat_pixels + k_splat_fine + k_splat_records (fixed-point
//     integer atomics; own splats, coverage of one radius, and the full-resolution
//     light of the fine highlights of coarse layers), k_scan (row prefix sums),
//     k_composite (back-to-front composite_over; the last group resolves the
//     uncovered parts with resolve_pixel and encodes)
//
// Determinism: see gpu_steps.h (integer markers, exact scans; every float
// computation is done by one thread in a fixed order).  Every CUDA call and
// launch is checked; errors become CudaError with the CUDA message.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <cub/block/block_scan.cuh>
#include <mutex>
#include <string>
#include <vector>

#include "gpu_plan.h"
#include "gpu_steps.h"
#include "render_gpu.h"

namespace pybokeh {

void cuda_check(int code, const char* call, const char* file, int line) {
  cudaError_t err = (cudaError_t)code;
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so that later calls work
  const char* base = std::strrchr(file, '/');
  std::string msg = std::string("CUDA error ") + cudaGetErrorName(err) + ": " + cudaGetErrorString(err) + " (in " +
                    call + ", " + (base ? base + 1 : file) + ":" + std::to_string(line) + ")";
  throw CudaError(msg, err == cudaErrorMemoryAllocation);
}

#define PB_CUDA_CHECK(call) ::pybokeh::cuda_check((int)(call), #call, __FILE__, __LINE__)
// After a launch: configuration errors now, execution errors at the final sync.
#define PB_CUDA_LAUNCHED(name) ::pybokeh::cuda_check((int)cudaGetLastError(), "launch of " name, __FILE__, __LINE__)

namespace {

using namespace gpu;

constexpr int kThreads = 256;
constexpr int kClassifyPerThread = 8;
constexpr int kClassifySpan = kThreads * kClassifyPerThread;  // pixels of a row per block
constexpr int kScanThreads = 256;
constexpr int kScanItems = 2;  // cells are 32 bytes: 2 per thread keep the registers down
constexpr long long kMaxBlocks = 1LL << 20;  // grid-stride loops beyond

unsigned blocks_for(long long n, int threads = kThreads) {
  long long b = (n + threads - 1) / threads;
  return (unsigned)std::max(1LL, std::min(b, kMaxBlocks));
}

// ----------------------------------------------------------------- memory

// The renderer's own stream-ordered memory pool per device.  It keeps up to
// kPoolKeepBytes of freed memory mapped, so that rendering frame after frame
// does not map and unmap device memory every time (the default pool returns
// everything at each synchronisation); it does not touch the default pool
// that other libraries may use.
constexpr uint64_t kPoolKeepBytes = 1ULL << 30;

cudaMemPool_t renderer_pool(int device) {
  static std::mutex mutex;
  static std::vector<cudaMemPool_t> pools;
  std::lock_guard<std::mutex> lock(mutex);
  if (device >= (int)pools.size()) pools.resize(device + 1, nullptr);
  if (!pools[device]) {
    cudaMemPoolProps props;
    std::memset(&props, 0, sizeof(props));
    props.allocType = cudaMemAllocationTypePinned;
    props.handleTypes = cudaMemHandleTypeNone;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = device;
    cudaMemPool_t pool;
    PB_CUDA_CHECK(cudaMemPoolCreate(&pool, &props));
    uint64_t keep = kPoolKeepBytes;
    PB_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    pools[device] = pool;
  }
  return pools[device];
}

// Stream-ordered allocation from the renderer's pool where the device supports
// memory pools (cudaMalloc otherwise); on failure the pool's cached memory is
// released and the allocation tried once more.
void* pool_alloc(size_t bytes, cudaStream_t stream, cudaMemPool_t pool) {
  void* ptr = nullptr;
  if (bytes == 0) return nullptr;
  if (!pool) {
    PB_CUDA_CHECK(cudaMalloc(&ptr, bytes));
    return ptr;
  }
  if (cudaMallocFromPoolAsync(&ptr, bytes, pool, stream) == cudaSuccess) return ptr;
  cudaGetLastError();
  ptr = nullptr;
  PB_CUDA_CHECK(cudaStreamSynchronize(stream));
  PB_CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
  PB_CUDA_CHECK(cudaMallocFromPoolAsync(&ptr, bytes, pool, stream));
  return ptr;
}

void pool_free(void* ptr, cudaStream_t stream, cudaMemPool_t pool) {
  if (!ptr) return;
  if (pool)
    cudaFreeAsync(ptr, stream);
  else
    cudaFree(ptr);
}

// The current device's renderer pool, or null where the device has no pools.
cudaMemPool_t current_pool() {
  int dev = 0, pools = 0;
  PB_CUDA_CHECK(cudaGetDevice(&dev));
  PB_CUDA_CHECK(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, dev));
  return pools ? renderer_pool(dev) : nullptr;
}

// pool_alloc'ed memory, freed on scope exit, also when an exception unwinds.
class DeviceMemory {
 public:
  DeviceMemory(size_t bytes, cudaStream_t stream, cudaMemPool_t pool)
      : ptr_(pool_alloc(bytes, stream, pool)), stream_(stream), pool_(pool) {}
  ~DeviceMemory() { pool_free(ptr_, stream_, pool_); }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  template <typename U>
  U* as() const {
    return static_cast<U*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
  cudaMemPool_t pool_;
};

template <typename U>
void upload(U* dst, const U* src, size_t count, cudaStream_t stream) {
  if (count) PB_CUDA_CHECK(cudaMemcpyAsync(dst, src, count * sizeof(U), cudaMemcpyHostToDevice, stream));
}

// ---------------------------------------------------------------- kernels

__global__ void k_init_stats(Stats* st) {
  int k = threadIdx.x;
  if (k < kNumKeys) {
    st->count[k] = 0;
    st->coc_units[k] = 0;
    st->ymin[k] = st->xmin[k] = INT_MAX;
    st->ymax[k] = st->xmax[k] = -1;
    st->fine_ymin[k] = st->fine_xmin[k] = INT_MAX;
    st->fine_ymax[k] = st->fine_xmax[k] = -1;
  }
  for (int j = k; j < kNumKeys * kFineLightBins; j += blockDim.x) (&st->fine_hist[0][0])[j] = 0;
  if (k == 0) {
    st->bad_image = st->bad_coc = st->bad_gain = 0;
    st->max_boost_bits = __float_as_uint(1.0f);
  }
}

// Keys of a block's pixels and their statistics: warp-aggregated shared
// atomics (lanes with equal keys elect one leader; lanes cover consecutive
// columns, so the group's first and last lanes give its x extent), then one
// global atomic per key and block.  Highlights of coarse keys (rare): their
// bounding box likewise, their histogram with warp-aggregated global atomics.
template <typename T>
__global__ void __launch_bounds__(kThreads) k_classify(const T* __restrict__ image, const float* __restrict__ coc,
                                                       uint8_t* __restrict__ keys, Params p, Stats* st) {
  __shared__ int s_count[kNumKeys], s_ymin[kNumKeys], s_ymax[kNumKeys], s_xmin[kNumKeys], s_xmax[kNumKeys];
  __shared__ unsigned long long s_units[kNumKeys];
  __shared__ int s_fymin[kNumKeys], s_fymax[kNumKeys], s_fxmin[kNumKeys], s_fxmax[kNumKeys];
  __shared__ int s_bad_image, s_bad_coc, s_bad_gain;
  __shared__ unsigned s_max_boost;
  const int tid = threadIdx.x, lane = tid & 31;
  for (int k = tid; k < kNumKeys; k += blockDim.x) {
    s_count[k] = 0;
    s_units[k] = 0;
    s_ymin[k] = s_xmin[k] = INT_MAX;
    s_ymax[k] = s_xmax[k] = -1;
    s_fymin[k] = s_fxmin[k] = INT_MAX;
    s_fymax[k] = s_fxmax[k] = -1;
  }
  if (tid == 0) {
    s_bad_image = s_bad_coc = s_bad_gain = 0;
    s_max_boost = __float_as_uint(1.0f);
  }
  __syncthreads();
  bool bad_image = false, bad_coc = false, bad_gain = false;
  float max_boost = 1.0f;
  for (int y = blockIdx.y; y < p.height; y += gridDim.y) {  // uniform per block
    for (int it = 0; it < kClassifyPerThread; ++it) {
      const int x = blockIdx.x * kClassifySpan + it * kThreads + tid;
      const bool active = x < p.width;
      int key = 0, fbin = 0;
      unsigned units = 0;  // coc_units(|CoC|): <= 2^22 for a valid CoC, so a warp's sum fits 32 bits
      if (active) {
        const size_t i = (size_t)y * p.width + x;
        const float c = coc[i];
        bad_image |= !pixel_valid(image + 3 * i);
        bad_coc |= !coc_valid(c, p.max_abs_coc);
        if (p.gain_map) {
          bad_gain |= !gain_valid(p.gain_map[i]);
          max_boost = fmaxf(max_boost, pixel_boost(p.gain_map, coc, i));
        }
        key = pixel_key(c);
        keys[i] = (uint8_t)key;
        units = (unsigned)coc_units(fabsf(c));
        fbin = pixel_fine_bin(image, coc, i, p, key);
      }
      const unsigned mask = __ballot_sync(0xffffffffu, active);
      if (active) {
        const unsigned peers = __match_any_sync(mask, key);
        const int first = __ffs(peers) - 1;
        // The peers' |CoC| sum (an invalid CoC may wrap it; it is an error
        // anyway), one shared atomic per group.
#if __CUDA_ARCH__ >= 800
        const unsigned sum = __reduce_add_sync(peers, units);
#else
        unsigned sum = 0;
        for (unsigned m = peers; m; m &= m - 1) sum += __shfl_sync(peers, units, __ffs(m) - 1);
#endif
        if (lane == first) {
          const int last = 31 - __clz(peers);
          const int x0 = x - lane;
          atomicAdd(&s_count[key], __popc(peers));
          atomicAdd(&s_units[key], (unsigned long long)sum);
          atomicMin(&s_xmin[key], x0 + first);
          atomicMax(&s_xmax[key], x0 + last);
          atomicMin(&s_ymin[key], y);
          atomicMax(&s_ymax[key], y);
        }
      }
      const unsigned bright = __ballot_sync(0xffffffffu, active && fbin > 0);
      if (active && fbin > 0) {
        const unsigned peers = __match_any_sync(bright, key);
        const int first = __ffs(peers) - 1;
        if (lane == first) {
          const int last = 31 - __clz(peers);
          const int x0 = x - lane;
          atomicMin(&s_fxmin[key], x0 + first);
          atomicMax(&s_fxmax[key], x0 + last);
          atomicMin(&s_fymin[key], y);
          atomicMax(&s_fymax[key], y);
        }
        const unsigned bin_peers = __match_any_sync(bright, key * kFineLightBins + fbin);
        if (lane == __ffs(bin_peers) - 1) atomicAdd(&st->fine_hist[key][fbin], __popc(bin_peers));
      }
    }
  }
  if (bad_image) s_bad_image = 1;
  if (bad_coc) s_bad_coc = 1;
  if (bad_gain) s_bad_gain = 1;
  // Boost factors are >= 1 (or NaN, flagged above): their float bits order like unsigned ints.
  if (max_boost > 1.0f) atomicMax(&s_max_boost, __float_as_uint(max_boost));
  __syncthreads();
  for (int k = tid; k < kNumKeys; k += blockDim.x) {
    if (s_count[k] == 0) continue;
    atomicAdd(&st->count[k], s_count[k]);
    atomicAdd(&st->coc_units[k], s_units[k]);
    atomicMin(&st->ymin[k], s_ymin[k]);
    atomicMax(&st->ymax[k], s_ymax[k]);
    atomicMin(&st->xmin[k], s_xmin[k]);
    atomicMax(&st->xmax[k], s_xmax[k]);
    if (s_fymax[k] < 0) continue;
    atomicMin(&st->fine_ymin[k], s_fymin[k]);
    atomicMax(&st->fine_ymax[k], s_fymax[k]);
    atomicMin(&st->fine_xmin[k], s_fxmin[k]);
    atomicMax(&st->fine_xmax[k], s_fxmax[k]);
  }
  if (tid == 0) {
    if (s_bad_image) atomicOr(&st->bad_image, 1);
    if (s_bad_coc) atomicOr(&st->bad_coc, 1);
    if (s_bad_gain) atomicOr(&st->bad_gain, 1);
    if (s_max_boost != __float_as_uint(1.0f)) atomicMax(&st->max_boost_bits, s_max_boost);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) k_aggregate(const T* __restrict__ image, const float* __restrict__ coc,
                                                        const uint8_t* __restrict__ keys, Params p, AggPass ag,
                                                        const LayerDesc* __restrict__ layers,
                                                        Record* __restrict__ records) {
  const long long n = (long long)ag.ncy * ag.ncx;
  for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < n; t += (long long)gridDim.x * blockDim.x) {
    const int cy = (int)(t / ag.ncx), cx = (int)(t % ag.ncx);
    aggregate_layers(image, coc, keys, p, ag, layers, records, ag.cx0 + cx, ag.cy0 + cy);
  }
}

// A kernel of its own: fused into k_aggregate, its sums raised that kernel's
// registers from 128 to ~200 per thread.
__global__ void __launch_bounds__(kThreads) k_aggregate_covers(const uint8_t* __restrict__ keys, Params p,
                                                                 AggPass ag, const LayerDesc* __restrict__ layers,
                                                                 CoverRecord* __restrict__ crecords) {
  const long long n = (long long)ag.ncy * ag.ncx;
  for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < n; t += (long long)gridDim.x * blockDim.x) {
    const int cy = (int)(t / ag.ncx), cx = (int)(t % ag.ncx);
    aggregate_covers(keys, p, ag, layers, crecords, ag.cx0 + cx, ag.cy0 + cy);
  }
}

// Level-0 splats: one thread per pixel of rows [y0, y0 + rows): the pixel's
// own splats (light and coverage), and its coverage splat on the layer just
// farther.
template <typename T>
__global__ void __launch_bounds__(kThreads) k_splat_pixels(const T* __restrict__ image, const float* __restrict__ coc,
                                                           const uint8_t* __restrict__ keys, Params p, GroupDesc g,
                                                           const LayerDesc* __restrict__ layers, Cell* buf, int y0,
                                                           int rows) {
  const long long n = (long long)rows * p.width;
  for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < n; t += (long long)gridDim.x * blockDim.x) {
    const int y = y0 + (int)(t / p.width), x = (int)(t % p.width);
    const int key = keys[(size_t)y * p.width + x];
    const int l = g.layer_of_key[key], f = g.cover_of_key[key];
    if (l >= 0) {
      const LayerDesc L = layers[l];
      splat_pixel(image, coc, p, L, buf, x, y, AddWord());
    }
    if (f >= 0) {
      const LayerDesc F = layers[f];
      cover_pixel(p, F, buf, x, y, AddWord());
    }
  }
}

// Fine highlights of the group's coarse layers: one thread per pixel of the
// box [y0, y0 + rows) x [x0, x0 + cols); a highlight splats its light at full
// resolution into its layer's fine-light buffer.  A kernel of its own: fused
// into k_splat_pixels, it raised that kernel's registers from 80 to 123.
template <typename T>
__global__ void __launch_bounds__(kThreads) k_splat_fine(const T* __restrict__ image, const float* __restrict__ coc,
                                                         const uint8_t* __restrict__ keys, Params p, GroupDesc g,
                                                         const LayerDesc* __restrict__ layers, Cell* buf, int y0,
                                                         int x0, int rows, int cols) {
  const long long n = (long long)rows * cols;
  for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < n; t += (long long)gridDim.x * blockDim.x) {
    const int y = y0 + (int)(t / cols), x = x0 + (int)(t % cols);
    const int fl = g.fine_of_key[keys[(size_t)y * p.width + x]];
    if (fl >= 0) {
      const LayerDesc L = layers[fl];
      splat_fine_pixel(image, coc, p, L, buf, x, y, AddWord());
    }
  }
}

// Coarse splats: blockIdx.y picks the layer of the group; its records, then
// its coverage records.
__global__ void __launch_bounds__(kThreads) k_splat_records(Params p, GroupDesc g, const LayerDesc* __restrict__ layers,
                                                            const Record* __restrict__ records,
                                                            const CoverRecord* __restrict__ crecords, Cell* buf) {
  const LayerDesc L = layers[g.l0 + blockIdx.y];
  if (L.is_focus || L.level == 0) return;
  const long long n = (long long)L.rh * L.rw;
  const long long first = blockIdx.x * (long long)blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
  for (long long t = first; t < n; t += stride) {
    const Record rec = records[L.rec_offset + t];
    splat_record(rec, p, L, buf, AddWord());
  }
  const long long np = (long long)L.crh * L.crw;
  for (long long t = first; t < np; t += stride) {
    const CoverRecord ph = crecords[L.crec_offset + t];
    splat_cover_record(ph, p, L, buf, AddWord());
  }
}

struct SumCells {
  __device__ __forceinline__ Cell operator()(const Cell& a, const Cell& b) const { return a + b; }
};

// Running sum of the markers along each buffer row: one block per row
// (blockIdx.y picks the layer; its own rows, then its fine-light rows), tiles
// of kScanThreads * kScanItems cells.
__global__ void __launch_bounds__(kScanThreads) k_scan(GroupDesc g, const LayerDesc* __restrict__ layers, Cell* buf) {
  using BlockScan = cub::BlockScan<Cell, kScanThreads>;
  __shared__ typename BlockScan::TempStorage tmp;
  const LayerDesc L = layers[g.l0 + blockIdx.y];
  const int rows = scan_rows(L);
  const Cell zero = {{0u, 0u, 0u}, 0u, 0u};
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {  // uniform per block
    int len;
    Cell* row = scan_row(L, buf, r, &len);
    Cell carry = zero;
    for (int base = 0; base < len; base += kScanThreads * kScanItems) {
      Cell v[kScanItems];
#pragma unroll
      for (int k = 0; k < kScanItems; ++k) {
        const int c = base + threadIdx.x * kScanItems + k;
        v[k] = c < len ? row[c] : zero;
      }
      Cell tile_total;
      BlockScan(tmp).InclusiveScan(v, v, SumCells(), tile_total);
#pragma unroll
      for (int k = 0; k < kScanItems; ++k) {
        const int c = base + threadIdx.x * kScanItems + k;
        if (c < len) row[c] = v[k] + carry;
      }
      carry = carry + tile_total;
      __syncthreads();  // tmp is reused by the next tile
    }
  }
}

// One level of the farthest-content pyramid.
template <typename T>
__global__ void __launch_bounds__(kThreads) k_far_level(const T* __restrict__ image, const float* __restrict__ coc,
                                                        const uint8_t* __restrict__ keys, Params p, int k,
                                                        uint8_t* far_layer, float* far_count, float* far_rgb,
                                                        float* far_depth) {
  const long long n = (long long)p.far.h[k] * p.far.w[k];
  for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < n; t += (long long)gridDim.x * blockDim.x)
    far_cell(image, coc, keys, p, k, (int)(t % p.far.w[k]), (int)(t / p.far.w[k]), far_layer, far_count, far_rgb,
             far_depth);
}

// Composite a group of layers; the last group also fills, encodes and writes
// the output.  Between groups the accumulator and what lies behind the
// visible layers (see composite_over) wait in acc / behind.
template <typename T>
__global__ void __launch_bounds__(kThreads) k_composite(const T* __restrict__ image, const float* __restrict__ coc,
                                                        const uint8_t* __restrict__ keys, Params p, GroupDesc g,
                                                        const LayerDesc* __restrict__ layers,
                                                        const Cell* __restrict__ buf, float4* acc, float4* behind,
                                                        T* out) {
  extern __shared__ LayerDesc s_layers[];  // the group's layers, read by every pixel
  for (int k = threadIdx.x; k < g.l1 - g.l0; k += blockDim.x) s_layers[k] = layers[g.l0 + k];
  __syncthreads();
  const long long n = (long long)p.height * p.width;
  for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < n; t += (long long)gridDim.x * blockDim.x) {
    const int y = (int)(t / p.width), x = (int)(t % p.width);
    float a[4] = {0.0f, 0.0f, 0.0f, 0.0f}, bh[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (!g.first) {
      const float4 v = acc[t], b = behind[t];
      a[0] = v.x; a[1] = v.y; a[2] = v.z; a[3] = v.w;
      bh[0] = b.x; bh[1] = b.y; bh[2] = b.z; bh[3] = b.w;
    }
    composite_pixel(image, coc, keys, p, s_layers, g, buf, x, y, a, bh);
    if (g.last) {
      finish_pixel(image, coc, p, x, y, a, bh, out);
    } else {
      acc[t] = make_float4(a[0], a[1], a[2], a[3]);
      behind[t] = make_float4(bh[0], bh[1], bh[2], bh[3]);
    }
  }
}

// ------------------------------------------------------------------ driver

template <typename T>
void run(const GpuRenderArgs& a, cudaStream_t stream) {
  const int H = a.height, W = a.width;
  const long long N = (long long)H * W;
  const T* image = static_cast<const T*>(a.image);
  T* out = static_cast<T*>(a.out);

  const cudaMemPool_t pool = current_pool();

  // Tables and parameters.
  const std::vector<float> dlut = decode_table<T>(), elut = encode_table();
  const int blades = a.params.shape[0].blades;
  const size_t nap = blades ? 2 * (size_t)(kApertureLutSize + 1) : 0;  // floats per shape table
  DeviceMemory d_luts((dlut.size() + elut.size() + 2 * nap) * sizeof(float), stream, pool);
  float* d_dlut = d_luts.as<float>();
  float* d_elut = d_dlut + dlut.size();
  upload(d_dlut, dlut.data(), dlut.size(), stream);
  upload(d_elut, elut.data(), elut.size(), stream);
  Params p = make_params(a);
  p.decode_lut = d_dlut;
  p.encode_lut = d_elut;
  for (int side = 0; side < 2; ++side) {
    float* d_alut = d_elut + elut.size() + side * nap;
    upload(d_alut, a.params.shape[side].lut, nap, stream);
    p.shape[side].lut = nap ? d_alut : nullptr;
  }

  // Classify, and bring the per-key statistics to the host.
  DeviceMemory d_keys((size_t)N, stream, pool), d_stats(sizeof(Stats), stream, pool);
  Stats* stats = d_stats.as<Stats>();
  uint8_t* keys = d_keys.as<uint8_t>();
  k_init_stats<<<1, 128, 0, stream>>>(stats);
  PB_CUDA_LAUNCHED("k_init_stats");
  dim3 cgrid((W + kClassifySpan - 1) / kClassifySpan, std::min(H, 65535));
  k_classify<T><<<cgrid, kThreads, 0, stream>>>(image, a.coc, keys, p, stats);
  PB_CUDA_LAUNCHED("k_classify");
  Stats st;
  PB_CUDA_CHECK(cudaMemcpyAsync(&st, stats, sizeof(Stats), cudaMemcpyDeviceToHost, stream));
  PB_CUDA_CHECK(cudaStreamSynchronize(stream));
  check_stats(st);
  set_fixed_point(p, max_boost(st));

  // Plan; the buffer budget leaves room for the caller's other work.
  size_t budget = a.budget_bytes;
  if (!budget) {
    size_t free_b = 0, total_b = 0;
    PB_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    budget = std::max((size_t)64 << 20, std::min((size_t)2 << 30, free_b / 4));
  }
  const Plan plan = make_plan(st, H, W, a.params, (long long)(budget / sizeof(Cell)));
  DeviceMemory d_layers(plan.layers.size() * sizeof(LayerDesc), stream, pool);
  const LayerDesc* layers = d_layers.as<LayerDesc>();
  upload(d_layers.as<LayerDesc>(), plan.layers.data(), plan.layers.size(), stream);

  // Coarse layers: one splat per grid cell.
  DeviceMemory d_records((size_t)plan.records * sizeof(Record), stream, pool);
  DeviceMemory d_crecords((size_t)plan.cover_records * sizeof(CoverRecord), stream, pool);
  Record* records = d_records.as<Record>();
  CoverRecord* crecords = d_crecords.as<CoverRecord>();
  if (plan.records) PB_CUDA_CHECK(cudaMemsetAsync(records, 0, (size_t)plan.records * sizeof(Record), stream));
  if (plan.cover_records)
    PB_CUDA_CHECK(cudaMemsetAsync(crecords, 0, (size_t)plan.cover_records * sizeof(CoverRecord), stream));
  for (const AggPass& ag : plan.passes) {
    const unsigned blocks = blocks_for((long long)ag.ncy * ag.ncx);
    if (ag.nslots) {
      k_aggregate<T><<<blocks, kThreads, 0, stream>>>(image, a.coc, keys, p, ag, layers, records);
      PB_CUDA_LAUNCHED("k_aggregate");
    }
    if (ag.npslots) {
      k_aggregate_covers<<<blocks, kThreads, 0, stream>>>(keys, p, ag, layers, crecords);
      PB_CUDA_LAUNCHED("k_aggregate_covers");
    }
  }

  // Farthest-content pyramid, for what no layer covers.
  const long long far_cells = set_layers(p, plan);
  DeviceMemory d_far_layer((size_t)far_cells, stream, pool), d_far_rgb((size_t)far_cells * 3 * sizeof(float), stream,
                                                                         pool);
  DeviceMemory d_far_count((size_t)far_cells * sizeof(float), stream, pool);
  DeviceMemory d_far_depth((size_t)far_cells * sizeof(float), stream, pool);
  p.far.layer = d_far_layer.as<uint8_t>();
  p.far.count = d_far_count.as<float>();
  p.far.rgb = d_far_rgb.as<float>();
  p.far.depth = d_far_depth.as<float>();
  for (int k = 0; k < p.far.levels; ++k) {
    k_far_level<T><<<blocks_for((long long)p.far.h[k] * p.far.w[k]), kThreads, 0, stream>>>(
        image, a.coc, keys, p, k, d_far_layer.as<uint8_t>(), d_far_count.as<float>(), d_far_rgb.as<float>(),
        d_far_depth.as<float>());
    PB_CUDA_LAUNCHED("k_far_level");
  }

  // Groups of layers: splat, integrate, composite.
  const size_t carry = plan.groups.size() > 1 ? (size_t)N * sizeof(float4) : 0;
  DeviceMemory d_buf((size_t)plan.max_group_cells * sizeof(Cell), stream, pool);
  DeviceMemory d_acc(carry, stream, pool), d_behind(carry, stream, pool);
  Cell* buf = d_buf.as<Cell>();
  for (const GroupDesc& g : plan.groups) {
    long long cells = 0;
    int max_rows = 0;
    for (int l = g.l0; l < g.l1; ++l) {
      cells += layer_cells(plan.layers[l]);
      max_rows = std::max(max_rows, scan_rows(plan.layers[l]));
    }
    const int nl = g.l1 - g.l0;
    if (cells) PB_CUDA_CHECK(cudaMemsetAsync(buf, 0, (size_t)cells * sizeof(Cell), stream));
    int y0, y1;
    group_pixel_rows(plan, st, g, &y0, &y1);
    if (y1 >= y0) {
      const int rows = y1 - y0 + 1;
      k_splat_pixels<T><<<blocks_for((long long)rows * W), kThreads, 0, stream>>>(image, a.coc, keys, p, g, layers,
                                                                                 buf, y0, rows);
      PB_CUDA_LAUNCHED("k_splat_pixels");
    }
    int fx0, fx1;
    group_fine_box(plan, st, g, &y0, &y1, &fx0, &fx1);
    if (y1 >= y0) {
      const int rows = y1 - y0 + 1, cols = fx1 - fx0 + 1;
      k_splat_fine<T><<<blocks_for((long long)rows * cols), kThreads, 0, stream>>>(image, a.coc, keys, p, g, layers,
                                                                                  buf, y0, fx0, rows, cols);
      PB_CUDA_LAUNCHED("k_splat_fine");
    }
    long long max_records = 0;
    for (int l = g.l0; l < g.l1; ++l) {
      const LayerDesc& L = plan.layers[l];
      if (!L.is_focus && L.level > 0)
        max_records = std::max({max_records, (long long)L.rh * L.rw, (long long)L.crh * L.crw});
    }
    if (max_records) {
      k_splat_records<<<dim3(blocks_for(max_records), nl), kThreads, 0, stream>>>(p, g, layers, records, crecords,
                                                                                   buf);
      PB_CUDA_LAUNCHED("k_splat_records");
    }
    if (max_rows) {
      k_scan<<<dim3((unsigned)std::min<long long>(max_rows, kMaxBlocks), nl), kScanThreads, 0, stream>>>(g, layers,
                                                                                                         buf);
      PB_CUDA_LAUNCHED("k_scan");
    }
    k_composite<T><<<blocks_for(N), kThreads, nl * sizeof(LayerDesc), stream>>>(image, a.coc, keys, p, g, layers,
                                                                                 buf, d_acc.as<float4>(),
                                                                                 d_behind.as<float4>(), out);
    PB_CUDA_LAUNCHED("k_composite");
  }
  // Surface execution errors here, with the buffers still alive.
  PB_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace

void* gpu_pool_alloc(size_t bytes, void* stream) {
  return pool_alloc(bytes, static_cast<cudaStream_t>(stream), current_pool());
}

void gpu_pool_free(void* ptr, void* stream) { pool_free(ptr, static_cast<cudaStream_t>(stream), current_pool()); }

void render_gpu_cuda_bad_launch() {
  k_init_stats<<<1, 4096>>>(nullptr);  // more threads than any block may have
  PB_CUDA_LAUNCHED("k_init_stats with 4096 threads per block");
}

void render_gpu_cuda(const GpuRenderArgs& a, void* stream) {
  check_render_args(a.height, a.width, a.params);
  if (!a.image || !a.coc || !a.out) throw std::invalid_argument("null device pointer");
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (a.type) {
    case PixelType::kU8: run<uint8_t>(a, s); break;
    case PixelType::kU16: run<uint16_t>(a, s); break;
    case PixelType::kF32: run<float>(a, s); break;
  }
}

}  // namespace pybokeh
