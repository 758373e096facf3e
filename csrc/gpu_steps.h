// Per-thread steps of the GPU renderer, shared by the CUDA kernels
// (render_cuda.cu) and their serial CPU emulation (render_gpu_emu.cpp).
//
// The GPU computes what render_cpu.cpp computes (same layers, grids, splats,
// compositing and encoding; see the algorithm at the top of that file), but it
// organises the work for thousands of threads and for run-to-run determinism:
//
//   classify   one thread per pixel: layer key (side, radius bin) per pixel,
//              per-key pixel count, |CoC| sum (fixed point, for the coverage
//              radius) and bounding box, and for coarse layers the
//              histogram of highlight brightness (fine_light_bin) and the
//              bounding box of the highlights (integer atomics);
//   aggregate  one thread per coarse cell: the splat of each coarse layer in
//              the cell and the coverage splat of each coarse layer (its
//              pixels and the next nearer layer's; same sums, same order as
//              the CPU's build_coarse and build_covers; fine highlights add no
//              colour, see below);
//   splat      one thread per splat: difference markers of each covered row,
//              added with 64/32-bit *integer* atomics into the layer's buffer
//              (own colour and coverage, and the coverage of one radius, see
//              coverage_radius in bokeh_math.h); one thread per
//              fine highlight of a coarse layer: its light-only splat at full
//              resolution into the layer's fine-light buffer;
//   scan       one block per buffer row: prefix sum of the markers;
//   composite  one thread per pixel: the layers back to front
//              (composite_over), then the fill of what stays uncovered
//              (resolve_pixel) and sRGB encoding.
//
// The per-pixel maths are bokeh_math.h's, as in the CPU renderer; the
// highlight gain map (pybokeh/highlights.py) is read per pixel.
//
// Crisp highlights (the CPU's Layer::fine_bin): in a coarse layer, pixels
// whose fine_light_bin reaches the layer's threshold (fine_light_threshold of
// the classify step's histogram) give the coarse cell their coverage but no
// colour; their light is splatted at full resolution into a fine-light buffer
// (Cells over the highlights' bounding box dilated by the splat reach, image
// pixels, same fixed point as the layer buffer; only the colour words are
// used), which the composite step adds to the upsampled colour of the layer.
//
// Why fixed point: float atomics make the sum order, hence the rounding, vary
// from run to run.  Markers are quantised to integers and summed with wrapping
// unsigned arithmetic, which is associative: every run, and the CPU emulation,
// gets bit-identical integrated rows.  The four markers of one span are rounded
// so that they sum to exactly zero, so a splat leaves nothing behind it on its
// row (the CPU's float markers leave ~1e-7 residues).  Wrap-around in the
// intermediate marker sums is harmless: only the integrated values must fit,
// and they are bounded by a few times the layer coverage (<= ~5, limit 127).
// Coverage (own and of one radius) is 32-bit at scale 2^kAlphaBits.  Premultiplied
// colour is 64-bit at scale 2^(kColorBits - e), the largest highlight boost
// < 2^e: its absolute error must stay far below what a dark layer at low
// coverage holds, because composite_over divides the colour by the coverage
// (magnifying it up to 1 / kCoverTrust) where the coverage of one radius
// extends a layer; with 32 bits and a
// boost of 100 that magnified the rounding to 2/255 in the sRGB output.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "bokeh_math.h"

#if defined(__CUDA_ARCH__)
#define PB_UNROLL _Pragma("unroll")
#else
#define PB_UNROLL
#endif

