// Occlusion-aware layered scatter renderer, CPU implementation.
//
// Algorithm (the NumPy reference in pybokeh/renderer/reference.py is the plain
// transcription of the same steps):
//   1. decode sRGB to linear light, boost clipped highlights, and assign every
//      pixel to a depth layer by its signed CoC (bins growing by sqrt(2); one
//      in-focus layer for |CoC| < 0.5 px);
//   2. every out-of-focus pixel is splatted with the aperture of its own
//      radius, as an antialiased, energy-normalised shape, into its layer's
//      buffer.  A splat is written as difference markers at both ends of each
//      row it covers and the rows are integrated afterwards, so a splat costs
//      O(r), not O(r^2).  Layers with large radii are splatted on a grid 2^k
//      times coarser (pixels aggregated per coarse cell), which bounds the
//      splat size by kMaxGridRadius grid cells: the cost no longer grows with
//      the blur radius.  Boosted highlights of a coarse layer keep a
//      full-resolution, light-only splat (their coverage stays in the cell),
//      so their bokeh discs keep crisp rims (see fine_light_threshold);
//      Splats crossing the frame are mirrored back into it (the scene is taken
//      to continue mirrored), so coverage does not fall off at the border;
//   3. layers are composited back to front with the "over" operator (premultiplied
//      colour, coverage as alpha), coarse layers upsampled bilinearly; the
//      in-focus layer is copied in with coverage 1, so nothing behind it can
//      bleed into it (no halo), while blurred foreground layers spread their
//      partial coverage over whatever lies behind them (partial occlusion).
//      A layer's alpha comes from coverage splats of one radius (the mean of
//      its pixels', see coverage_radius) of its own pixels and of the next
//      nearer layer's: they tile exactly where the radius varies (quantised
//      depth), and the layer continues behind the next nearer one, so a
//      continuous surface cut into two layers shows no seam;
//   4. what no layer covers - light from behind blurred objects, which the
//      photo never recorded - is filled with the blurred farther layers at the
//      pixel, else the farthest content nearby (far_content and resolve_pixel
//      in bokeh_math.h);
//      the result is re-encoded to sRGB and quantised.
//
// Work is split into bands of output rows; each thread renders whole bands,
// with per-band scratch buffers that stay in cache.

#include "render_cpu.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__unix__)
#include <sys/mman.h>
#endif

#include "bokeh_math.h"