namespace pybokeh {
namespace gpu {

// A pixel's layer key: radius bin j of the far side (CoC < 0) is key j, of the
// near side kMaxBinsPerSide + j; in-focus pixels have kFocusKey.  Unlike the
// layer index, the key does not depend on the number of bins, so the GPU can
// classify the pixels before it knows the largest radius.
constexpr int kNumKeys = 2 * kMaxBinsPerSide + 1;
constexpr int kFocusKey = 2 * kMaxBinsPerSide;
// Coarse layers aggregated by one pass over the pixels (two bins per side share
// a grid level, see layer_level), and as many coverage receivers.
constexpr int kMaxSlots = 4;
// Fixed-point scale of coverage: 2^24 (integrated values up to 127 fit).
constexpr int kAlphaBits = 24;
// ... of colour: 2^(kColorBits - e) for boosts < 2^e (integrated values up to
// 255 times the boost fit in int64).
constexpr int kColorBits = 55;
// Levels of the farthest-content pyramid (down to 1 x 1 for images up to 2^31 px wide).

// One cell of a layer buffer, fixed point: premultiplied r, g, b (64-bit),
// coverage a and the coverage of one radius p (see composite_over).
struct alignas(16) Cell {
  uint64_t c[3];
  uint32_t a, p;
};

PB_HD Cell operator+(const Cell& x, const Cell& y) {
  Cell z;  // wraps: associative
  for (int k = 0; k < 3; ++k) z.c[k] = x.c[k] + y.c[k];
  z.a = x.a + y.a;
  z.p = x.p + y.p;
  return z;
}

// Adds to a buffer word: an atomic on the GPU, a plain add in the emulation.
struct AddWord {
  PB_HD void operator()(uint32_t* p, uint32_t v) const {
#if defined(__CUDA_ARCH__)
    atomicAdd(p, v);
#else
    *p += v;
#endif
  }
  PB_HD void operator()(uint64_t* p, uint64_t v) const {
#if defined(__CUDA_ARCH__)
    atomicAdd(reinterpret_cast<unsigned long long*>(p), (unsigned long long)v);
#else
    *p += v;
#endif
  }
};

// Rounding to the nearest integer of a marker's word type.
PB_HD int32_t round_marker(float v, int32_t) { return (int32_t)rintf(v); }
PB_HD int64_t round_marker(float v, int64_t) { return (int64_t)llrintf(v); }

// Per-render constants.
struct Params {
  int height, width;
  // Aperture behind the focus plane ([0]) and in front of it ([1]); the
  // tables are device pointers (host pointers in the emulation).
  ApertureShape shape[2];
  const float* gain_map;    // H x W highlight gain (see highlight_gain()), or null: no boost
  const float* decode_lut;  // 256 / 65536 entries, or kDecodeLutSize + 1 for float
  const float* encode_lut;  // kEncodeLutSize + 1
  float max_abs_coc;        // larger |CoC| (or NaN) is flagged as invalid input
  // Set once the layers are known (after the classify step):
  float q_color, inv_q_color;  // fixed-point scale of premultiplied colour (64-bit)
  float q_alpha, inv_q_alpha;  // ... and of coverage
  int nbins;                             // bins per side (composite layer indices 0 .. 2 nbins)
  int16_t plan_layer_of_key[kNumKeys];   // index into the layer table, -1: no such layer
  // Farthest-content pyramid (the CPU's far_pyramid): level k has cells of
  // 2^(k+1) pixels with the farthest layer present and its mean colour.
  FarPyramid far;                    // see bokeh_math.h
};

// Per-key pixel statistics gathered by the classify step.  The highlight
// histogram and bounding box cover coarse keys only (key_is_coarse), and
// pixels of fine_light_bin >= 1 (bin 0 is never read by fine_light_threshold).
struct Stats {
  int count[kNumKeys];
  unsigned long long coc_units[kNumKeys];  // sum of coc_units(|CoC|)
  int ymin[kNumKeys], ymax[kNumKeys], xmin[kNumKeys], xmax[kNumKeys];
  int fine_hist[kNumKeys][kFineLightBins];
  int fine_ymin[kNumKeys], fine_ymax[kNumKeys], fine_xmin[kNumKeys], fine_xmax[kNumKeys];
  uint32_t max_boost_bits;  // largest highlight_gain() factor, as float bits (>= 1: ordered like ints)
  int bad_image;  // float pixels outside [0, 1] or NaN
  int bad_coc;    // CoC NaN, infinite or beyond max_abs_coc
  int bad_gain;   // highlight gain NaN, infinite or beyond kMaxHighlightGain
};

// One layer of the render, in composite order.  A non-focus layer owns a
// buffer over its region [gy0, gy1] x [gx0, gx1] of its grid (plus one column
// for the markers at the right end), and coarse layers own a record (splat)
// per grid cell of their pixels' bounding box.
//
// Coverage (the CPU's Layer::cover_r, see coverage_radius): every
// out-of-focus layer gets coverage-only splats of radius cover_r from its own
// pixels and, where the next nearer layer (composite index + 1) has pixels
// (has_next, key next_key), from theirs.  Only the layer's region matters
// (the coverage counts only where the layer's own coverage is > 1e-3).
// Level 0: one splat per pixel, at its integer centre, scaled by cover_scale;
// coarse levels: one record per grid cell of the union of the two layers'
// bounding boxes (region cr*).
struct LayerDesc {
  int key;
  int index;              // composite index (0: farthest)
  int is_focus;
  int side;               // aperture: 0 behind the focus plane, 1 in front
  int level, scale;       // grid 2^level coarser
  int gh, gw;             // full grid size
  int gy0, gy1, gx0, gx1; // buffer region (inclusive)
  int stride;             // cells per buffer row: gx1 - gx0 + 2
  long long buf_offset;   // first cell of the buffer in its group's allocation
  int ry0, rx0, rh, rw;   // record region (coarse layers)
  long long rec_offset;   // first record
  int has_next;
  int next_key;           // key of the nearer layer (-1: none)
  float cover_r;          // coverage radius (fine px), coverage_radius
  float cover_scale;      // level 0: 1 / splat total of cover_r at an integer centre
  int cry0, crx0, crh, crw;  // coverage record region (coarse layers)
  long long crec_offset;     // first coverage record
  // Coarse layers: pixels of fine_light_bin >= fine_bin are fine highlights
  // (kFineLightBins: none).  With has_fine, their light goes to a buffer of
  // image pixels over [fy0, fy1] x [fx0, fx1] (stride fstride = fx1 - fx0 + 2
  // cells), right after the layer's own buffer (fine_offset).
  int fine_bin;
  int has_fine;
  int fy0, fy1, fx0, fx1;
  int fstride;
  long long fine_offset;
};

// A coarse-cell splat (the CPU's Splat): radius r in grid cells, coverage
// splatted at the pixels' centroid (x, y) and light at their brightness-
// weighted centroid (lx, ly), each scaled by coverage weight / splat total;
// mean linear colour c.  n = 0 marks a cell without pixels of the layer.
struct alignas(16) Record : CellSplat {
  int n;
  float pad;
};

// A coarse coverage splat (the CPU's Cover): centroid of the layer's and the
// next nearer layer's pixels in one cell, scale = covered fraction / splat
// total; n = 0: none.
struct alignas(16) CoverRecord {
  float x, y, scale;
  int n;
};

// Channels a splat writes.
enum SplatChannels { kLight = 1, kCoverage = 2, kBoth = 3 };

// One aggregation pass over the cells of one grid level: up to kMaxSlots
// coarse layers (slot_of_key: a pixel's layer) and up to kMaxSlots layers
// receiving coverage splats (pslot_of_key: the slot of the pixel's own layer,
// nslot_of_key: of the layer just farther, whose next nearer layer it is).
struct AggPass {
  int level, scale, gh, gw;
  int cy0, cx0, ncy, ncx;        // cells visited (union of the record regions)
  int nslots, npslots;
  int layer_of_slot[kMaxSlots];  // index into the layer table
  int layer_of_pslot[kMaxSlots]; // ... of the layer receiving the coverage
  int fine_bin_of_slot[kMaxSlots];  // the slot's layer's fine_bin
  int8_t slot_of_key[kNumKeys];  // -1: not aggregated by this pass
  int8_t pslot_of_key[kNumKeys];
  int8_t nslot_of_key[kNumKeys];
};

// The layers rendered together: [l0, l1) in composite order.
struct GroupDesc {
  int l0, l1;
  int first, last;               // first group (acc starts at 0), last (encode output)
  int16_t layer_of_key[kNumKeys];    // level-0 splatting layer of the group, or -1
  int16_t cover_of_key[kNumKeys];    // level-0 layer of the group just farther than the key's, or -1
  int16_t fine_of_key[kNumKeys];     // coarse layer of the group with fine highlights, or -1
};

// ------------------------------------------------------------------ steps

template <typename T>
PB_HD float decode(const float* lut, T v) {
  return lut[v];
}
template <>
PB_HD float decode<float>(const float* lut, float v) {
  return lut_lerp(lut, kDecodeLutSize, v);
}

// Composite index of a key's layer (the CPU's layer_index).
PB_HD int key_layer(int key, int nbins) {
  if (key == kFocusKey) return nbins;
  return key < kMaxBinsPerSide ? nbins - 1 - key : nbins + 1 + (key - kMaxBinsPerSide);
}

// Whether a key's layer is splatted on a coarse grid (layer_level > 0): the
// level depends on the radius bin only.
PB_HD bool key_is_coarse(int key) {
  if (key == kFocusKey) return false;
  return layer_edge(key % kMaxBinsPerSide + 1) > kMaxGridRadius;
}

PB_HD int pixel_key(float coc) {
  float a = fabsf(coc);
  if (!(a >= kInFocusRadius)) return kFocusKey;
  int j = radius_bin(a, kMaxBinsPerSide);
  return coc < 0.0f ? j : kMaxBinsPerSide + j;
}

// Highlight boost factor of pixel i (the CPU's pass 1).
PB_HD float pixel_boost(const float* gain_map, const float* coc, size_t i) {
  return highlight_gain(gain_map ? gain_map[i] : 0.0f, fabsf(coc[i]));
}

// Decoded, highlight-boosted linear colour of pixel i (as the CPU's pass 1).
template <typename T>
PB_HD void pixel_linear(const T* image, const float* coc, size_t i, const Params& p, float rgb[3]) {
  const T* px = image + 3 * i;
  const float g = pixel_boost(p.gain_map, coc, i);
  for (int c = 0; c < 3; ++c) rgb[c] = decode<T>(p.decode_lut, px[c]) * g;
}

template <typename T>
PB_HD bool pixel_valid(const T* px) {
  (void)px;
  return true;
}
template <>
PB_HD bool pixel_valid<float>(const float* px) {
  for (int c = 0; c < 3; ++c)
    if (!(px[c] >= 0.0f && px[c] <= 1.0f)) return false;
  return true;
}

// fine_light_bin of pixel i of layer key `key` for the classify step's
// histogram: 0 unless the key is coarse.  Without a gain map the linear colour
// is at most 1 (< kFineLightMin), so the pixel is not read.
template <typename T>
PB_HD int pixel_fine_bin(const T* image, const float* coc, size_t i, const Params& p, int key) {
  if (!p.gain_map || !key_is_coarse(key)) return 0;
  float rgb[3];
  pixel_linear(image, coc, i, p, rgb);
  return fine_light_bin(max_channel(rgb));
}

PB_HD bool coc_valid(float coc, float max_abs) { return fabsf(coc) <= max_abs; }
// Negative gains mean no boost (as in highlight_gain); NaN and huge ones are errors.
// The gain map's range (kMaxHighlightGain in bokeh_math.h; NaN is invalid).
PB_HD bool gain_valid(float gain) { return gain >= 0.0f && gain <= kMaxHighlightGain; }

// The aggregation of one coarse cell (gx, gy) for every coarse layer of the
// pass (the CPU's build_coarse): count, colour and |CoC| sums, plain and
// brightness-weighted centroids, in the CPU's order (rows down, columns
// right) and precision (double sums of the same float terms).  A fine
// highlight (fine_light_bin >= the layer's fine_bin) adds colour 0: its light
// is splatted on its own (splat_fine_pixel); its coverage stays here.
template <typename T>
PB_HD void aggregate_layers(const T* image, const float* coc, const uint8_t* keys, const Params& p,
                            const AggPass& ag, const LayerDesc* layers, Record* records, int gx, int gy) {
  const int s = ag.scale, W = p.width;
  const float inv_s = 1.0f / (float)s;
  const int x0 = gx * s, y0 = gy * s;
  const int x1 = x0 + s < W ? x0 + s : W;
  const int y1 = y0 + s < p.height ? y0 + s : p.height;
  double sum[kMaxSlots][kCellSums];  // see cell_terms
  int n[kMaxSlots];
  for (int q = 0; q < kMaxSlots; ++q) {
    for (int k = 0; k < kCellSums; ++k) sum[q][k] = 0.0;
    n[q] = 0;
  }
  for (int y = y0; y < y1; ++y) {
    const float v = ((float)y + 0.5f) * inv_s - 0.5f;
    for (int x = x0; x < x1; ++x) {
      size_t i = (size_t)y * W + x;
      int slot = ag.slot_of_key[keys[i]];
      if (slot < 0) continue;
      float rgb[3];
      pixel_linear(image, coc, i, p, rgb);
      const float u = ((float)x + 0.5f) * inv_s - 0.5f;
      double terms[kCellSums];
      cell_terms(rgb, fine_light_bin(max_channel(rgb)) >= ag.fine_bin_of_slot[slot], fabsf(coc[i]), u, v, terms);
PB_UNROLL
      for (int q = 0; q < kMaxSlots; ++q) {  // unrolled selects keep the sums in registers
        if (q == slot) {
PB_UNROLL
          for (int k = 0; k < kCellSums; ++k) sum[q][k] += terms[k];
          n[q] += 1;
        }
      }
    }
  }
  for (int q = 0; q < ag.nslots && q < kMaxSlots; ++q) {
    if (n[q] == 0) continue;
    const LayerDesc& L = layers[ag.layer_of_slot[q]];
    if (gy < L.ry0 || gy >= L.ry0 + L.rh || gx < L.rx0 || gx >= L.rx0 + L.rw) continue;  // cannot happen
    const ApertureShape& ap = p.shape[L.side];
    Record rec;
    static_cast<CellSplat&>(rec) = cell_splat(ap, sum[q], (double)n[q], (double)(x1 - x0) * (double)(y1 - y0), inv_s);
    rec.n = n[q];
    rec.pad = 0.0f;
    records[L.rec_offset + (long long)(gy - L.ry0) * L.rw + (gx - L.rx0)] = rec;
  }
}

// The coverage splat of one coarse cell (gx, gy) for every layer of the pass
// receiving them (the CPU's build_covers): count and centroid of the layer's
// and the next nearer layer's pixels in the cell, same order and precision.
PB_HD void aggregate_covers(const uint8_t* keys, const Params& p, const AggPass& ag, const LayerDesc* layers,
                            CoverRecord* crecords, int gx, int gy) {
  const int s = ag.scale, W = p.width;
  const float inv_s = 1.0f / (float)s;
  const int x0 = gx * s, y0 = gy * s;
  const int x1 = x0 + s < W ? x0 + s : W;
  const int y1 = y0 + s < p.height ? y0 + s : p.height;
  double sum[kMaxSlots][2];  // u, v
  int n[kMaxSlots];
  for (int q = 0; q < kMaxSlots; ++q) {
    sum[q][0] = sum[q][1] = 0.0;
    n[q] = 0;
  }
  for (int y = y0; y < y1; ++y) {
    const float v = ((float)y + 0.5f) * inv_s - 0.5f;
    for (int x = x0; x < x1; ++x) {
      const int key = keys[(size_t)y * W + x];
      const int own = ag.pslot_of_key[key], next = ag.nslot_of_key[key];
      if (own < 0 && next < 0) continue;
      const float u = ((float)x + 0.5f) * inv_s - 0.5f;
PB_UNROLL
      for (int q = 0; q < kMaxSlots; ++q) {
        if (q == own || q == next) {
          sum[q][0] += u;
          sum[q][1] += v;
          n[q] += 1;
        }
      }
    }
  }
  for (int q = 0; q < ag.npslots && q < kMaxSlots; ++q) {
    if (n[q] == 0) continue;
    const LayerDesc& L = layers[ag.layer_of_pslot[q]];
    if (gy < L.cry0 || gy >= L.cry0 + L.crh || gx < L.crx0 || gx >= L.crx0 + L.crw) continue;  // cannot happen
    const double cnt = (double)n[q];
    CoverRecord cv;
    cv.x = (float)(sum[q][0] / cnt);
    cv.y = (float)(sum[q][1] / cnt);
    const float t = splat_total(p.shape[L.side], cv.x, cv.y, L.cover_r * inv_s);
    cv.scale = t > 0.0f ? (float)(cnt / ((double)(x1 - x0) * (double)(y1 - y0))) / t : 0.0f;
    cv.n = n[q];
    crecords[L.crec_offset + (long long)(gy - L.cry0) * L.crw + (gx - L.crx0)] = cv;
  }
}

// Quantised difference markers of one channel of one span (see
// span_markers) into buffer row `row` of layer L; field(cell) gives the
// channel's word (uint32_t or uint64_t) in a cell.  All but the last marker
// are rounded; the last one cancels their sum exactly.  A marker left of the
// region carries into all of it: it is added at the region's first column;
// one right of it affects no cell.
template <typename S, class Field, class Add>
PB_HD void add_markers(Cell* row, Field field, const LayerDesc& L, int m, const int* idx, const float* wgt,
                       float value, Add add) {
  const int last_col = L.gx1 + 1 - L.gx0;
  S q[4];
  S acc = 0;
  for (int t = 0; t < m - 1; ++t) {
    q[t] = round_marker(wgt[t] * value, S());
    acc += q[t];
  }
  q[m - 1] = -acc;
  for (int t = 0; t < m; ++t) {
    if (q[t] == 0) continue;
    int col = idx[t] - L.gx0;
    if (col < 0) col = 0;
    if (col > last_col) continue;
    auto* word = field(row[col]);
    add(word, (typename std::remove_pointer<decltype(word)>::type)q[t]);
  }
}

// The rows of a splat of radius r centred at (cx, cy) inside layer L's
// region (the CPU's SplatWriter::rows): calls deposit(row, m, idx, wgt, vy)
// with the buffer row, the m span markers (index, weight) and the row's
// vertical coverage vy.
template <class F>
PB_HD void splat_rows_in(const ApertureShape& ap, float cx, float cy, float r, const LayerDesc& L, Cell* buf,
                         F&& deposit) {
  int r0, r1;
  splat_rows(ap, cy, r, &r0, &r1);
  if (r0 < L.gy0) r0 = L.gy0;
  if (r1 > L.gy1) r1 = L.gy1;
  for (int row_i = r0; row_i <= r1; ++row_i) {
    float xa, xb, vy;
    if (!splat_row(ap, cx, cy, r, row_i, &xa, &xb, &vy)) continue;
    int idx[4];
    float wgt[4];
    const int m = span_markers(xa, xb, L.gw, idx, wgt);
    if (!m) continue;
    deposit(buf + L.buf_offset + (long long)(row_i - L.gy0) * L.stride, m, idx, wgt, vy);
  }
}

// Light and/or coverage splat (the CPU's SplatWriter::splat<CH>) with
// `scale` (coverage weight / splat total) per unit of covered area and linear
// colour c: quantised markers of channels CH into the layer's buffer.
template <int CH, class Add>
PB_HD void splat(const ApertureShape& ap, float cx, float cy, float r, float scale, const float* c,
                 const LayerDesc& L, Cell* buf, const Params& p, Add add) {
  splat_rows_in(ap, cx, cy, r, L, buf, [&](Cell* row, int m, const int* idx, const float* wgt, float vy) {
    const float a = scale * vy;
    if (CH & kLight) {
      for (int ch = 0; ch < 3; ++ch)
        add_markers<int64_t>(row, [ch](Cell& cell) { return &cell.c[ch]; }, L, m, idx, wgt, a * c[ch] * p.q_color,
                             add);
    }
    if (CH & kCoverage)
      add_markers<int32_t>(row, [](Cell& cell) { return &cell.a; }, L, m, idx, wgt, a * p.q_alpha, add);
  });
}

// Coverage splat into the layer's coverage of one radius (the CPU's
// SplatWriter::cover).
template <class Add>
PB_HD void cover(const ApertureShape& ap, float cx, float cy, float r, float scale, const LayerDesc& L,
                   Cell* buf, const Params& p, Add add) {
  splat_rows_in(ap, cx, cy, r, L, buf, [&](Cell* row, int m, const int* idx, const float* wgt, float vy) {
    add_markers<int32_t>(row, [](Cell& cell) { return &cell.p; }, L, m, idx, wgt, scale * vy * p.q_alpha, add);
  });
}

// mirror_centres (bokeh_math.h) on layer L's grid.
template <class F>
PB_HD void mirrored(const ApertureShape& ap, const LayerDesc& L, const Params& p, float cx, float cy, float r,
                    F&& f) {
  mirror_centres(ap, (float)p.width / L.scale - 0.5f, (float)p.height / L.scale - 0.5f, cx, cy, r, f);
}

template <int CH, class Add>
PB_HD void splat_mirrored(const ApertureShape& ap, float cx, float cy, float r, float scale, const float* c,
                          const LayerDesc& L, Cell* buf, const Params& p, Add add) {
  mirrored(ap, L, p, cx, cy, r, [&](float x, float y) { splat<CH>(ap, x, y, r, scale, c, L, buf, p, add); });
}

template <class Add>
PB_HD void cover_mirrored(const ApertureShape& ap, float cx, float cy, float r, float scale, const LayerDesc& L,
                            Cell* buf, const Params& p, Add add) {
  mirrored(ap, L, p, cx, cy, r, [&](float x, float y) { cover(ap, x, y, r, scale, L, buf, p, add); });
}

// Splat of a level-0 pixel: energy-normalised by the total of its radius's
// splat at an integer centre (the CPU's inv_total); and its coverage splat.
template <typename T, class Add>
PB_HD void splat_pixel(const T* image, const float* coc, const Params& p, const LayerDesc& L, Cell* buf, int x,
                       int y, Add add) {
  size_t i = (size_t)y * p.width + x;
  float rgb[3];
  pixel_linear(image, coc, i, p, rgb);
  const ApertureShape& ap = p.shape[L.side];
  const float r = fabsf(coc[i]);
  const float t = splat_total(ap, 0.0f, 0.0f, r);
  splat_mirrored<kBoth>(ap, (float)x, (float)y, r, t > 0.0f ? 1.0f / t : 0.0f, rgb, L, buf, p, add);
  cover_mirrored(ap, (float)x, (float)y, L.cover_r, L.cover_scale, L, buf, p, add);
}

// Coverage splat of a pixel of the next nearer layer on level-0 layer L.
template <class Add>
PB_HD void cover_pixel(const Params& p, const LayerDesc& L, Cell* buf, int x, int y, Add add) {
  cover_mirrored(p.shape[L.side], (float)x, (float)y, L.cover_r, L.cover_scale, L, buf, p, add);
}

// The fine-light buffer of coarse layer L seen as a level-0 layer region
// (so that the splat and scan steps apply to it unchanged).
PB_HD LayerDesc fine_region(const LayerDesc& L, const Params& p) {
  LayerDesc F = L;
  F.level = 0;
  F.scale = 1;
  F.gh = p.height;
  F.gw = p.width;
  F.gy0 = L.fy0;
  F.gy1 = L.fy1;
  F.gx0 = L.fx0;
  F.gx1 = L.fx1;
  F.stride = L.fstride;
  F.buf_offset = L.fine_offset;
  return F;
}

// The light of a fine highlight (x, y) of coarse layer L (the CPU's
// splat_fine in render_cpu.cpp): light only, at full resolution, radius |CoC|,
// energy-normalised at its integer centre and mirrored like a level-0 splat.
// Pixels of L below its threshold are skipped.
template <typename T, class Add>
PB_HD void splat_fine_pixel(const T* image, const float* coc, const Params& p, const LayerDesc& L, Cell* buf, int x,
                            int y, Add add) {
  const size_t i = (size_t)y * p.width + x;
  float rgb[3];
  pixel_linear(image, coc, i, p, rgb);
  if (fine_light_bin(max_channel(rgb)) < L.fine_bin) return;
  const LayerDesc F = fine_region(L, p);
  const ApertureShape& ap = p.shape[L.side];
  const float r = fabsf(coc[i]);
  const float t = splat_total(ap, 0.0f, 0.0f, r);
  splat_mirrored<kLight>(ap, (float)x, (float)y, r, t > 0.0f ? 1.0f / t : 0.0f, rgb, F, buf, p, add);
}

// Splats of a coarse cell: one for light and coverage when they share a
// centroid, else light and coverage separately.
template <class Add>
PB_HD void splat_record(const Record& rec, const Params& p, const LayerDesc& L, Cell* buf, Add add) {
  if (rec.n == 0) return;
  const ApertureShape& ap = p.shape[L.side];
  if (rec.lx == rec.x && rec.ly == rec.y) {
    splat_mirrored<kBoth>(ap, rec.x, rec.y, rec.r, rec.cover_scale, rec.c, L, buf, p, add);
  } else {
    splat_mirrored<kLight>(ap, rec.lx, rec.ly, rec.r, rec.light_scale, rec.c, L, buf, p, add);
    splat_mirrored<kCoverage>(ap, rec.x, rec.y, rec.r, rec.cover_scale, rec.c, L, buf, p, add);
  }
}

template <class Add>
PB_HD void splat_cover_record(const CoverRecord& ph, const Params& p, const LayerDesc& L, Cell* buf, Add add) {
  if (ph.n == 0) return;
  cover_mirrored(p.shape[L.side], ph.x, ph.y, L.cover_r / (float)L.scale, ph.scale, L, buf, p, add);
}

// r, g, b, own coverage and coverage of one radius of an integrated cell.
PB_HD void cell_to_float(const Cell& c, const Params& p, float out[5]) {
  for (int k = 0; k < 3; ++k) out[k] = (float)(int64_t)c.c[k] * p.inv_q_color;
  out[3] = (float)(int32_t)c.a * p.inv_q_alpha;
  out[4] = (float)(int32_t)c.p * p.inv_q_alpha;
}

PB_HD bool in_region(const LayerDesc& L, int gx, int gy) {
  return gy >= L.gy0 && gy <= L.gy1 && gx >= L.gx0 && gx <= L.gx1;
}

PB_HD long long cell_index(const LayerDesc& L, int gx, int gy) {
  return L.buf_offset + (long long)(gy - L.gy0) * L.stride + (gx - L.gx0);
}

// Rows of layer L's buffers integrated by the scan step: its own region's,
// then its fine-light buffer's.
PB_HD int scan_rows(const LayerDesc& L) {
  if (L.is_focus) return 0;
  return (L.gy1 - L.gy0 + 1) + (L.has_fine ? L.fy1 - L.fy0 + 1 : 0);
}

// Row r (< scan_rows(L)) of those buffers, and its length in cells.
PB_HD Cell* scan_row(const LayerDesc& L, Cell* buf, int r, int* len) {
  const int own = L.gy1 - L.gy0 + 1;
  if (r < own) {
    *len = L.stride;
    return buf + L.buf_offset + (long long)r * L.stride;
  }
  *len = L.fstride;
  return buf + L.fine_offset + (long long)(r - own) * L.fstride;
}

// Integrated value of grid cell (gx, gy) of layer L, coverage of one radius
// included; zero outside its region (where no own splat reaches).
PB_HD void layer_cell(const LayerDesc& L, const Cell* buf, const Params& p, int gx, int gy, float out[5]) {
  if (!in_region(L, gx, gy)) {
    out[0] = out[1] = out[2] = out[3] = out[4] = 0.0f;
    return;
  }
  cell_to_float(buf[cell_index(L, gx, gy)], p, out);
}

// Composite layers [g.l0, g.l1) over pixel (x, y)'s accumulator, as the CPU's
// copy_in_focus and composite_layer: in-focus pixels copied with coverage 1, level-0 layers read
// directly, coarse layers upsampled bilinearly (edge cells clamped).
// group_layers[k] is layer g.l0 + k (the CUDA kernel keeps them in shared memory).
// `behind` accumulates what lies behind the visible layers (see composite_over).
template <typename T>
PB_HD void composite_pixel(const T* image, const float* coc, const uint8_t* keys, const Params& p,
                           const LayerDesc* group_layers, const GroupDesc& g, const Cell* buf, int x, int y,
                           float acc[4], float behind[4]) {
  const size_t i = (size_t)y * p.width + x;
  for (int l = g.l0; l < g.l1; ++l) {
    const LayerDesc& L = group_layers[l - g.l0];
    if (L.is_focus) {
      if (keys[i] == kFocusKey) {
        float rgb[3];
        pixel_linear(image, coc, i, p, rgb);
        copy_over(rgb, acc, behind);
      }
      continue;
    }
    if (L.level == 0) {
      if (!in_region(L, x, y)) continue;
      float d[5];
      layer_cell(L, buf, p, x, y, d);
      composite_over(d[0], d[1], d[2], d[3], d[4], acc, behind);
      continue;
    }
    const float inv_s = 1.0f / (float)L.scale;
    float v = ((float)y + 0.5f) * inv_s - 0.5f;
    int iy = (int)floorf(v);
    float fy = v - (float)iy;
    int ya = iy < 0 ? 0 : (iy > L.gh - 1 ? L.gh - 1 : iy);
    int yb = iy + 1 < 0 ? 0 : (iy + 1 > L.gh - 1 ? L.gh - 1 : iy + 1);
    if (yb < L.gy0 || ya > L.gy1) continue;
    float u = ((float)x + 0.5f) * inv_s - 0.5f;
    int ix = (int)floorf(u);
    float fx = u - (float)ix;
    int xa = ix < 0 ? 0 : (ix > L.gw - 1 ? L.gw - 1 : ix);
    int xb = ix + 1 < 0 ? 0 : (ix + 1 > L.gw - 1 ? L.gw - 1 : ix + 1);
    if (xb < L.gx0 || xa > L.gx1) continue;
    float w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
    float aa[5], ab[5], ba[5], bb[5], s5[5];
    layer_cell(L, buf, p, xa, ya, aa);
    layer_cell(L, buf, p, xb, ya, ab);
    layer_cell(L, buf, p, xa, yb, ba);
    layer_cell(L, buf, p, xb, yb, bb);
    for (int c = 0; c < 5; ++c) s5[c] = w00 * aa[c] + w01 * ab[c] + w10 * ba[c] + w11 * bb[c];
    // The integrated light of the layer's fine highlights at the pixel.
    if (L.has_fine && y >= L.fy0 && y <= L.fy1 && x >= L.fx0 && x <= L.fx1) {
      const Cell& f = buf[L.fine_offset + (long long)(y - L.fy0) * L.fstride + (x - L.fx0)];
      for (int c = 0; c < 3; ++c) s5[c] += (float)(int64_t)f.c[c] * p.inv_q_color;
    }
    composite_over(s5[0], s5[1], s5[2], s5[3], s5[4], acc, behind);
  }
}

// One cell of the farthest-content pyramid (the CPU's build_far_pyramid):
// level k's cell (cx, cy) from the 2 x 2 cells of level k - 1 (pixels for
// k = 0): the farthest layer among them, how many pixels hold it, their mean
// colour (far_colour) and mean depth position.
template <typename T>
PB_HD void far_cell(const T* image, const float* coc, const uint8_t* keys, const Params& p, int k, int cx, int cy,
                    uint8_t* far_layer, float* far_count, float* far_rgb, float* far_depth) {
  const int ph = k ? p.far.h[k - 1] : p.height, pw = k ? p.far.w[k - 1] : p.width;
  int best = 255;
  double sum[4] = {0.0, 0.0, 0.0, 0.0}, n = 0.0;
  for (int dy = 0; dy < 2; ++dy) {
    for (int dx = 0; dx < 2; ++dx) {
      const int yy = 2 * cy + dy, xx = 2 * cx + dx;
      if (yy >= ph || xx >= pw) continue;
      const size_t j = (size_t)yy * pw + xx;
      if (k) {
        const long long o = p.far.off[k - 1] + (long long)j;
        far_accumulate(far_layer[o], (double)far_count[o], far_rgb + 3 * o, far_depth[o], &best, sum, &n);
      } else {
        float lin[3], c[3];
        pixel_linear(image, coc, j, p, lin);
        far_colour(lin, c);
        far_accumulate(key_layer(keys[j], p.nbins), 1.0, c, depth_position(coc[j]), &best, sum, &n);
      }
    }
  }
  const long long o = p.far.off[k] + (long long)cy * p.far.w[k] + cx;
  far_layer[o] = (uint8_t)best;
  far_count[o] = (float)n;
  for (int q = 0; q < 3; ++q) far_rgb[3 * o + q] = (float)(sum[q] / n);
  far_depth[o] = (float)(sum[3] / n);
}

// Fill what stays uncovered with the content behind (resolve_pixel), encode,
// quantise: the CPU's finish_band.
template <typename T>
PB_HD void finish_pixel(const T* image, const float* coc, const Params& p, int x, int y,
                        const float acc[4], const float behind[4], T* out) {
  const size_t i = (size_t)y * p.width + x;
  float rgb[3], own[3] = {0.0f, 0.0f, 0.0f}, far[3] = {0.0f, 0.0f, 0.0f};
  const float far_w =
      needs_far_content(acc, behind) ? far_content(p.far, x, y, depth_position(coc[i]), fabsf(coc[i]), far) : 0.0f;
  if (!(acc[3] > 1e-12f)) pixel_linear(image, coc, i, p, own);  // resolve_pixel reads it only then
  resolve_pixel(acc, behind, far_w, far, own, rgb);
  for (int c = 0; c < 3; ++c) encode_linear(p.encode_lut, rgb[c], out + 3 * i + c);
}

}  // namespace gpu
}  // namespace pybokeh