namespace pybokeh {
namespace {

constexpr int kBandRows = 32;
// Longest run of neighbouring splats on one stamp written at once (SplatWriter::stamp_span).
constexpr int kSpanMax = 64;

// A coarse splat (see CellSplat in bokeh_math.h).
using Splat = CellSplat;

enum Channels { kLight = 1, kCoverage = 2, kBoth = 3 };

// One RGBA cell as a 4-wide SIMD vector (GCC/Clang vector extension; the
// buffers are 16-byte aligned, cells are 16 bytes).
typedef float v4f __attribute__((vector_size(16)));

// Runs body(i, t) for i in [0, n) on up to `threads` threads (t: the thread's
// index, 0 for the calling thread, which works too).  An exception thrown by
// a body (std::bad_alloc, ...) stops the others taking new work and is
// rethrown on the calling thread once all have joined, so it reaches Python
// as an exception instead of std::terminate; a thread that cannot be started
// leaves its share to those that did.
template <typename F>
void parallel_for_t(int n, int threads, F&& body) {
  threads = std::max(1, std::min(threads, n));
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&](int t) {
    // Set up this thread's exception state now, while the memory its stack took
    // proves there is some: libstdc++ keeps it in dynamic TLS that glibc
    // allocates on first use and, if that allocation fails, aborts the process
    // ("cannot allocate memory for thread-local data") - which would happen at
    // the throw of a std::bad_alloc under memory pressure.
    volatile int touch = std::uncaught_exceptions();  // volatile: the call is declared pure
    (void)touch;
    try {
      for (int i = next.fetch_add(1); i < n && !failed.load(std::memory_order_relaxed); i = next.fetch_add(1))
        body(i, t);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(work, t);
    } catch (...) {  // std::system_error (no more threads) or std::bad_alloc
      break;
    }
  }
  work(0);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

template <typename F>
void parallel_for(int n, int threads, F&& body) {
  parallel_for_t(n, threads, [&](int i, int) { body(i); });
}

// body(y) for the rows [0, h), handed out in blocks of kRowBlock rows: the
// per-row tables the first passes fill (bucket sizes, pixel lists) then never
// have two threads writing next to each other (one row at a time, adjacent
// rows on different cores shared cache lines and the first pass took longer on
// two threads than on one).
constexpr int kRowBlock = 16;
template <typename F>
void parallel_rows(int h, int threads, F&& body) {
  parallel_for((h + kRowBlock - 1) / kRowBlock, threads, [&](int b) {
    for (int y = b * kRowBlock; y < std::min(h, (b + 1) * kRowBlock); ++y) body(y);
  });
}

// sRGB -> linear: an exact table for integer input, an interpolated one for float
// (to_unit and srgb_to_linear: bokeh_math.h, shared with the CUDA backend).
template <typename T>
struct Decoder {
  std::vector<float> lut;
  Decoder() {
    const int n = std::is_same<T, float>::value ? kDecodeLutSize + 1 : (1 << (8 * sizeof(T)));
    lut.resize(n);
    for (int i = 0; i < n; ++i) {
      float v = std::is_same<T, float>::value ? (float)i / kDecodeLutSize : to_unit((T)i);
      lut[i] = srgb_to_linear(v);
    }
  }
  float operator()(T v) const {
    if constexpr (std::is_same<T, float>::value) {
      return lut_lerp(lut.data(), kDecodeLutSize, v);
    } else {
      return lut[v];
    }
  }
};

// Coverage splat on a coarse grid: centroid of the layer's and the next
// nearer layer's pixels in one cell, scale = covered fraction / splat total.
struct Cover {
  float x, y, scale;
};

// Puts the distinct grid columns of `used` in increasing order, where column g
// is in use exactly when counts[g * stride] != 0: a scan of the counts over
// the columns' span where it is short (a layer covering most of the row),
// else a sort.
void sort_used_cells(std::vector<int>& used, const double* counts, int stride) {
  if (used.size() < 2) return;
  const auto [lo, hi] = std::minmax_element(used.begin(), used.end());
  const int g0 = *lo, g1 = *hi;
  if ((size_t)(g1 - g0 + 1) > 4 * used.size()) {
    std::sort(used.begin(), used.end());
    return;
  }
  size_t k = 0;
  for (int g = g0; g <= g1; ++g)
    if (counts[(size_t)g * stride] != 0.0) used[k++] = g;
}

// Allocator of vectors reserved for an upper bound of their size: blocks of
// 1 MiB or more are private anonymous mappings, whose pages become resident
// only when written (malloc may hand out recycled, resident memory), so that
// reserving the bound costs address space, not memory, and growing copies
// nothing.  Elsewhere than on Unix, operator new.
template <typename T>
struct ReserveAllocator {
  using value_type = T;
  static constexpr size_t kMapBytes = size_t(1) << 20;
  ReserveAllocator() = default;
  template <typename U>
  ReserveAllocator(const ReserveAllocator<U>&) {}
  T* allocate(size_t n) {
#if defined(__unix__)
    if (n * sizeof(T) >= kMapBytes) {
      void* p = mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      return static_cast<T*>(p);
    }
#endif
    return static_cast<T*>(::operator new(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) {
#if defined(__unix__)
    if (n * sizeof(T) >= kMapBytes) {
      munmap(p, n * sizeof(T));
      return;
    }
#endif
    ::operator delete(p);
  }
  template <typename U>
  bool operator==(const ReserveAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const ReserveAllocator<U>&) const { return false; }
};
template <typename T>
using ReservedVector = std::vector<T, ReserveAllocator<T>>;

// One row of a splat centred on the origin: up to four difference markers
// (see span_markers), weights times the splat's scale and the row's vertical
// coverage.  m = 0: the row misses the shape.
struct StampRow {
  int m = 0;
  int idx[4] = {0, 0, 0, 0};
  float w[4] = {0.0f, 0.0f, 0.0f, 0.0f};
};

// Row `row` (relative to the centre) of the splat of radius r at the origin.
// Unlike span_markers the markers are not clipped to a row: the callers use
// them only where the splat stays inside the image.
StampRow stamp_row(const ApertureShape& shape, float r, int row, float scale) {
  StampRow out;
  float xa, xb, vy;
  if (!splat_row(shape, 0.0f, 0.0f, r, row, &xa, &xb, &vy)) return out;
  const int ia = floor_i(xa + 0.5f), ib = floor_i(xb + 0.5f);
  const float a = scale * vy;
  if (ia == ib) {
    out.m = 2;
    out.idx[0] = ia; out.w[0] = (xb - xa) * a;
    out.idx[1] = ia + 1; out.w[1] = -(xb - xa) * a;
  } else {
    const float fa = ((float)ia + 0.5f) - xa, fb = xb - ((float)ib - 0.5f);
    out.m = 4;
    out.idx[0] = ia; out.w[0] = fa * a;
    out.idx[1] = ia + 1; out.w[1] = (1.0f - fa) * a;
    out.idx[2] = ib; out.w[2] = (fb - 1.0f) * a;
    out.idx[3] = ib + 1; out.w[3] = -fb * a;
  }
  return out;
}

// The energy-normalised splat of one radius at an integer centre: rows
// [r0, r0 + nrows) relative to the centre (StampRows from `first` in the
// table), marker columns within [lo, hi] of the centre.
struct Stamp {
  float r = 0.0f, inv_total = 0.0f;
  int r0 = 0, nrows = 0, first = 0, lo = 0, hi = 0;
};

// Whether stamp S at the grid point (x, y) stays inside a grid gw cells wide
// with right and bottom edges edge_x, edge_y: no mirror images (the test of
// mirror_centres) and every marker within the row's gw + 1 cells.
bool stamp_fits(const ApertureShape& shape, const Stamp& S, int x, int y, float edge_x, float edge_y, int gw) {
  const float cx = (float)x, cy = (float)y, r = S.r;
  return !(cx - r < -0.5f || cx + r > edge_x || cy + r * shape.ext_lo < -0.5f || cy + r * shape.ext_hi > edge_y) &&
         x + S.lo >= 0 && x + S.hi <= gw;
}

// A layer's splats at integer centres, one per radius on the kCocStepsPerPx
// grid of its bin (in grid units): a pixel's or a whole cell's splat is then
// a copy of precomputed row markers instead of its geometry row by row.
struct StampTable {
  static constexpr int kMaxStamps = 4096;  // (< 2^16: WholeCell's index)
  int key0 = 0;  // stamps[k] has radius (key0 + k) / kCocStepsPerPx
  std::vector<Stamp> stamps;
  std::vector<StampRow> rows;

  // Radii in [r_lo, r_hi] (grid units), and one grid step beyond each end
  // (a coarse cell's rounded mean may land there).
  void build(const ApertureShape& shape, float r_lo, float r_hi) {
    key0 = std::max(1, (int)std::floor(r_lo * kCocStepsPerPx) - 1);
    const int key1 = (int)std::ceil(r_hi * kCocStepsPerPx) + 2;
    if (key1 - key0 > kMaxStamps) return;  // (only for radii beyond any the renderer accepts)
    for (int key = key0; key < key1; ++key) {
      Stamp S;
      S.r = (float)key / kCocStepsPerPx;
      const float t = splat_total(shape, 0.0f, 0.0f, S.r);
      S.inv_total = t > 0.0f ? 1.0f / t : 0.0f;
      int r1;
      splat_rows(shape, 0.0f, S.r, &S.r0, &r1);
      S.nrows = r1 - S.r0 + 1;
      S.first = (int)rows.size();
      for (int k = 0; k < S.nrows; ++k) {
        rows.push_back(stamp_row(shape, S.r, S.r0 + k, S.inv_total));
        const StampRow& R = rows.back();
        if (!R.m) continue;
        S.lo = std::min(S.lo, R.idx[0]);
        S.hi = std::max(S.hi, R.idx[R.m - 1]);
      }
      stamps.push_back(S);
    }
  }
  // The stamp of radius r, or nullptr when r is off the grid or outside the bin.
  const Stamp* find(float r) const {
    const float k = r * kCocStepsPerPx;
    if (!(k >= (float)key0 && k < (float)(key0 + (int)stamps.size()))) return nullptr;
    const int ik = (int)k;
    return (float)ik == k ? &stamps[ik - key0] : nullptr;
  }
};

// A coarse cell whose splat is one of its layer's stamps (cell_stamp): under
// half the size of a CellSplat, which most cells of a smooth layer would
// otherwise take.  C: the grid column's type (as the pixel lists'): 20 bytes
// where the image is at most 65536 px wide.
template <typename C>
struct WholeCell {
  C gx;            // grid column
  uint16_t stamp;  // index in the layer's StampTable
  float v[4];      // what the stamp deposits: premultiplied colour, coverage (the cell's covered fraction)
};
static_assert(sizeof(WholeCell<uint16_t>) == 20, "a whole cell of a narrow image packs into 20 bytes");

struct Layer {
  int count = 0;
  int ymin = 1 << 30, ymax = -1;
  int level = 0;
  float r_hi = 0.0f;  // largest radius of the layer's bin (fine px)
  // Coarse layers only: splats grouped by grid row.
  int grid_h = 0, grid_w = 0;
  ReservedVector<Splat> splats;   // cells splatted with their own geometry
  std::vector<int> row_start;  // grid_h + 1
  std::vector<int> whole_row_start;  // grid_h + 1: rows of Renderer::whole[layer]
  // Coverage of the layer's and the next nearer layer's pixels, radius
  // cover_r (see coverage_radius).
  long long units = 0;      // sum of coc_units(|CoC|) of the layer's pixels
  float cover_r = 0.0f;
  bool has_next = false;    // the next nearer layer (layer + 1) has pixels
  float cover_scale = 0.0f;  // level 0: 1 / splat total at an integer centre
  std::vector<Cover> covers;  // coarse levels, grouped by grid row
  std::vector<int> cover_row_start;
  // The coverage splat of a pixel (level 0) or of a fully covered cell
  // (coarse levels), centred on a grid point: radius stamp_r (grid units),
  // span markers per row relative to the centre (rows stamp_r0.., marker
  // weights times the coverage scale), and the columns [stamp_x0, stamp_x1]
  // whose splat stays inside the image horizontally.  Runs of consecutive
  // such pixels or cells are splatted at once (SplatWriter::cover_run).
  float stamp_r = 0.0f;
  int stamp_r0 = 0;
  std::vector<int> stamp_m, stamp_idx;  // per row: marker count; 4 indices
  std::vector<float> stamp_w;           // 4 weights per row
  int stamp_x0 = 0, stamp_x1 = -1;
  std::vector<int> cover_runs;           // coarse levels: (first cell, count) pairs, grouped by grid row
  std::vector<int> cover_run_row_start;  // grid_h + 1
  // Coarse layers: highlights whose light is splatted at full resolution
  // (see fine_light_threshold), columns grouped by image row.
  int fine_bin = kFineLightBins;
  std::vector<int> fine_x;
  std::vector<float> fine_inv;      // 1 / splat total of each
  std::vector<int> fine_row_start;  // H + 1 (empty when there are none)
};

// Deposit one splat into the band's layer buffer (rows [row0, row1] of a grid
// `gw` cells wide, rows stored from row0).  touched[2*(row-row0)] / [+1] track
// the cells each row writes so the integration, compositing and clearing only
// visit those.
struct SplatWriter {
  const ApertureShape& shape;
  float* buf;   // rows x (gw + 1) RGBA cells: light and coverage
  float* pbuf;  // rows x (gw + 1): coverage (see coverage_radius)
  int row0, row1, gw;
  int* touched;
  float edge_x, edge_y;  // right and bottom image edges in grid units (left/top: -0.5)
  double* dbuf = nullptr;  // rows x (gw + 1): coverage markers of runs, differenced once more

  // Coverage splats of the level-0 pixels or fully covered cells [x0, x0 + n)
  // of grid row cy (and their mirror images across the top and bottom edges,
  // which must fall on a grid row), all with the stamp of layer L: each marker
  // of the stamp becomes a box over the run, written as its two ends into
  // dbuf; a second running sum restores the markers.
  void cover_run(const Layer& L, int x0, int n, int cy) const {
    const float r = L.stamp_r, fy = (float)cy;
    stamp_run(L, x0, n, cy);
    if (fy + r * shape.ext_lo < -0.5f) stamp_run(L, x0, n, -1 - cy);
    else if (fy + r * shape.ext_hi > edge_y) stamp_run(L, x0, n, (int)(2.0f * edge_y) - cy);
  }
  void stamp_run(const Layer& L, int x0, int n, int cy) const {
    const int rows = (int)L.stamp_m.size();
    const int k0 = std::max(0, row0 - cy - L.stamp_r0), k1 = std::min(rows - 1, row1 - cy - L.stamp_r0);
    for (int k = k0; k <= k1; ++k) {
      const int m = L.stamp_m[k];
      if (!m) continue;
      const int row = cy + L.stamp_r0 + k - row0;
      const int* idx = &L.stamp_idx[4 * (size_t)k];
      const float* w = &L.stamp_w[4 * (size_t)k];
      double* d = dbuf + (size_t)row * (gw + 1);
      for (int q = 0; q < m; ++q) {
        d[x0 + idx[q]] += w[q];
        const int e = x0 + n + idx[q];
        if (e <= gw) d[e] -= w[q];
      }
      int* t = touched + 2 * row;
      t[0] = std::min(t[0], x0 + idx[0]);
      t[1] = std::max(t[1], std::min(gw, x0 + n + idx[m - 1]));
    }
  }

  bool inside(const Stamp& S, int x, int y) const { return stamp_fits(shape, S, x, y, edge_x, edge_y, gw); }

  // Splat S (rows from `table`) of value v (premultiplied rgb, coverage) at
  // the grid point (x, y), inside the grid: its precomputed markers shifted there.
  void stamp(const Stamp& S, const StampRow* table, int x, int y, v4f v) const {
    stamp_rows(S, table, x, 1, y, [&](const StampRow& R, v4f* cells) {
      for (int q = 0; q < R.m; ++q) cells[R.idx[q]] += R.w[q] * v;
    });
  }

  // A run of n splats of stamp S at the grid points (x0 + j, y), j < n, of
  // values c[j] (c[-1] and c[n] must be zero).  A row's markers come in pairs
  // on adjacent cells (stamp_row), so a pair of the whole run is one pass over
  // the n + 1 cells it reaches: cell j takes wa * c[j] + wb * c[j - 1], one
  // load and store where splatting pixel by pixel makes two.
  void stamp_span(const Stamp& S, const StampRow* table, int x0, int n, int y, const v4f* c) const {
    stamp_rows(S, table, x0, n, y, [&](const StampRow& R, v4f* cells) {
      for (int q = 0; q < R.m; q += 2) {
        v4f* d = cells + R.idx[q];
        const float wa = R.w[q], wb = R.w[q + 1];
        for (int j = 0; j <= n; ++j) d[j] += wa * c[j] + wb * c[j - 1];
      }
    });
  }

  // The rows of stamp S inside the band for splats at (x0 + j, y), j < n:
  // write(R, cells) deposits row R with cells at column x0 of its grid row;
  // the touched range grows by the markers' reach.
  template <class F>
  void stamp_rows(const Stamp& S, const StampRow* table, int x0, int n, int y, F&& write) const {
    const int k0 = std::max(0, row0 - y - S.r0), k1 = std::min(S.nrows - 1, row1 - y - S.r0);
    for (int k = k0; k <= k1; ++k) {
      const StampRow& R = table[S.first + k];
      if (!R.m) continue;
      const int row = y + S.r0 + k - row0;
      write(R, reinterpret_cast<v4f*>(buf + (size_t)row * (gw + 1) * 4) + x0);
      int* t = touched + 2 * row;
      t[0] = std::min(t[0], x0 + R.idx[0]);
      t[1] = std::max(t[1], x0 + n - 1 + R.idx[R.m - 1]);
    }
  }

  // mirror_centres (bokeh_math.h) on this grid.
  template <class F>
  void mirrored(float cx, float cy, float r, F&& f) const {
    mirror_centres(shape, edge_x, edge_y, cx, cy, r, f);
  }

  template <int CH>
  void splat_mirrored(float cx, float cy, float r, float scale, const float* c) const {
    mirrored(cx, cy, r, [&](float x, float y) { splat<CH>(x, y, r, scale, c); });
  }

  // Coverage splat into the coverage buffer.
  void cover_mirrored(float cx, float cy, float r, float scale) const {
    mirrored(cx, cy, r, [&](float x, float y) { cover(x, y, r, scale); });
  }

  // The rows of one splat inside the band: calls deposit(row, idx, wgt, m, a)
  // with the row's m span markers (index, weight) and its coverage
  // a = scale * vertical coverage, and records the touched cells.
  template <class F>
  void rows(float cx, float cy, float r, float scale, F&& deposit) const {
    int r0, r1;
    splat_rows(shape, cy, r, &r0, &r1);
    r0 = std::max(r0, row0);
    r1 = std::min(r1, row1);
    for (int rr = r0; rr <= r1; ++rr) {
      float xa, xb, vy;
      if (!splat_row(shape, cx, cy, r, rr, &xa, &xb, &vy)) continue;
      int idx[4];
      float wgt[4];
      const int m = span_markers(xa, xb, gw, idx, wgt);
      if (!m) continue;
      const int row = rr - row0;
      deposit(row, idx, wgt, m, scale * vy);
      int* t = touched + 2 * row;
      t[0] = std::min(t[0], idx[0]);
      t[1] = std::max(t[1], idx[m - 1]);
    }
  }

  // Coverage splat into the coverage buffer.
  void cover(float cx, float cy, float r, float scale) const {
    rows(cx, cy, r, scale, [&](int row, const int* idx, const float* wgt, int m, float a) {
      float* dst = pbuf + (size_t)row * (gw + 1);
      for (int q = 0; q < m; ++q) dst[idx[q]] += wgt[q] * a;
    });
  }

  // Light and/or coverage splat into the RGBA buffer.  scale = coverage
  // weight / splat total (precomputed): what one unit of covered area receives.
  template <int CH>
  void splat(float cx, float cy, float r, float scale, const float* c) const {
    rows(cx, cy, r, scale, [&](int row, const int* idx, const float* wgt, int m, float a) {
      const v4f v = {(CH & kLight) ? a * c[0] : 0.0f, (CH & kLight) ? a * c[1] : 0.0f,
                     (CH & kLight) ? a * c[2] : 0.0f, (CH & kCoverage) ? a : 0.0f};
      v4f* cells = reinterpret_cast<v4f*>(buf + (size_t)row * (gw + 1) * 4);
      for (int q = 0; q < m; ++q) cells[idx[q]] += wgt[q] * v;
    });
  }
};

// Per-thread scratch of the band stages, reused band after band.
struct BandScratch {
  std::vector<float> acc, behind;  // band rows x W x 4: accumulator (premultiplied rgb, alpha); what lies behind
  std::vector<float> buf, pbuf;    // a layer's grid rows: RGBA cells; coverage of one radius
  std::vector<double> dbuf;        // run markers of that coverage (SplatWriter::cover_run)
  std::vector<int> touched;        // per grid row: first and last cell written
  std::vector<float> fbuf;         // a coarse layer's fine lights, image rows x (W + 1) x 4
  std::vector<int> ftouched;
  std::vector<float> rgb;          // one output row's linear rgb (finish_band)
  // The band's rows of far pyramid levels 0 and 1 (far_rows), cells made on demand (far_cells).
  struct FarLevelRows {
    std::vector<float> count, rgb, depth;
    std::vector<uint8_t> made;
    FarRows rows{};
  } far_apart[kFarApartLevels];
};

// A cell of the farthest-content pyramid, as stored (floats).
struct FarCell {
  int layer;
  float count, rgb[3], depth;
};
// From far_accumulate's sums of its children.
inline FarCell far_cell_from(int best, const double* sum, double n) {
  return FarCell{best, (float)n, {(float)(sum[0] / n), (float)(sum[1] / n), (float)(sum[2] / n)}, (float)(sum[3] / n)};
}

// Where one layer meets one band of output rows.
struct LayerBand {
  int l = 0, y0 = 0, y1 = 0;          // layer; band rows [y0, y1)
  const ApertureShape* shape = nullptr;
  float reach = 0.0f;                 // how far its splats reach (image px)
  int s = 1, gw = 0, gh = 0;          // cell size (px) and grid size
  int row0 = 0, row1 = -1, nrows = 0; // grid rows the band needs
  int src0 = 0, src1 = -1;            // grid rows whose splats reach them
};

// The CoC map read as radii in px, from float32 px or int16 grid steps (see
// CocMap): a type each, so the hot loops carry no branch on the storage.
template <typename K>
struct CocView;
template <>
struct CocView<float> {
  const float* p;
  float operator[](size_t i) const { return p[i]; }
};
template <>
struct CocView<int16_t> {
  const int16_t* p;
  float operator[](size_t i) const { return (float)p[i] * (1.0f / kCocStepsPerPx); }
};

// C: the column type of the per-layer pixel lists (uint16_t where the width
// allows: half the memory of int); K: the CoC map's storage (float or int16_t).
template <typename T, typename C, typename K>
class Renderer {
 public:
  using Coc = CocView<K>;  // (pybokeh::CocMap is the storage-agnostic form render_cpu takes)
  Renderer(int h, int w, const RenderParams& p) : H(h), W(w), P(p) {}

  void run(const T* image, Coc coc, T* out);

 private:
  int H, W;
  RenderParams P;
  int nbins = 0, nlayers = 1, focus = 0;
  // The photo and its CoC map.  Linear colour is decoded where it is read
  // (colour), not stored: a linear float copy would be 12 bytes per pixel.
  const T* image_ = nullptr;
  Coc coc_{};
  Decoder<T> decode;
  // Linear colour of pixel i, highlight boost applied.
  void colour(size_t i, float* c) const {
    const float g = highlight_gain(P.highlight_gain ? P.highlight_gain[i] : 0.0f, std::fabs(coc_[i]));
    const T* px = image_ + 3 * i;
    for (int k = 0; k < 3; ++k) c[k] = decode(px[k]) * g;
  }
  std::vector<StampTable> stamps;  // by layer (see StampTable)
  std::vector<uint8_t> layer_of;   // H x W
  std::vector<uint8_t> bin_of_step;  // radius_bin of k / kCocStepsPerPx
  std::vector<float> depth_of_step;  // depth_position of k / kCocStepsPerPx
  // depth_position(coc), through depth_of_step where the radius is on its grid.
  float depth_of_coc(float coc) const {
    const float k = std::fabs(coc) * kCocStepsPerPx;
    if (!(k < (float)depth_of_step.size() && (float)(int)k == k)) return depth_position(coc);
    const float d = depth_of_step[(int)k];
    return coc < 0.0f && d > 0.0f ? -d : d;  // (in focus: +0, as depth_position)
  }
  // layer_index(coc, nbins), through bin_of_step where the radius is on its grid.
  int layer_of_coc(float coc) const {
    const float a = std::fabs(coc);
    if (!(a >= kInFocusRadius)) return nbins;
    const float k = a * kCocStepsPerPx;
    const int j = k < (float)bin_of_step.size() && (float)(int)k == k ? bin_of_step[(int)k] : radius_bin(a, nbins);
    return coc < 0.0f ? nbins - 1 - j : nbins + 1 + j;
  }
  // layer_of_coc and depth_of_coc of pixel i; from its grid step straight
  // where the map holds steps (the same tables, without the float round trip).
  int layer_at(size_t i) const {
    if constexpr (std::is_same_v<K, int16_t>) {
      const int k = coc_.p[i], a = k < 0 ? -k : k;
      if (a < (int)(kInFocusRadius * kCocStepsPerPx)) return nbins;  // (then a <= the largest radius)
      const int j = bin_of_step[a];
      return k < 0 ? nbins - 1 - j : nbins + 1 + j;
    } else {
      return layer_of_coc(coc_[i]);
    }
  }
  float depth_at(size_t i) const {
    if constexpr (std::is_same_v<K, int16_t>) {
      const int k = coc_.p[i], a = k < 0 ? -k : k;
      if (!(a < (int)depth_of_step.size())) return depth_position(coc_[i]);  // (no table: all in focus)
      const float d = depth_of_step[a];
      return k < 0 && d > 0.0f ? -d : d;
    } else {
      return depth_of_coc(coc_[i]);
    }
  }
  std::vector<int> offsets;        // nlayers x (H + 1): start of bucket (layer, row)
  std::vector<C> xs;             // column of every pixel, grouped by (layer, row)
  std::vector<Layer> layers;
  std::vector<ReservedVector<WholeCell<C>>> whole;  // by layer: cells splatted from its stamps, by grid row
  std::vector<float> encode_lut;
  // Bilinear upsampling taps of each grid level along x (same for every row):
  // left and right grid column and the right weight of image column x.
  struct XTaps {
    std::vector<int> xa, xb;
    std::vector<float> fx;
  };
  std::vector<XTaps> xtaps;  // by level

  void build_coarse(int l, Coc coc);
  void keep_band_pixel_lists();
  // The stamp of a coarse cell of layer l: its centroid on a grid point, its
  // radius in the layer's table and its splat inside the grid; else nullptr.
  const Stamp* cell_stamp(int l, const Splat& sp) const {
    const Layer& L = layers[l];
    const int s = 1 << L.level, ix = (int)sp.x, iy = (int)sp.y;
    if (!((float)ix == sp.x && (float)iy == sp.y)) return nullptr;
    const Stamp* S = stamps[l].find(sp.r);
    return S && stamp_fits(P.shape[l > focus], *S, ix, iy, (float)W / s - 0.5f, (float)H / s - 0.5f, L.grid_w) ? S
                                                                                                             : nullptr;
  }
  void build_covers(int l);
  void build_stamp(Layer& L, const ApertureShape& shape, float r, float scale, int gw, float edge_x) const;
  // Band stages (see render_band).
  void render_band(int band, Coc coc, T* out, BandScratch& sc) const;
  bool layer_band(int l, int y0, int y1, LayerBand* lb) const;
  void copy_in_focus(const LayerBand& lb, BandScratch& sc) const;
  SplatWriter begin_layer(const LayerBand& lb, BandScratch& sc) const;
  void splat_layer(const LayerBand& lb, Coc coc, const SplatWriter& write) const;
  void cover_layer(const LayerBand& lb, const SplatWriter& write) const;
  bool splat_fine(const LayerBand& lb, Coc coc, BandScratch& sc) const;
  void scan_rows(const LayerBand& lb, BandScratch& sc) const;
  void composite_layer(const LayerBand& lb, BandScratch& sc, bool has_fine) const;
  void clear_layer(const LayerBand& lb, BandScratch& sc, bool has_fine) const;
  void finish_band(int y0, int y1, Coc coc, T* out, BandScratch& sc) const;
  void encode_row(const float* v, int n, T* out) const;

  // Farthest-content pyramid (see FarPyramid in bokeh_math.h).
  FarPyramid far{};
  std::vector<uint8_t> far_layer;
  std::vector<float> far_count;
  std::vector<float> far_rgb, far_depth;
  void build_far_pyramid(int threads);
  FarCell far_block(int cx, int cy, int size) const;
  FarCell far_cell0(int cx, int cy) const { return far_block(cx, cy, 2); }
  FarCell far_cell1(int cx, int cy) const { return far_block(cx, cy, 4); }
  FarPyramid far_rows(int y0, int y1, BandScratch& sc) const;
  void far_cells(int x, int y, BandScratch& sc) const;
};

template <typename T, typename C, typename K>
void Renderer<T, C, K>::run(const T* image, Coc coc, T* out) {
  const int threads = std::max(1, P.threads);
  const size_t N = (size_t)H * W;

  // Largest radius -> number of bins per side.
  std::vector<float> row_max(H, 0.0f);
  parallel_rows(H, threads, [&](int y) {
    float m = 0.0f;
    for (int x = 0; x < W; ++x) m = std::max(m, std::fabs(coc[(size_t)y * W + x]));
    row_max[y] = m;
  });
  float max_r = *std::max_element(row_max.begin(), row_max.end());
  nbins = max_r >= kInFocusRadius ? radius_bin(max_r, kMaxBinsPerSide) + 1 : 0;
  nlayers = 2 * nbins + 1;
  focus = nbins;

  // Pass 1: layer of every pixel, bucket sizes per (layer, row).
  image_ = image;
  coc_ = coc;
  // The radius bin of every radius on the kCocStepsPerPx grid up to the largest
  // (the CoC render() hands over lies on it): a lookup instead of log2f.
  bin_of_step.resize(nbins ? (size_t)(std::min(max_r, kMaxCocRadius) * kCocStepsPerPx) + 2 : 0);
  depth_of_step.resize(bin_of_step.size());
  for (size_t k = 0; k < bin_of_step.size(); ++k) {
    bin_of_step[k] = (uint8_t)radius_bin(std::max((float)k / kCocStepsPerPx, kInFocusRadius), nbins);
    depth_of_step[k] = depth_position((float)k / kCocStepsPerPx);
  }
  layer_of.resize(N);
  std::vector<int> counts((size_t)nlayers * H, 0);
  std::vector<long long> units((size_t)nlayers * H, 0);
  parallel_rows(H, threads, [&](int y) {
    int count[2 * kMaxBinsPerSide + 1] = {0};  // this row's, written out once
    long long unit[2 * kMaxBinsPerSide + 1] = {0};
    for (int x = 0; x < W; ++x) {
      size_t i = (size_t)y * W + x;
      float r = coc[i];
      const int l = layer_at(i);
      layer_of[i] = (uint8_t)l;
      count[l]++;
      unit[l] += coc_units(std::fabs(r));
    }
    for (int l = 0; l < nlayers; ++l) {
      counts[(size_t)l * H + y] = count[l];
      units[(size_t)l * H + y] = unit[l];
    }
  });

  // Bucket offsets, layer-major so each layer's pixels are sorted by row.
  offsets.assign((size_t)nlayers * (H + 1), 0);
  layers.assign(nlayers, Layer());
  whole.assign(nlayers, {});
  int total = 0;
  for (int l = 0; l < nlayers; ++l) {
    Layer& L = layers[l];
    for (int y = 0; y < H; ++y) {
      offsets[(size_t)l * (H + 1) + y] = total;
      int c = counts[(size_t)l * H + y];
      if (c) {
        L.ymin = std::min(L.ymin, y);
        L.ymax = y;
      }
      L.count += c;
      L.units += units[(size_t)l * H + y];
      total += c;
    }
    offsets[(size_t)l * (H + 1) + H] = total;
    L.level = layer_level(l, nbins);
    L.r_hi = l == focus ? 0.0f : layer_edge((l < nbins ? nbins - 1 - l : l - nbins - 1) + 1);
  }
  xs.resize(N);
  parallel_rows(H, threads, [&](int y) {
    std::vector<int> cursor(nlayers);
    for (int l = 0; l < nlayers; ++l) cursor[l] = offsets[(size_t)l * (H + 1) + y];
    for (int x = 0; x < W; ++x) xs[cursor[layer_of[(size_t)y * W + x]]++] = (C)x;
  });

  // The splats of every layer at integer centres, one per radius of its bin
  // (a pixel's or a whole cell's splat depends on its radius only).
  stamps.assign(nlayers, StampTable());
  for (int l = 0; l < nlayers; ++l) {
    if (l == focus || !layers[l].count) continue;
    const int j = l < nbins ? nbins - 1 - l : l - nbins - 1;
    const float inv_s = 1.0f / (float)(1 << layers[l].level);
    stamps[l].build(P.shape[l > focus], layer_edge(j) * inv_s, layer_edge(j + 1) * inv_s);
  }

  // Pass 2: aggregate coarse layers into per-cell splats.
  std::vector<int> coarse;
  for (int l = 0; l < nlayers; ++l)
    if (layers[l].count && layers[l].level > 0) coarse.push_back(l);
  parallel_for((int)coarse.size(), threads, [&](int i) { build_coarse(coarse[i], coc); });

  // Coverage: splats of one radius of every out-of-focus layer's pixels and
  // of the next nearer layer's (see coverage_radius).
  std::vector<int> coarse_covers;
  for (int l = 0; l < nlayers; ++l) {
    Layer& L = layers[l];
    if (l == focus || !L.count) continue;
    L.has_next = l + 1 < nlayers && layers[l + 1].count > 0;
    L.cover_r = coverage_radius(L.units, L.count);
    if (L.level == 0) {
      const ApertureShape& shape = P.shape[l > focus];
      float t = splat_total(shape, 0.0f, 0.0f, L.cover_r);
      L.cover_scale = t > 0.0f ? 1.0f / t : 0.0f;
      build_stamp(L, shape, L.cover_r, L.cover_scale, W, (float)W - 0.5f);
    } else {
      coarse_covers.push_back(l);
    }
  }
  parallel_for((int)coarse_covers.size(), threads, [&](int i) { build_covers(coarse_covers[i]); });

  // Upsampling taps of the coarse levels in use.
  for (int l = 0; l < nlayers; ++l) {
    const int k = layers[l].level;
    if (!layers[l].count || k == 0) continue;
    if ((int)xtaps.size() <= k) xtaps.resize(k + 1);
    XTaps& t = xtaps[k];
    if (!t.fx.empty()) continue;
    const int s = 1 << k, gw = layers[l].grid_w;
    const float inv_s = 1.0f / s;
    t.xa.resize(W);
    t.xb.resize(W);
    t.fx.resize(W);
    for (int x = 0; x < W; ++x) {
      const float u = (x + 0.5f) * inv_s - 0.5f;
      const int ix = (int)std::floor(u);
      t.fx[x] = u - ix;
      t.xa[x] = std::min(std::max(ix, 0), gw - 1);
      t.xb[x] = std::min(std::max(ix + 1, 0), gw - 1);
    }
  }

  // Encoding table.
  encode_lut.resize(kEncodeLutSize + 2);
  for (int i = 0; i <= kEncodeLutSize; ++i) encode_lut[i] = encode_lut_value(i, kEncodeLutSize);
  encode_lut[kEncodeLutSize + 1] = encode_lut[kEncodeLutSize];  // for encode_row's SSE2 loop

  // Pass 3: bands of output rows.
  const int nbands = (H + kBandRows - 1) / kBandRows;
  build_far_pyramid(threads);
  std::vector<uint8_t>().swap(layer_of);  // its last use: not held through the bands
  keep_band_pixel_lists();
  const int nt = std::min(threads, nbands);
  std::vector<BandScratch> scratch(nt);
  parallel_for_t(nbands, nt, [&](int b, int t) { render_band(b, coc, out, scratch[t]); });
}

// Drops the pixel lists the bands do not read: a coarse layer's pixels live on
// as its cells, covers and fine lights, except where a level-0 layer's coverage
// also spans them (cover_layer).  Kept: the in-focus layer, the level-0 layers
// and those.  (At r = 16 px on the 12 MP bench frame 60 % of the pixels stay.)
template <typename T, typename C, typename K>
void Renderer<T, C, K>::keep_band_pixel_lists() {
  std::vector<char> keep(nlayers, 0);
  for (int l = 0; l < nlayers; ++l) {
    if (!layers[l].count || !(l == focus || layers[l].level == 0)) continue;
    keep[l] = 1;
    if (l != focus && layers[l].has_next) keep[l + 1] = 1;
  }
  size_t kept = 0;
  for (int l = 0; l < nlayers; ++l)
    if (keep[l]) kept += (size_t)layers[l].count;
  if (kept == xs.size()) return;
  std::vector<C> compact(kept);
  int at = 0;
  for (int l = 0; l < nlayers; ++l) {
    int* off = offsets.data() + (size_t)l * (H + 1);
    if (!keep[l]) {
      std::fill(off, off + H + 1, at);  // empty rows, should anything ask
      continue;
    }
    const int first = off[0];
    std::copy(xs.begin() + first, xs.begin() + off[H], compact.begin() + at);
    for (int y = 0; y <= H; ++y) off[y] += at - first;
    at = off[H];
  }
  xs.swap(compact);
}

template <typename T, typename C, typename K>
void Renderer<T, C, K>::build_coarse(int l, Coc coc) {
  Layer& L = layers[l];
  const int s = 1 << L.level;
  const ApertureShape& shape = P.shape[l > focus];
  L.grid_h = (H + s - 1) / s;
  L.grid_w = (W + s - 1) / s;
  L.row_start.assign(L.grid_h + 1, 0);
  L.whole_row_start.assign(L.grid_h + 1, 0);
  std::vector<double> acc((size_t)L.grid_w * (kCellSums + 1));  // sums, then the pixel count
  std::vector<int> used;
  const float inv_s = 1.0f / (float)s;

  // Highlights that keep a full-resolution light splat.
  long long hist[kFineLightBins] = {0};
  for (int y = L.ymin; y <= L.ymax; ++y) {
    const C* b = xs.data() + offsets[(size_t)l * (H + 1) + y];
    const C* e = xs.data() + offsets[(size_t)l * (H + 1) + y + 1];
    for (; b != e; ++b) {
      // Unboosted colour is at most 1 (the decoders clamp), so bin 0.
      const size_t i = (size_t)y * W + *b;
      if (!(P.highlight_gain && P.highlight_gain[i] > 0.0f)) {
        hist[0]++;
        continue;
      }
      float c[3];
      colour(i, c);
      hist[fine_light_bin(max_channel(c))]++;
    }
  }
  L.fine_bin = fine_light_threshold(hist, fine_light_capacity(H, W, L.r_hi));
  if (L.fine_bin < kFineLightBins) {
    L.fine_row_start.assign(H + 1, 0);
    for (int y = 0; y < H; ++y) {
      L.fine_row_start[y] = (int)L.fine_x.size();
      const C* b = xs.data() + offsets[(size_t)l * (H + 1) + y];
      const C* e = xs.data() + offsets[(size_t)l * (H + 1) + y + 1];
      for (; b != e; ++b) {
        const size_t i = (size_t)y * W + *b;
        if (!(P.highlight_gain && P.highlight_gain[i] > 0.0f)) continue;  // bin 0, as above
        float c[3];
        colour(i, c);
        if (fine_light_bin(max_channel(c)) < L.fine_bin) continue;
        L.fine_x.push_back(*b);
        const float t = splat_total(shape, 0.0f, 0.0f, std::fabs(coc[i]));
        L.fine_inv.push_back(t > 0.0f ? 1.0f / t : 0.0f);
      }
    }
    L.fine_row_start[H] = (int)L.fine_x.size();
    if (L.fine_x.empty()) L.fine_row_start.clear();
  }
  // At most one record per cell with pixels: reserved (address space; only
  // what is written becomes resident) so that growing copies nothing.
  const size_t max_cells = std::min((size_t)L.count, (size_t)L.grid_w * L.grid_h);
  whole[l].reserve(max_cells);
  L.splats.reserve(max_cells);
  for (int gy = 0; gy < L.grid_h; ++gy) {
    L.row_start[gy] = (int)L.splats.size();
    L.whole_row_start[gy] = (int)whole[l].size();
    int y0 = gy * s, y1 = std::min(H, y0 + s);
    if (y1 <= L.ymin || y0 > L.ymax) continue;
    used.clear();  // (acc is all zero here: the cells a row uses are cleared after it)
    for (int y = y0; y < y1; ++y) {
      const C* b = xs.data() + offsets[(size_t)l * (H + 1) + y];
      const C* e = xs.data() + offsets[(size_t)l * (H + 1) + y + 1];
      for (; b != e; ++b) {
        int x = *b;
        size_t i = (size_t)y * W + x;
        const int gx = x >> L.level;
        double* a = acc.data() + (kCellSums + 1) * gx;
        if (a[kCellSums] == 0.0) used.push_back(gx);
        float c[3];
        colour(i, c);
        const bool fine = fine_light_bin(max_channel(c)) >= L.fine_bin;
        const float u = ((float)x + 0.5f) * inv_s - 0.5f, v = ((float)y + 0.5f) * inv_s - 0.5f;
        double t[kCellSums];
        cell_terms(c, fine, std::fabs(coc[i]), u, v, t);
        for (int k = 0; k < kCellSums; ++k) a[k] += t[k];
        a[kCellSums] += 1.0;
      }
    }
    sort_used_cells(used, acc.data() + kCellSums, kCellSums + 1);
    for (int gx : used) {
      const double* a = acc.data() + (kCellSums + 1) * gx;
      const int cell_w = std::min(s, W - gx * s), cell_h = y1 - y0;
      Splat sp = cell_splat_shape(a, a[kCellSums], (double)cell_w * cell_h, inv_s);
      // Light and coverage at a grid point: one stamp (its centroid is then gx, gy).
      const Stamp* S = sp.lx == sp.x && sp.ly == sp.y ? cell_stamp(l, sp) : nullptr;
      if (S) {
        whole[l].push_back(WholeCell<C>{(C)gx, (uint16_t)(S - stamps[l].stamps.data()),
                                        {sp.w * sp.c[0], sp.w * sp.c[1], sp.w * sp.c[2], sp.w}});
        continue;
      }
      cell_splat_scales(shape, &sp);
      L.splats.push_back(sp);
    }
    for (int gx : used) std::fill_n(acc.data() + (kCellSums + 1) * gx, kCellSums + 1, 0.0);
  }
  L.row_start[L.grid_h] = (int)L.splats.size();
  L.whole_row_start[L.grid_h] = (int)whole[l].size();
}

// A cell of the farthest-content pyramid from its (up to) 2 x 2 children in
// a ph x pw grid; child(x, y, best, sum, n) adds child (x, y) with
// far_accumulate (levels 3 and up; the levels below are made from their
// pixels, far_block).
template <typename F>
FarCell far_parent(int cx, int cy, int ph, int pw, F&& child) {
  int best = 255;
  double sum[4] = {0, 0, 0, 0}, n = 0;
  for (int dy = 0; dy < 2; ++dy) {
    for (int dx = 0; dx < 2; ++dx) {
      const int yy = 2 * cy + dy, xx = 2 * cx + dx;
      if (yy < ph && xx < pw) child(xx, yy, &best, sum, &n);
    }
  }
  return far_cell_from(best, sum, n);
}

// The cell (cx, cy) of the farthest-content pyramid level whose cells are
// size x size pixels (2: level 0, 4: level 1, 8: level 2), straight from its
// pixels (their layers from layer_of while it is held, else recomputed): the
// mean colour and depth of the pixels of its farthest layer, which is what
// far_parent makes of the level below (a parent keeps the farthest of its
// children's layers, so their sums add up to its pixels'), without the
// means of the levels between.
template <typename T, typename C, typename K>
FarCell Renderer<T, C, K>::far_block(int cx, int cy, int size) const {
  int best = 255;
  double sum[4] = {0, 0, 0, 0}, n = 0;
  const int y0 = cy * size, y1 = std::min(H, y0 + size), x0 = cx * size, x1 = std::min(W, x0 + size);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      const size_t j = (size_t)y * W + x;
      float lin[3], c[3];
      colour(j, lin);
      far_colour(lin, c);
      const int l = layer_of.empty() ? layer_at(j) : layer_of[j];
      far_accumulate(l, 1.0, c, depth_at(j), &best, sum, &n);
    }
  }
  return far_cell_from(best, sum, n);
}

// Levels 2 and up of the farthest-content pyramid; levels 0 and 1 (4/5 of its
// cells) are made per band of rows where some pixel needs them (far_rows),
// never for the whole image.
template <typename T, typename C, typename K>
void Renderer<T, C, K>::build_far_pyramid(int threads) {
  const long long all = far_pyramid_shape(H, W, &far);
  if (all < 0) throw std::invalid_argument("image is too large");
  const int apart = std::min(far.levels, kFarApartLevels);
  long long skip = 0;  // the levels kept apart
  for (int k = 0; k < apart; ++k) skip += (long long)far.h[k] * far.w[k];
  for (int k = 0; k < far.levels; ++k) far.off[k] -= skip;
  const size_t cells = (size_t)(all - skip);
  far_layer.resize(cells);
  far_count.resize(cells);
  far_rgb.resize(cells * 3);
  far_depth.resize(cells);
  for (int k = apart; k < far.levels; ++k) {
    const int ph = far.h[k - 1], pw = far.w[k - 1], w = far.w[k];
    parallel_rows(far.h[k], threads, [&](int cy) {
      for (int cx = 0; cx < w; ++cx) {
        // The first level stored from its pixels (the levels kept apart are not stored), the others from it.
        const FarCell c = k == apart ? far_block(cx, cy, 2 << k)
                                     : far_parent(cx, cy, ph, pw, [&](int x, int y, int* best, double* sum, double* n) {
          const size_t o = (size_t)far.off[k - 1] + (size_t)y * pw + x;
          far_accumulate(far_layer[o], (double)far_count[o], &far_rgb[3 * o], far_depth[o], best, sum, n);
        });
        const size_t o = (size_t)far.off[k] + (size_t)cy * w + cx;
        far_layer[o] = (uint8_t)c.layer;
        far_count[o] = c.count;
        for (int q = 0; q < 3; ++q) far_rgb[3 * o + q] = c.rgb[q];
        far_depth[o] = c.depth;
      }
    });
  }
  far.layer = far_layer.data();
  far.count = far_count.data();
  far.rgb = far_rgb.data();
  far.depth = far_depth.data();
}

// The rows of levels 0 and 1 that far_content reads for pixels of rows
// [y0, y1), held in the band's scratch, cells made on demand (far_cells);
// returns the pyramid that reads them.
template <typename T, typename C, typename K>
FarPyramid Renderer<T, C, K>::far_rows(int y0, int y1, BandScratch& sc) const {
  FarPyramid p = far;
  for (int k = 0; k < std::min(far.levels, kFarApartLevels); ++k) {  // a 1 x 1 image has no pyramid
    const float s = (float)(2 << k);
    const int h = far.h[k], w = far.w[k];
    const int r0 = std::max(0, floor_i((y0 + 0.5f) / s - 0.5f));
    const int r1 = std::min(h - 1, floor_i((y1 - 0.5f) / s - 0.5f) + 1);
    const size_t n = (size_t)(r1 - r0 + 1) * w;
    BandScratch::FarLevelRows& L = sc.far_apart[k];
    L.count.resize(n);
    L.rgb.resize(3 * n);
    L.depth.resize(n);
    L.made.assign(n, 0);
    L.rows = FarRows{L.count.data(), L.rgb.data(), L.depth.data(), r0};
    p.apart[k] = &L.rows;
  }
  return p;
}

// Makes the cells of levels 0 and 1 that far_content reads at pixel (x, y)
// (their 2 x 2 bilinear neighbourhoods, clamped as far_content clamps them).
template <typename T, typename C, typename K>
void Renderer<T, C, K>::far_cells(int x, int y, BandScratch& sc) const {
  for (int k = 0; k < std::min(far.levels, kFarApartLevels); ++k) {
    const float s = (float)(2 << k);
    const int h = far.h[k], w = far.w[k];
    BandScratch::FarLevelRows& L = sc.far_apart[k];
    const int ix = floor_i((x + 0.5f) / s - 0.5f), iy = floor_i((y + 0.5f) / s - 0.5f);
    for (int dy = 0; dy < 2; ++dy) {
      for (int dx = 0; dx < 2; ++dx) {
        const int cx = std::min(std::max(ix + dx, 0), w - 1), cy = std::min(std::max(iy + dy, 0), h - 1);
        const size_t o = (size_t)(cy - L.rows.first) * w + cx;
        if (L.made[o]) continue;
        const FarCell c = k == 0 ? far_cell0(cx, cy) : far_cell1(cx, cy);
        L.count[o] = c.count;
        for (int q = 0; q < 3; ++q) L.rgb[3 * o + q] = c.rgb[q];
        L.depth[o] = c.depth;
        L.made[o] = 1;
      }
    }
  }
}

template <typename T, typename C, typename K>
void Renderer<T, C, K>::build_stamp(Layer& L, const ApertureShape& shape, float r, float scale, int gw,
                                 float edge_x) const {
  L.stamp_r = r;
  int r0, r1;
  splat_rows(shape, 0.0f, r, &r0, &r1);
  L.stamp_r0 = r0;
  const int n = r1 - r0 + 1;
  L.stamp_m.assign(n, 0);
  L.stamp_idx.assign(4 * (size_t)n, 0);
  L.stamp_w.assign(4 * (size_t)n, 0.0f);
  for (int k = 0; k < n; ++k) {
    const StampRow row = stamp_row(shape, r, r0 + k, scale);
    L.stamp_m[k] = row.m;
    for (int q = 0; q < row.m; ++q) {
      L.stamp_idx[4 * (size_t)k + q] = row.idx[q];
      L.stamp_w[4 * (size_t)k + q] = row.w[q];
    }
  }
  // Columns whose splat crosses neither side of the image (SplatWriter::mirrored).
  L.stamp_x0 = 0;
  while (L.stamp_x0 < gw && (float)L.stamp_x0 - r < -0.5f) ++L.stamp_x0;
  L.stamp_x1 = gw - 1;
  while (L.stamp_x1 >= 0 && (float)L.stamp_x1 + r > edge_x) --L.stamp_x1;
  // Every marker a run writes must fall in the row's gw + 1 cells: a splat
  // ending exactly on the image edge has a (zero-weight) marker one cell past
  // it, which span_markers clips and the stamp does not; such columns take
  // the one-by-one path.
  int lo = 0, hi = 0;
  for (int k = 0; k < n; ++k) {
    const int m = L.stamp_m[k];
    if (!m) continue;
    lo = std::min(lo, L.stamp_idx[4 * (size_t)k]);
    hi = std::max(hi, L.stamp_idx[4 * (size_t)k + m - 1]);
  }
  L.stamp_x0 = std::max(L.stamp_x0, -lo);
  L.stamp_x1 = std::min(L.stamp_x1, gw - hi);
}

template <typename T, typename C, typename K>
void Renderer<T, C, K>::build_covers(int l) {
  Layer& L = layers[l];
  const int s = 1 << L.level;
  const ApertureShape& shape = P.shape[l > focus];
  const float inv_s = 1.0f / (float)s, r = L.cover_r * inv_s;
  const int last = L.has_next ? l + 1 : l;  // the layer's pixels, then the next nearer layer's
  {
    const float t = splat_total(shape, 0.0f, 0.0f, r);
    build_stamp(L, shape, r, t > 0.0f ? 1.0f / t : 0.0f, L.grid_w, (float)W / s - 0.5f);
  }
  L.cover_row_start.assign(L.grid_h + 1, 0);
  L.cover_run_row_start.assign(L.grid_h + 1, 0);
  // A cell's mirror image across the bottom edge lies between grid rows
  // unless the image height is a multiple of the cell size.
  const float edge_y = (float)H / s - 0.5f;
  const bool bottom_off = H % s != 0;
  std::vector<double> acc((size_t)L.grid_w * 3);
  std::vector<int> used;
  for (int gy = 0; gy < L.grid_h; ++gy) {
    L.cover_row_start[gy] = (int)L.covers.size();
    L.cover_run_row_start[gy] = (int)L.cover_runs.size() / 2;
    const int y0 = gy * s, y1 = std::min(H, y0 + s);
    used.clear();  // (acc is all zero here: the cells a row uses are cleared after it)
    for (int y = y0; y < y1; ++y) {
      for (int src = l; src <= last; ++src) {
        const C* b = xs.data() + offsets[(size_t)src * (H + 1) + y];
        const C* e = xs.data() + offsets[(size_t)src * (H + 1) + y + 1];
        for (; b != e; ++b) {
          const int gx = *b >> L.level;
          double* a = acc.data() + 3 * gx;
          if (a[0] == 0.0) used.push_back(gx);
          a[0] += 1.0;
          a[1] += ((float)*b + 0.5f) * inv_s - 0.5f;
          a[2] += ((float)y + 0.5f) * inv_s - 0.5f;
        }
      }
    }
    sort_used_cells(used, acc.data(), 3);
    for (int gx : used) {
      const double* a = acc.data() + 3 * gx;
      const int cell_w = std::min(s, W - gx * s), cell_h = y1 - y0;
      if (cell_w == s && cell_h == s && a[0] == (double)s * s && gx >= L.stamp_x0 && gx <= L.stamp_x1 &&
          !(bottom_off && (float)gy + r * shape.ext_hi > edge_y)) {
        // Fully covered (its centroid is the cell centre): a run of the stamp.
        const size_t nr = L.cover_runs.size();
        if (nr >= 2 && L.cover_run_row_start[gy] * 2 < (int)nr && L.cover_runs[nr - 2] + L.cover_runs[nr - 1] == gx) {
          ++L.cover_runs[nr - 1];
        } else {
          L.cover_runs.push_back(gx);
          L.cover_runs.push_back(1);
        }
        continue;
      }
      Cover cv;
      cv.x = (float)(a[1] / a[0]);
      cv.y = (float)(a[2] / a[0]);
      const float t = splat_total(shape, cv.x, cv.y, r);
      cv.scale = t > 0.0f ? (float)(a[0] / ((double)cell_w * cell_h)) / t : 0.0f;
      L.covers.push_back(cv);
    }
    for (int gx : used) std::fill_n(acc.data() + 3 * gx, 3, 0.0);
  }
  L.cover_row_start[L.grid_h] = (int)L.covers.size();
  L.cover_run_row_start[L.grid_h] = (int)L.cover_runs.size() / 2;
}


// ---------------------------------------------------------------- band stages
//
// A band of output rows is rendered layer by layer, back to front, in named
// stages that mirror the GPU steps of gpu_steps.h: the pixels or records of
// the layer are splatted (splat_layer: splat_pixel / splat_record), its
// coverage of one radius added (cover_layer: cover_pixel /
// splat_cover_record), a coarse layer's fine lights splatted at full
// resolution (splat_fine: splat_fine_pixel), the difference markers
// integrated (scan_rows: scan_row), the layer composited over the band
// (composite_layer: composite_pixel) and its buffers cleared; finally what
// stays uncovered is filled and the band encoded (finish_band: finish_pixel).

template <typename T, typename C, typename K>
void Renderer<T, C, K>::render_band(int band, Coc coc, T* out, BandScratch& sc) const {
  const int y0 = band * kBandRows, y1 = std::min(H, y0 + kBandRows);
  sc.acc.assign((size_t)(y1 - y0) * W * 4, 0.0f);
  sc.behind.assign((size_t)(y1 - y0) * W * 4, 0.0f);
  for (int l = 0; l < nlayers; ++l) {
    LayerBand lb;
    if (!layer_band(l, y0, y1, &lb)) continue;
    if (l == focus) {
      copy_in_focus(lb, sc);
      continue;
    }
    SplatWriter write = begin_layer(lb, sc);
    splat_layer(lb, coc, write);
    cover_layer(lb, write);
    const bool has_fine = splat_fine(lb, coc, sc);
    scan_rows(lb, sc);
    composite_layer(lb, sc, has_fine);
    clear_layer(lb, sc, has_fine);
  }
  finish_band(y0, y1, coc, out, sc);
}

// Where layer l meets the band [y0, y1): false when none of its splats reaches it.
template <typename T, typename C, typename K>
bool Renderer<T, C, K>::layer_band(int l, int y0, int y1, LayerBand* lb) const {
  const Layer& L = layers[l];
  if (!L.count) return false;
  const ApertureShape& shape = P.shape[l > focus];
  const float reach = L.r_hi * std::max(-shape.ext_lo, shape.ext_hi) + 2.0f;
  if (L.ymin - reach > y1 || L.ymax + reach < y0) return false;
  lb->l = l;
  lb->y0 = y0;
  lb->y1 = y1;
  lb->shape = &shape;
  lb->reach = reach;
  lb->s = 1 << L.level;
  lb->gw = L.level ? L.grid_w : W;
  lb->gh = L.level ? L.grid_h : H;
  if (L.level == 0) {
    lb->row0 = y0;
    lb->row1 = y1 - 1;
  } else {
    lb->row0 = std::max(0, (int)std::floor((y0 + 0.5f) / lb->s - 0.5f));
    lb->row1 = std::min(lb->gh - 1, (int)std::floor((y1 - 0.5f) / lb->s - 0.5f) + 1);
  }
  lb->nrows = lb->row1 - lb->row0 + 1;
  const float grid_reach = L.level ? (reach / lb->s + 2.0f) : reach;
  lb->src0 = std::max(0, (int)std::floor(lb->row0 - grid_reach));
  lb->src1 = std::min(lb->gh - 1, (int)std::ceil(lb->row1 + grid_reach));
  return true;
}

// The in-focus layer: copied through with full coverage (nothing behind it bleeds in).
template <typename T, typename C, typename K>
void Renderer<T, C, K>::copy_in_focus(const LayerBand& lb, BandScratch& sc) const {
  for (int y = lb.y0; y < lb.y1; ++y) {
    const C* b = xs.data() + offsets[(size_t)lb.l * (H + 1) + y];
    const C* e = xs.data() + offsets[(size_t)lb.l * (H + 1) + y + 1];
    for (; b != e; ++b) {
      const size_t i = (size_t)y * W + *b, k = ((size_t)(y - lb.y0) * W + *b) * 4;
      float c[3];
      colour(i, c);
      copy_over(c, &sc.acc[k], &sc.behind[k]);
    }
  }
}

// Sizes the layer's grid-row buffers (all zero between layers) and resets the
// touched ranges; the writer deposits into them.
template <typename T, typename C, typename K>
SplatWriter Renderer<T, C, K>::begin_layer(const LayerBand& lb, BandScratch& sc) const {
  const size_t need = (size_t)lb.nrows * (lb.gw + 1) * 4;
  if (sc.buf.size() < need) sc.buf.assign(need, 0.0f);  // invariant: buf and pbuf are all zero here
  if (sc.pbuf.size() < need / 4) sc.pbuf.assign(need / 4, 0.0f);
  if (sc.dbuf.size() < need / 4) sc.dbuf.assign(need / 4, 0.0);
  sc.touched.assign(2 * lb.nrows, 0);
  for (int k = 0; k < lb.nrows; ++k) {
    sc.touched[2 * k] = 1 << 30;
    sc.touched[2 * k + 1] = -1;
  }
  return SplatWriter{*lb.shape, sc.buf.data(), sc.pbuf.data(), lb.row0, lb.row1, lb.gw, sc.touched.data(),
                     (float)W / lb.s - 0.5f, (float)H / lb.s - 0.5f, sc.dbuf.data()};
}

// Light and coverage: every level-0 pixel with its own radius, energy-
// normalised at its integer centre; a coarse layer's cell records.
template <typename T, typename C, typename K>
void Renderer<T, C, K>::splat_layer(const LayerBand& lb, Coc coc, const SplatWriter& write) const {
  const Layer& L = layers[lb.l];
  const StampTable& table = stamps[lb.l];
  // Runs of neighbours on one stamp go through stamp_span: span[0] and
  // span[n + 1] stay zero around the run's values.
  v4f span[kSpanMax + 2];
  span[0] = v4f{0.0f, 0.0f, 0.0f, 0.0f};
  if (L.level == 0) {
    for (int y = lb.src0; y <= lb.src1; ++y) {
      const C* b = xs.data() + offsets[(size_t)lb.l * (H + 1) + y];
      const C* e = xs.data() + offsets[(size_t)lb.l * (H + 1) + y + 1];
      while (b != e) {
        const int x = *b;
        const size_t i = (size_t)y * W + x;
        const float r = std::fabs(coc[i]);
        float c[3];
        colour(i, c);
        const Stamp* S = table.find(r);
        if (!(S && write.inside(*S, x, y))) {
          // Off the radius grid, or mirrored across an edge: the geometry row by row.
          const float t = S ? 0.0f : splat_total(*lb.shape, 0.0f, 0.0f, r);
          const float inv = S ? S->inv_total : (t > 0.0f ? 1.0f / t : 0.0f);
          write.splat_mirrored<kBoth>((float)x, (float)y, r, inv, c);
          ++b;
          continue;
        }
        span[1] = v4f{c[0], c[1], c[2], 1.0f};
        int n = 1;
        while (n < kSpanMax && b + n != e && b[n] == x + n && std::fabs(coc[i + n]) == r &&
               write.inside(*S, x + n, y)) {
          colour(i + n, c);
          span[++n] = v4f{c[0], c[1], c[2], 1.0f};
        }
        if (n == 1) {
          write.stamp(*S, table.rows.data(), x, y, span[1]);
        } else {
          span[n + 1] = v4f{0.0f, 0.0f, 0.0f, 0.0f};
          write.stamp_span(*S, table.rows.data(), x, n, y, span + 1);
        }
        b += n;
      }
    }
    return;
  }
  // Cells whose splat is a stamp (their centroid on a grid point), then the others.
  for (int gy = lb.src0; gy <= lb.src1; ++gy) {
    const WholeCell<C>* cells = whole[lb.l].data();
    const int end = L.whole_row_start[gy + 1];
    for (int k = L.whole_row_start[gy]; k < end;) {
      const WholeCell<C>& wc = cells[k];
      const Stamp& S = table.stamps[wc.stamp];
      int n = 1;
      while (n < kSpanMax && k + n < end && cells[k + n].gx == wc.gx + n && cells[k + n].stamp == wc.stamp) ++n;
      if (n == 1) {
        write.stamp(S, table.rows.data(), wc.gx, gy, v4f{wc.v[0], wc.v[1], wc.v[2], wc.v[3]});
      } else {
        for (int j = 0; j < n; ++j) {
          const float* v = cells[k + j].v;
          span[1 + j] = v4f{v[0], v[1], v[2], v[3]};
        }
        span[n + 1] = v4f{0.0f, 0.0f, 0.0f, 0.0f};
        write.stamp_span(S, table.rows.data(), wc.gx, n, gy, span + 1);
      }
      k += n;
    }
  }
  for (int k = L.row_start[lb.src0]; k < L.row_start[lb.src1 + 1]; ++k) {
    const Splat& sp = L.splats[k];
    if (sp.lx == sp.x && sp.ly == sp.y) {
      write.splat_mirrored<kBoth>(sp.x, sp.y, sp.r, sp.cover_scale, sp.c);
      continue;
    }
    // The light moved off the centroid; the coverage may still be a stamp.
    write.splat_mirrored<kLight>(sp.lx, sp.ly, sp.r, sp.light_scale, sp.c);
    if (const Stamp* S = cell_stamp(lb.l, sp))
      write.stamp(*S, table.rows.data(), (int)sp.x, (int)sp.y, v4f{0.0f, 0.0f, 0.0f, sp.w});
    else
      write.splat_mirrored<kCoverage>(sp.x, sp.y, sp.r, sp.cover_scale, sp.c);
  }
}

// Coverage of one radius (see coverage_radius) of the layer's pixels and the
// next nearer layer's.
template <typename T, typename C, typename K>
void Renderer<T, C, K>::cover_layer(const LayerBand& lb, const SplatWriter& write) const {
  const Layer& L = layers[lb.l];
  const float cr = L.cover_r / lb.s;
  if (L.level == 0) {
    // Pixel by pixel: runs of consecutive columns at once (cover_run),
    // pixels near the left and right edges one by one (mirror images).
    const int last = L.has_next ? lb.l + 1 : lb.l;
    for (int src = lb.l; src <= last; ++src) {
      for (int y = lb.src0; y <= lb.src1; ++y) {
        const C* b = xs.data() + offsets[(size_t)src * (H + 1) + y];
        const C* e = xs.data() + offsets[(size_t)src * (H + 1) + y + 1];
        while (b != e) {
          const int x = *b;
          if (x < L.stamp_x0 || x > L.stamp_x1) {
            write.cover_mirrored((float)x, (float)y, cr, L.cover_scale);
            ++b;
            continue;
          }
          int n = 1;
          while (b + n != e && b[n] == x + n && x + n <= L.stamp_x1) ++n;
          write.cover_run(L, x, n, y);
          b += n;
        }
      }
    }
    return;
  }
  for (int k = L.cover_row_start[lb.src0]; k < L.cover_row_start[lb.src1 + 1]; ++k) {
    const Cover& cv = L.covers[k];
    write.cover_mirrored(cv.x, cv.y, cr, cv.scale);
  }
  for (int gy = lb.src0; gy <= lb.src1; ++gy)
    for (int k = L.cover_run_row_start[gy]; k < L.cover_run_row_start[gy + 1]; ++k)
      write.cover_run(L, L.cover_runs[2 * k], L.cover_runs[2 * k + 1], gy);
}

// Fine highlights of a coarse layer: light-only splats on the image grid,
// integrated along their rows here.  Returns whether the layer has any.
template <typename T, typename C, typename K>
bool Renderer<T, C, K>::splat_fine(const LayerBand& lb, Coc coc, BandScratch& sc) const {
  const Layer& L = layers[lb.l];
  if (L.level == 0 || L.fine_x.empty()) return false;
  const int frows = lb.y1 - lb.y0;
  const size_t fneed = (size_t)frows * (W + 1) * 4;
  if (sc.fbuf.size() < fneed) sc.fbuf.assign(fneed, 0.0f);  // invariant: all zero here
  sc.ftouched.assign(2 * frows, 0);
  for (int k = 0; k < frows; ++k) {
    sc.ftouched[2 * k] = 1 << 30;
    sc.ftouched[2 * k + 1] = -1;
  }
  SplatWriter fine{*lb.shape, sc.fbuf.data(), nullptr, lb.y0, lb.y1 - 1, W, sc.ftouched.data(), (float)W - 0.5f,
                   (float)H - 0.5f};
  const int f0 = std::max(0, (int)std::floor(lb.y0 - lb.reach));
  const int f1 = std::min(H - 1, (int)std::ceil(lb.y1 - 1 + lb.reach));
  for (int y = f0; y <= f1; ++y) {
    for (int k = L.fine_row_start[y]; k < L.fine_row_start[y + 1]; ++k) {
      const size_t i = (size_t)y * W + L.fine_x[k];
      float c[3];
      colour(i, c);
      fine.splat_mirrored<kLight>((float)L.fine_x[k], (float)y, std::fabs(coc[i]), L.fine_inv[k], c);
    }
  }
  for (int k = 0; k < frows; ++k) {
    const int c0 = sc.ftouched[2 * k], c1 = sc.ftouched[2 * k + 1];
    float* row = sc.fbuf.data() + (size_t)k * (W + 1) * 4;
    double s0 = 0, s1 = 0, s2 = 0;
    for (int x = c0; x <= c1; ++x) {
      float* d = row + 4 * x;
      s0 += d[0]; s1 += d[1]; s2 += d[2];
      d[0] = (float)s0; d[1] = (float)s1; d[2] = (float)s2;
    }
  }
  return true;
}

// Integrate the markers along each touched row (double running sums; the run
// markers of cover_run are differenced once more).
template <typename T, typename C, typename K>
void Renderer<T, C, K>::scan_rows(const LayerBand& lb, BandScratch& sc) const {
  for (int k = 0; k < lb.nrows; ++k) {
    int c0 = sc.touched[2 * k], c1 = sc.touched[2 * k + 1];
    if (c1 < c0) continue;
    float* row = sc.buf.data() + (size_t)k * (lb.gw + 1) * 4;
    float* prow = sc.pbuf.data() + (size_t)k * (lb.gw + 1);
    double* drow = sc.dbuf.data() + (size_t)k * (lb.gw + 1);
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, t = 0;
    for (int x = c0; x <= c1; ++x) {
      float* d = row + 4 * x;
      t += drow[x];
      drow[x] = 0.0;
      s0 += d[0]; s1 += d[1]; s2 += d[2]; s3 += d[3]; s4 += prow[x] + t;
      d[0] = (float)s0; d[1] = (float)s1; d[2] = (float)s2; d[3] = (float)s3; prow[x] = (float)s4;
    }
  }
}

// Composite the layer over the band: level 0 cell by pixel, coarse layers
// upsampled bilinearly (plus their fine lights).
template <typename T, typename C, typename K>
void Renderer<T, C, K>::composite_layer(const LayerBand& lb, BandScratch& sc, bool has_fine) const {
  const Layer& L = layers[lb.l];
  const int gw = lb.gw, row0 = lb.row0;
  if (L.level == 0) {
    for (int k = 0; k < lb.nrows; ++k) {
      int c0 = sc.touched[2 * k], c1 = std::min(sc.touched[2 * k + 1], W - 1);
      const float* row = sc.buf.data() + (size_t)k * (gw + 1) * 4;
      const float* prow = sc.pbuf.data() + (size_t)k * (gw + 1);
      float* a = sc.acc.data() + (size_t)k * W * 4;
      float* bh = sc.behind.data() + (size_t)k * W * 4;
      for (int x = c0; x <= c1; ++x) {
        const float* d = row + 4 * x;
        composite_over(d[0], d[1], d[2], d[3], prow[x], a + 4 * x, bh + 4 * x);
      }
    }
    return;
  }
  const int s = lb.s;
  const float inv_s = 1.0f / s;
  const int* touched = sc.touched.data();
  for (int y = lb.y0; y < lb.y1; ++y) {
    float v = (y + 0.5f) * inv_s - 0.5f;
    int iy = (int)std::floor(v);
    float fy = v - iy;
    int ya = std::min(std::max(iy, 0), lb.gh - 1), yb = std::min(std::max(iy + 1, 0), lb.gh - 1);
    int ka = ya - row0, kb = yb - row0;
    int c0 = std::min(touched[2 * ka], touched[2 * kb]);
    int c1 = std::max(touched[2 * ka + 1], touched[2 * kb + 1]);
    if (c1 < c0) continue;
    // Fine columns whose bilinear footprint reaches a touched cell.
    int x0 = std::max(0, (c0 - 1) * s), x1 = std::min(W - 1, (c1 + 2) * s);
    const float* ra = sc.buf.data() + (size_t)ka * (gw + 1) * 4;
    const float* rb = sc.buf.data() + (size_t)kb * (gw + 1) * 4;
    const float* pa = sc.pbuf.data() + (size_t)ka * (gw + 1);
    const float* pb = sc.pbuf.data() + (size_t)kb * (gw + 1);
    float* a = sc.acc.data() + (size_t)(y - lb.y0) * W * 4;
    float* bh = sc.behind.data() + (size_t)(y - lb.y0) * W * 4;
    const float* frow = has_fine ? sc.fbuf.data() + (size_t)(y - lb.y0) * (W + 1) * 4 : nullptr;
    const int fc0 = has_fine ? sc.ftouched[2 * (y - lb.y0)] : 1, fc1 = has_fine ? sc.ftouched[2 * (y - lb.y0) + 1] : 0;
    const XTaps& taps = xtaps[L.level];
    for (int x = x0; x <= x1; ++x) {
      const float fx = taps.fx[x];
      const int xa_ = taps.xa[x], xb_ = taps.xb[x];
      float w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
      float s4[4];
      for (int c = 0; c < 4; ++c) {
        // Cells outside a row's touched range hold no data (possibly stale
        // zeros), which is exactly their value: buf stays zero there.
        s4[c] = w00 * ra[4 * xa_ + c] + w01 * ra[4 * xb_ + c] + w10 * rb[4 * xa_ + c] + w11 * rb[4 * xb_ + c];
      }
      const float ph = w00 * pa[xa_] + w01 * pa[xb_] + w10 * pb[xa_] + w11 * pb[xb_];
      if (x >= fc0 && x <= fc1) {
        s4[0] += frow[4 * x];
        s4[1] += frow[4 * x + 1];
        s4[2] += frow[4 * x + 2];
      }
      composite_over(s4[0], s4[1], s4[2], s4[3], ph, a + 4 * x, bh + 4 * x);
    }
  }
}

// Restore the all-zero invariant of buf, pbuf and fbuf (dbuf is cleared by scan_rows).
template <typename T, typename C, typename K>
void Renderer<T, C, K>::clear_layer(const LayerBand& lb, BandScratch& sc, bool has_fine) const {
  if (has_fine) {
    for (int k = 0; k < lb.y1 - lb.y0; ++k) {
      const int c0 = sc.ftouched[2 * k], c1 = sc.ftouched[2 * k + 1];
      if (c1 >= c0) std::memset(sc.fbuf.data() + ((size_t)k * (W + 1) + c0) * 4, 0, sizeof(float) * 4 * (c1 - c0 + 1));
    }
  }
  for (int k = 0; k < lb.nrows; ++k) {
    int c0 = sc.touched[2 * k], c1 = sc.touched[2 * k + 1];
    if (c1 < c0) continue;
    std::memset(sc.buf.data() + ((size_t)k * (lb.gw + 1) + c0) * 4, 0, sizeof(float) * 4 * (c1 - c0 + 1));
    std::memset(sc.pbuf.data() + (size_t)k * (lb.gw + 1) + c0, 0, sizeof(float) * (c1 - c0 + 1));
  }
}

// What no layer covers is what the photo never showed: light from behind
// the blurred objects in front (see resolve_pixel).  Then encode.
template <typename T, typename C, typename K>
void Renderer<T, C, K>::finish_band(int y0, int y1, Coc coc, T* out, BandScratch& sc) const {
  FarPyramid band_far = far;  // with the rows of levels 0 and 1 once a pixel needs them
  bool have_rows = false;
  sc.rgb.resize((size_t)3 * W);
  float* rgb = sc.rgb.data();
  for (int y = y0; y < y1; ++y) {
    const float* a = sc.acc.data() + (size_t)(y - y0) * W * 4;
    const float* bh = sc.behind.data() + (size_t)(y - y0) * W * 4;
    for (int x = 0; x < W; ++x) {
      size_t i = (size_t)y * W + x;
      const float* p = a + 4 * x;
      float far_px[3] = {0.0f, 0.0f, 0.0f}, own[3] = {0.0f, 0.0f, 0.0f};
      float far_w = 0.0f;
      if (needs_far_content(p, bh + 4 * x)) {
        if (!have_rows) {
          band_far = far_rows(y0, y1, sc);
          have_rows = true;
        }
        far_cells(x, y, sc);
        far_w = far_content(band_far, x, y, depth_at(i), std::fabs(coc[i]), far_px);
      }
      if (!(p[3] > 1e-12f)) colour(i, own);  // resolve_pixel reads it only then
      resolve_pixel(p, bh + 4 * x, far_w, far_px, own, rgb + 3 * x);
    }
    encode_row(rgb, 3 * W, out + (size_t)3 * y * W);
  }
}

// encode_linear (bokeh_math.h) of n values.  On x86-64 four at a time with
// SSE2: the same operations in the same order (MAXPS/MINPS are max_f and
// min_f exactly, NaN included, and the table carries a copy of its last entry,
// so t = kEncodeLutSize needs no branch), so the code values are identical;
// the scalar compiler turns the clamps into unpredictable branches.
template <typename T, typename C, typename K>
void Renderer<T, C, K>::encode_row(const float* v, int n, T* out) const {
  const float* lut = encode_lut.data();
  int k = 0;
#if defined(__SSE2__)
  const __m128 zero = _mm_setzero_ps(), one = _mm_set1_ps(1.0f), size = _mm_set1_ps((float)kEncodeLutSize);
  for (; k + 4 <= n; k += 4) {
    const __m128 x = _mm_min_ps(_mm_max_ps(_mm_loadu_ps(v + k), zero), one);
    const __m128 t = _mm_mul_ps(_mm_sqrt_ps(x), size);
    const __m128i i = _mm_cvttps_epi32(t);
    const __m128 f = _mm_sub_ps(t, _mm_cvtepi32_ps(i));
    alignas(16) int idx[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(idx), i);
    const __m128 lo = _mm_setr_ps(lut[idx[0]], lut[idx[1]], lut[idx[2]], lut[idx[3]]);
    const __m128 hi = _mm_setr_ps(lut[idx[0] + 1], lut[idx[1] + 1], lut[idx[2] + 1], lut[idx[3] + 1]);
    const __m128 e = _mm_min_ps(_mm_max_ps(_mm_add_ps(lo, _mm_mul_ps(f, _mm_sub_ps(hi, lo))), zero), one);
    alignas(16) float ev[4];
    _mm_store_ps(ev, e);
    for (int q = 0; q < 4; ++q) from_unit(ev[q], out + k + q);
  }
#endif
  for (; k < n; ++k) encode_linear(lut, v[k], out + k);
}

template <typename T, typename K>
void render_with(const T* image, const K* coc, T* out, int height, int width, const RenderParams& p) {
  if (width <= 65536) {
    Renderer<T, uint16_t, K> r(height, width, p);
    r.run(image, CocView<K>{coc}, out);
  } else {
    Renderer<T, int, K> r(height, width, p);
    r.run(image, CocView<K>{coc}, out);
  }
}

}  // namespace

template <typename T>
void render_cpu(const T* image, CocMap coc, T* out, int height, int width, const RenderParams& p) {
  if (height <= 0 || width <= 0) return;
  if (coc.steps)
    render_with(image, coc.steps, out, height, width, p);
  else
    render_with(image, coc.px, out, height, width, p);
}

template void render_cpu<uint8_t>(const uint8_t*, CocMap, uint8_t*, int, int, const RenderParams&);
template void render_cpu<uint16_t>(const uint16_t*, CocMap, uint16_t*, int, int, const RenderParams&);
template void render_cpu<float>(const float*, CocMap, float*, int, int, const RenderParams&);

}  // namespace pybokeh
