// Per-pixel maths of the pybokeh renderer, shared by the C++ and CUDA backends.
//
// Everything here is a small inline function usable from host and device code,
// so the CPU test-suite exercises exactly the formulas the GPU runs.  The
// Numba backend (pybokeh/renderer/numba_backend.py) and the NumPy reference
// (pybokeh/renderer/reference.py) transcribe these functions one to one;
// keep the three in step.
//
// Conventions
//   * coordinates are pixel centres: pixel i covers [i - 0.5, i + 0.5];
//   * y grows downwards (image rows);
//   * the circle of confusion (CoC) is a signed radius in pixels, positive in
//     front of the focus plane (nearer), negative behind it;
//   * colours are linear-light RGB, premultiplied by the coverage weight.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define PB_HD __host__ __device__ __forceinline__
#define PB_HD_HOT __host__ __device__ __forceinline__
#else
#define PB_HD inline
// Small functions of the CPU's per-pixel loops, which GCC left as calls (a
// profile showed far_colour alone at 6 % of a render).
#define PB_HD_HOT inline __attribute__((always_inline))
#endif

namespace pybokeh {

// ----------------------------------------------------------------- constants

// |CoC| below this radius (px) is in focus: the pixel is copied through.
constexpr float kInFocusRadius = 0.5f;
// Depth layers are bins of |CoC| growing by sqrt(2): [0.5, 0.71), [0.71, 1), ...
// Bin j covers [layer_edge(j), layer_edge(j + 1)).
constexpr int kMaxBinsPerSide = 40;  // up to |CoC| = 0.5 * 2^20 px
// A layer whose largest radius exceeds kMaxGridRadius * 2^k pixels is splatted
// on a grid 2^k times coarser, so that no splat is wider than
// 2 * kMaxGridRadius + 1 grid rows: this is what keeps the cost O(N) in the
// blur radius instead of O(N r) or O(N r^2).
constexpr float kMaxGridRadius = 8.0f;
// Samples of the polygon aperture span table (see aperture_span).
constexpr int kApertureLutSize = 1024;
// Limits of the compiled renderers' inputs, checked by their bindings (and by
// pybokeh.render before them): |CoC| in px (pybokeh.lens.MAX_COC_RADIUS), the
// per-pixel highlight gain (pybokeh.highlights.MAX_HIGHLIGHT_BOOST: beyond it
// float32 sums of boosted light lose the precision of their neighbours), and
// pixels per image (pixel counts are 32-bit ints in the CPU buckets and the
// GPU statistics).
constexpr float kMaxCocRadius = 4096.0f;
constexpr float kMaxHighlightGain = 1000.0f;
constexpr long long kMaxPixels = 2147483647LL;

// Plain min/max: inputs here are finite, and unlike fminf/fmaxf (which must
// honour NaN rules) these compile to single instructions without -ffast-math.
PB_HD float min_f(float a, float b) { return a < b ? a : b; }
PB_HD float max_f(float a, float b) { return a > b ? a : b; }
PB_HD float clamp_f(float v, float lo, float hi) { return min_f(max_f(v, lo), hi); }
// floor() as an int without a libm call (x86-64's baseline SSE2 has no roundss).
// x is clamped to +-2^30 first, so that any float (inf, NaN -> -2^30) converts
// without undefined behaviour; the renderer's coordinates stay far inside.
PB_HD int floor_i(float x) {
  x = clamp_f(x, -1073741824.0f, 1073741824.0f);
  int i = (int)x;
  return i - (x < (float)i);
}

// ------------------------------------------------------------ pixel values

// Lookup-table sizes of the float sRGB decoder and of the encoder (every
// backend builds the same tables from the functions below).
constexpr int kDecodeLutSize = 4096;
constexpr int kEncodeLutSize = 4096;

// Code values of each image dtype to sRGB in [0, 1] (exactly 1 at the top of
// the range), and back, rounding half up (the argument must already lie in
// [0, 1]).  Shared by the CPU and GPU renderers.
PB_HD float to_unit(uint8_t v) { return (float)v / 255.0f; }
PB_HD float to_unit(uint16_t v) { return (float)v / 65535.0f; }
PB_HD float to_unit(float v) { return v; }
PB_HD void from_unit(float v, uint8_t* out) { *out = (uint8_t)(v * 255.0f + 0.5f); }
PB_HD void from_unit(float v, uint16_t* out) { *out = (uint16_t)(v * 65535.0f + 0.5f); }
PB_HD void from_unit(float v, float* out) { *out = v; }

// -------------------------------------------------------------------- sRGB

PB_HD float srgb_to_linear(float v) {
  return v <= 0.04045f ? v * (1.0f / 12.92f) : powf((v + 0.055f) * (1.0f / 1.055f), 2.4f);
}

PB_HD float linear_to_srgb(float x) {
  return x <= 0.0031308f ? 12.92f * x : 1.055f * powf(x, 1.0f / 2.4f) - 0.055f;
}

// Piecewise-linear table lookup of a function sampled at n + 1 equidistant
// points on [0, 1]; t is clamped to [0, 1].
PB_HD float lut_lerp(const float* lut, int n, float t) {
  t = clamp_f(t, 0.0f, 1.0f) * (float)n;
  int i = (int)t;
  if (i >= n) return lut[n];
  float f = t - (float)i;
  return lut[i] + f * (lut[i + 1] - lut[i]);
}

// Encoding table: sRGB(u^2) sampled on u in [0, 1] (square-root spacing keeps
// the steep part of the curve near black accurate); look up with u = sqrt(x).
PB_HD float encode_lut_value(int i, int n) {
  float u = (float)i / (float)n;
  return linear_to_srgb(u * u);
}

// The code value of linear value v through that table (kEncodeLutSize + 1
// entries): clamped to [0, 1], looked up at sqrt(v), clamped, rounded.
template <typename T>
PB_HD_HOT void encode_linear(const float* lut, float v, T* out) {
  from_unit(clamp_f(lut_lerp(lut, kEncodeLutSize, sqrtf(clamp_f(v, 0.0f, 1.0f))), 0.0f, 1.0f), out);
}

// --------------------------------------------------------- highlight boost

// Clipped highlights lost their energy in the photo.  The linear colour of
// an out-of-focus pixel is multiplied by 1 + gain * d, d = clamp(|CoC| - 0.5,
// 0, 1): pixels in focus are never boosted, so they come out unchanged.  The
// per-pixel gain (zero except at clipped pixels) comes from
// pybokeh/highlights.py; all three channels get the same factor, which keeps
// the highlight's hue.
PB_HD_HOT float highlight_gain(float gain, float abs_coc) {
  if (!(gain > 0.0f)) return 1.0f;
  return 1.0f + gain * clamp_f(abs_coc - kInFocusRadius, 0.0f, 1.0f);
}

// ------------------------------------------------------- crisp highlights

// In a coarse layer, highlights brighter than the clip level keep their own
// full-resolution splat for their light (their coverage stays in the coarse
// cell): the bright aperture-shaped discs they make are what the eye looks at
// in bokeh, and the coarse grid would soften their rims by ~2 grid cells.
// The threshold is the smallest power of two >= kFineLightMin (max channel,
// linear) that keeps the layer's count within kFineLightBudget splat rows per
// image pixel; highlights are rare, so normally every one boosted to at least
// twice the clip level qualifies.
constexpr float kFineLightMin = 2.0f;
constexpr float kFineLightBudget = 2.0f;
constexpr int kFineLightBins = 64;

PB_HD_HOT float max_channel(const float* c) { return max_f(max_f(c[0], c[1]), c[2]); }

// Histogram bin of a pixel's max channel m: floor(log2(m)) for m >= 2 (bin 1
// and up, capped), 0 below.  Defined for every float: NaN and negative values
// go to bin 0, +inf and values beyond the last bin to kFineLightBins - 1.
PB_HD int fine_light_bin(float m) {
  if (!(m >= kFineLightMin)) return 0;
  if (!(m < 0x1p62f)) return kFineLightBins - 1;  // also +inf (frexpf's exponent is unspecified there)
  int e = 0;
  frexpf(m, &e);  // m = f * 2^e, f in [0.5, 1)
  return e - 1 < kFineLightBins - 1 ? e - 1 : kFineLightBins - 1;
}

// Most fine highlights a layer with largest radius r_hi may have.
PB_HD long long fine_light_capacity(int h, int w, float r_hi) {
  return (long long)(kFineLightBudget * (double)h * (double)w / (2.0 * (double)r_hi + 1.0));
}

// Smallest bin j >= 1 whose pixels (bins >= j, counts[kFineLightBins]) fit
// the capacity; kFineLightBins when none may go fine.  A pixel goes fine when
// fine_light_bin(m) >= j.
PB_HD int fine_light_threshold(const long long* counts, long long capacity) {
  long long n = 0;
  int j = kFineLightBins;
  while (j > 1 && n + counts[j - 1] <= capacity) n += counts[--j];
  return j;
}

// ------------------------------------------------------------------ layers

// Lower edge of |CoC| bin j: 0.5 * sqrt(2)^j, i.e. 0.5 or sqrt(1/2) (rounded
// to float) times a power of two: exact, so every backend bins a radius
// identically.
PB_HD float layer_edge(int j) {
  return ((j & 1) ? 0.70710678118654752f : 0.5f) * (float)(1u << (j >> 1));
}

// Bin of a radius abs_r >= kInFocusRadius, clamped to [0, nbins - 1] (the
// first estimate is clamped to the table before layer_edge is evaluated, so
// any float, even inf or NaN, gives a valid bin).
PB_HD int radius_bin(float abs_r, int nbins) {
  int j = floor_i(2.0f * log2f(abs_r * 2.0f));
  if (j < 0) j = 0;
  if (j > kMaxBinsPerSide - 1) j = kMaxBinsPerSide - 1;
  // log2f may be off by an ulp: settle against the exact edges.
  while (j > 0 && abs_r < layer_edge(j)) --j;
  while (j + 1 < kMaxBinsPerSide && abs_r >= layer_edge(j + 1)) ++j;
  return j < nbins ? j : nbins - 1;
}

// Composite order of the layers, far to near: far bins (CoC < 0) from the
// largest radius down, then the in-focus layer, then near bins upwards.
// nbins bins per side give 2 * nbins + 1 layers; the in-focus layer is nbins.
PB_HD int layer_index(float coc, int nbins) {
  float a = fabsf(coc);
  if (!(a >= kInFocusRadius)) return nbins;  // also catches NaN defensively
  int j = radius_bin(a, nbins);
  return coc < 0.0f ? nbins - 1 - j : nbins + 1 + j;
}

// Grid level of a layer: splats of bin j are done on a grid 2^level coarser.
PB_HD int layer_level(int layer, int nbins) {
  if (layer == nbins) return 0;
  int j = layer < nbins ? nbins - 1 - layer : layer - nbins - 1;
  float r_hi = layer_edge(j + 1);
  int k = 0;
  while (r_hi > kMaxGridRadius * (float)(1 << k) && k < 30) ++k;
  return k;
}

// --------------------------------------------------------------- aperture

// The aperture as it images onto the sensor: a disk (blades == 0) or a
// polygon tabulated in lut (see aperture_span), with vertical extent
// [ext_lo, ext_hi] in units of the radius.  Points in front of the focus
// plane image the aperture point-reflected relative to points behind it, so
// a renderer holds two shapes (RenderParams::shape).
struct ApertureShape {
  int blades;
  const float* lut;
  float ext_lo, ext_hi;
};

// Horizontal extent [*xl, *xr] of the unit aperture (circumradius 1) at height
// v (y down, in units of the radius).  blades == 0 is the exact disk; otherwise
// lut holds (kApertureLutSize + 1) pairs (xl, xr) sampled at
// v = -1 + 2 i / kApertureLutSize.  Returns false where the row misses the shape.
PB_HD bool aperture_span(int blades, const float* lut, float v, float* xl, float* xr) {
  if (blades == 0) {
    float h = 1.0f - v * v;
    if (h <= 0.0f) return false;
    float w = sqrtf(h);
    *xl = -w;
    *xr = w;
    return true;
  }
  float t = (v + 1.0f) * (0.5f * (float)kApertureLutSize);
  if (!(t >= 0.0f && t <= (float)kApertureLutSize)) return false;
  int i = (int)t;
  if (i >= kApertureLutSize) i = kApertureLutSize - 1;
  float f = t - (float)i;
  const float* a = lut + 2 * i;
  *xl = a[0] + f * (a[2] - a[0]);
  *xr = a[1] + f * (a[3] - a[1]);
  return *xr > *xl;
}

// One row of a splat: the part of the aperture of radius r centred at
// (cx, cy) that falls in grid row `row`.  Gives the horizontal span [*xa, *xb]
// and the row's vertical coverage *vy in (0, 1].
PB_HD bool splat_row(const ApertureShape& ap, float cx, float cy, float r, int row, float* xa, float* xb,
                     float* vy) {
  float a = max_f(cy + r * ap.ext_lo, (float)row - 0.5f);
  float b = min_f(cy + r * ap.ext_hi, (float)row + 0.5f);
  if (!(b > a)) return false;
  float xl, xr;
  // The chord at the middle of the covered part of the row.
  if (!aperture_span(ap.blades, ap.lut, (0.5f * (a + b) - cy) / r, &xl, &xr)) return false;
  *xa = cx + r * xl;
  *xb = cx + r * xr;
  *vy = b - a;
  return true;
}

// Calls f(x, y) for a splat centre and its mirror images across the image
// edges the splat crosses (edges at -0.5 and edge_x / edge_y in grid units):
// the scene is taken to continue mirrored beyond the frame, so a layer that
// reaches the border keeps full coverage there (the aperture shape itself is
// not mirrored: one aperture images every point).  Shared by the CPU's
// SplatWriter and the GPU steps.
template <class F>
PB_HD void mirror_centres(const ApertureShape& ap, float edge_x, float edge_y, float cx, float cy, float r, F&& f) {
  const bool left = cx - r < -0.5f, right = cx + r > edge_x;
  const bool top = cy + r * ap.ext_lo < -0.5f, bottom = cy + r * ap.ext_hi > edge_y;
  f(cx, cy);
  if (!(left || right || top || bottom)) return;
  const float mx = left ? -1.0f - cx : 2.0f * edge_x - cx;
  const float my = top ? -1.0f - cy : 2.0f * edge_y - cy;
  if (left || right) f(mx, cy);
  if (top || bottom) f(cx, my);
  if ((left || right) && (top || bottom)) f(mx, my);
}

// First and last grid rows a splat of radius r centred at cy can touch.
PB_HD void splat_rows(const ApertureShape& ap, float cy, float r, int* row0, int* row1) {
  *row0 = floor_i(cy + r * ap.ext_lo + 0.5f);
  *row1 = floor_i(cy + r * ap.ext_hi + 0.5f);
}

// Total weight of a splat (sum over rows of vertical coverage x span width):
// depositing value / total per unit of coverage conserves energy exactly.
PB_HD float splat_total(const ApertureShape& ap, float cx, float cy, float r) {
  int r0, r1;
  splat_rows(ap, cy, r, &r0, &r1);
  float total = 0.0f;
  for (int row = r0; row <= r1; ++row) {
    float xa, xb, vy;
    if (splat_row(ap, cx, cy, r, row, &xa, &xb, &vy)) total += vy * (xb - xa);
  }
  return total;
}

// Radii on this grid (1/64 px) share one splat per radius: pybokeh.render
// rounds the CoC map to it (pybokeh.lens.COC_STEPS_PER_PX), and the CPU renderer
// keeps the splat of every radius of a layer as a table of row markers (a
// radius error of 1/128 px at most, far below what the eye resolves).  Other
// radii work too, at the cost of their geometry per pixel.
constexpr float kCocStepsPerPx = 64.0f;
// A radius rounded to that grid (halves to even).  Coarse cells round their
// mean radius (in grid cells) to it, so that whole cells, centred on grid
// points, share precomputed splats as well.
PB_HD float on_radius_grid(float r) { return rintf(r * kCocStepsPerPx) * (1.0f / kCocStepsPerPx); }

// Antialiased box [xa, xb] on a row of `width` cells as at most four
// difference markers: after a running sum along the row, cell i holds the
// length of [xa, xb] ∩ [i - 0.5, i + 0.5].  The span is first clipped to the
// row (what falls outside the image is lost; the final normalisation by the
// accumulated coverage compensates).  Writes (index, weight) pairs and returns
// how many; indices lie in [0, width].
PB_HD int span_markers(float xa, float xb, int width, int* idx, float* wgt) {
  xa = max_f(xa, -0.5f);
  xb = min_f(xb, (float)width - 0.5f);
  if (!(xb > xa)) return 0;
  int ia = (int)(xa + 0.5f);  // xa >= -0.5: truncation is floor
  int ib = (int)(xb + 0.5f);
  if (ia > width - 1) ia = width - 1;
  if (ib > width - 1) ib = width - 1;
  if (ia == ib) {
    float len = xb - xa;
    idx[0] = ia; wgt[0] = len;
    idx[1] = ia + 1; wgt[1] = -len;
    return 2;
  }
  float fa = ((float)ia + 0.5f) - xa;  // covered part of the first cell
  float fb = xb - ((float)ib - 0.5f);  // covered part of the last cell
  idx[0] = ia; wgt[0] = fa;
  idx[1] = ia + 1; wgt[1] = 1.0f - fa;
  idx[2] = ib; wgt[2] = fb - 1.0f;
  idx[3] = ib + 1; wgt[3] = -fb;
  return 4;
}

// Weight of a pixel in the position of a coarse splat: its brightness, plus a
// floor so that dark cells fall back to the plain centroid.
PB_HD_HOT float centroid_weight(float r, float g, float b) { return r + g + b + 1e-3f; }

// A coarse cell's light goes to its brightness-weighted centroid only when
// that lies more than this (grid cells, per axis) from the plain centroid:
// a point light in a dark cell moves its light, textured content (offsets of
// a few hundredths) shares one splat for light and coverage, at half the cost.
constexpr float kLightCentroidSnap = 0.25f;
PB_HD bool light_centroid_moves(float x, float y, float lx, float ly) {
  return fabsf(lx - x) > kLightCentroidSnap || fabsf(ly - y) > kLightCentroidSnap;
}

// ------------------------------------------------------------ coarse cells

// A coarse splat: the aggregate of a layer's pixels in one grid cell.  Radius
// r in grid cells, mean linear colour c.  Coverage is splatted at the pixels'
// centroid (x, y), light at their brightness-weighted centroid (lx, ly), so
// that a point light keeps its position on the coarse grid while coverage
// stays exactly uniform over a uniformly covered region; each is scaled by
// the coverage weight (covered fraction of the cell) / its splat total.
struct CellSplat {
  float x, y, lx, ly, r;
  float cover_scale, light_scale;
  float c[3];
  float w;  // covered fraction of the cell
};

// Per-cell sums of a coarse layer's pixels: r, g, b, |CoC|, u, v, w u, w v, w
// (u, v: pixel centre in grid units; w: centroid_weight).
constexpr int kCellSums = 9;

// One pixel's terms of those sums.  A fine highlight adds colour 0: its light
// is splatted on its own at full resolution; its coverage stays in the cell.
// Every backend adds the terms in double, rows down and columns right.
PB_HD_HOT void cell_terms(const float* rgb, bool fine, float abs_coc, float u, float v, double* t) {
  const float c0 = fine ? 0.0f : rgb[0], c1 = fine ? 0.0f : rgb[1], c2 = fine ? 0.0f : rgb[2];
  const double w = centroid_weight(c0, c1, c2);
  t[0] = c0;
  t[1] = c1;
  t[2] = c2;
  t[3] = abs_coc;
  t[4] = u;
  t[5] = v;
  t[6] = w * u;
  t[7] = w * v;
  t[8] = w;
}

// The splat of a cell from the sums a (kCellSums) of its n pixels; area: the
// cell's image pixels (smaller at the right and bottom edges), inv_s: 1 / the
// cell size.
// cell_splat in two steps: the centroids, radius, coverage and colour, then
// the scales (each splat's energy normalisation), which the CPU renderer
// skips for cells it splats from precomputed stamps.
PB_HD CellSplat cell_splat_shape(const double* a, double n, double area, float inv_s) {
  CellSplat sp;
  sp.x = (float)(a[4] / n);
  sp.y = (float)(a[5] / n);
  sp.lx = (float)(a[6] / a[8]);
  sp.ly = (float)(a[7] / a[8]);
  if (!light_centroid_moves(sp.x, sp.y, sp.lx, sp.ly)) {
    sp.lx = sp.x;
    sp.ly = sp.y;
  }
  sp.r = on_radius_grid((float)(a[3] / n) * inv_s);
  sp.w = (float)(n / area);
  sp.cover_scale = sp.light_scale = 0.0f;
  for (int c = 0; c < 3; ++c) sp.c[c] = (float)(a[c] / n);
  return sp;
}
PB_HD void cell_splat_scales(const ApertureShape& ap, CellSplat* sp) {
  const float tc = splat_total(ap, sp->x, sp->y, sp->r);
  const float tl = splat_total(ap, sp->lx, sp->ly, sp->r);
  sp->cover_scale = tc > 0.0f ? sp->w / tc : 0.0f;
  sp->light_scale = tl > 0.0f ? sp->w / tl : 0.0f;
}
PB_HD CellSplat cell_splat(const ApertureShape& ap, const double* a, double n, double area, float inv_s) {
  CellSplat sp = cell_splat_shape(a, n, area, inv_s);
  cell_splat_scales(ap, &sp);
  return sp;
}

// ------------------------------------------------------------- compositing

// A layer's coverage (its alpha): splats of one radius, the mean |CoC| of the
// layer's pixels, from the layer's pixels and the next nearer layer's.  Own
// splats of each pixel's own radius do not add up to 1 where the radius
// varies (1 - ~|dr| / 2r beside a step dr, e.g. an 8-bit depth level), and
// the deficit would show the layers behind (the sky through a dark cap brim
// at every depth contour); splats of one radius tile exactly.  The next
// nearer layer's pixels make the layer continue behind them, so a continuous
// surface cut into two layers leaves no gap.  The radius comes from a
// fixed-point sum (1/1024 px units) so that every backend, and the GPU's
// integer atomics, get the same one; |CoC| beyond 2^20 px (and NaN) counts as
// 2^20, so the sums stay defined.
constexpr float kCocUnits = 1024.0f;
PB_HD long long coc_units(float abs_coc) {
  return abs_coc <= 1048576.0f ? (long long)(abs_coc * kCocUnits + 0.5f) : (long long)(1048576.0f * kCocUnits);
}
PB_HD float coverage_radius(long long units_sum, long long count) {
  return (float)((double)units_sum / ((double)kCocUnits * (double)count));
}

// "Over" of one layer sample onto the accumulator (premultiplied rgb +
// alpha), back to front.  c: the layer's premultiplied colour and a its own
// coverage (splats of each pixel's own radius); p: its coverage (see
// coverage_radius).  The layer's colour is its weighted mean c / a; its alpha
// is max(a, min(p, 1) * min(a / kCoverTrust, 1)): p counts in full where the
// layer's own light is established, and fades out with it (so c / a is never
// magnified more than 1 / kCoverTrust, and the layer's extension behind the
// next one ends smoothly).  Coverage above 1 (overlapping splats of one
// layer) is normalised, not clipped.
//
// behind: what lies behind the visible layers, for resolve_pixel: composited
// like acc, but each layer contributes the accumulator as it stood before it
// (the farther layers), with the layer's alpha.  Divided by the final
// coverage, it is the farther content seen through each visible layer in
// proportion to its visibility: continuous across layer boundaries, where a
// per-pixel "layers behind the pixel's own" would jump.
constexpr float kCoverTrust = 0.05f;
PB_HD_HOT void composite_over(float c0, float c1, float c2, float a, float p, float* acc, float* behind) {
  if (!(a > 1e-7f)) return;
  const float trust = min_f(a * (1.0f / kCoverTrust), 1.0f);
  const float alpha = a >= 1.0f ? 1.0f : max_f(a, trust * clamp_f(p, 0.0f, 1.0f));
  const float k = alpha / a;
  const float t = 1.0f - alpha;
  for (int q = 0; q < 4; ++q) behind[q] = alpha * acc[q] + t * behind[q];
  acc[0] = k * c0 + t * acc[0];
  acc[1] = k * c1 + t * acc[1];
  acc[2] = k * c2 + t * acc[2];
  acc[3] = alpha + t * acc[3];
}

// An in-focus pixel: its colour with coverage 1 (composite_over with alpha 1).
PB_HD void copy_over(const float* rgb, float* acc, float* behind) {
  for (int q = 0; q < 4; ++q) behind[q] = acc[q];
  acc[0] = rgb[0];
  acc[1] = rgb[1];
  acc[2] = rgb[2];
  acc[3] = 1.0f;
}

// ------------------------------------------------ farthest-content pyramid

// Level k (k = 0, 1, ...) has cells of 2^(k+1) pixels holding the farthest
// layer present (min composite index), how many of the cell's pixels hold it,
// their mean colour (far_colour) and their mean depth position
// (depth_position); flattened, level k's cells start at cell off[k].
constexpr int kMaxFarLevels = 32;
// Some rows of level 0, stored apart from the other levels: the CPU renderer
// keeps level 0 (three quarters of the cells) only for the band of rows it is
// resolving.  Row `first` is at index 0.
struct FarRows {  // (far_content does not read the layers)
  const float* count;
  const float* rgb;
  const float* depth;
  int first;
};
constexpr int kFarApartLevels = 2;
struct FarPyramid {
  int levels;
  int height, width;  // the image's
  int h[kMaxFarLevels], w[kMaxFarLevels];
  long long off[kMaxFarLevels];
  const uint8_t* layer;
  const float* count;  // pixels (float: a weight, exact up to 2^24)
  const float* rgb;  // 3 per cell
  const float* depth;
  // Levels 0 and 1's cells when stored apart (the CPU keeps only a band's rows
  // of them), else null: in the arrays above.
  const FarRows* apart[kFarApartLevels];
};

// Fills in the level sizes for an image (each level half the last, rounded
// up, down to 1 x 1) and returns the total number of cells (-1: too large).
inline long long far_pyramid_shape(int height, int width, FarPyramid* p) {
  int h = height, w = width, k = 0;
  long long cells = 0;
  p->height = height;
  p->width = width;
  for (int k = 0; k < kFarApartLevels; ++k) p->apart[k] = nullptr;
  while (h > 1 || w > 1) {
    if (k == kMaxFarLevels) return -1;
    h = (h + 1) / 2;
    w = (w + 1) / 2;
    p->h[k] = h;
    p->w[k] = w;
    p->off[k] = cells;
    cells += (long long)h * w;
    ++k;
  }
  p->levels = k;
  return cells;
}

// A pixel's colour as fill material: the highlight boost undone (a boosted
// pixel had a clipped channel, so scaling its largest channel back to 1 gives
// its recorded colour).  Boosted energy belongs in a bokeh disc; spread as a
// fill over a hole it would paint glowing patches.
PB_HD_HOT void far_colour(const float* c, float* out) {
  const float m = max_channel(c);
  const float k = m > 1.0f ? 1.0f / m : 1.0f;
  for (int q = 0; q < 3; ++q) out[q] = c[q] * k;
}

// Continuous composite position of a pixel: the layer index relative to the
// focus layer, unrounded (+-2 log2(2 |CoC|), + in front of the focus plane, 0
// in focus), so that "farther" can be weighed smoothly (see far_content).
PB_HD_HOT float depth_position(float coc) {
  const float a = fabsf(coc);
  if (!(a > kInFocusRadius)) return 0.0f;
  const float p = 2.0f * log2f(2.0f * a);
  return coc > 0.0f ? p : -p;
}

// Adds one child (layer l, n pixels holding it, their mean colour c and depth
// position d) of a pyramid cell: keeps the pixel count, colour and depth sums
// of the farthest layer seen so far (sum: r, g, b, depth).
PB_HD_HOT void far_accumulate(int l, double n, const float* c, float d, int* best, double* sum, double* count) {
  if (l < *best) {
    *best = l;
    sum[0] = sum[1] = sum[2] = sum[3] = *count = 0.0;
  }
  if (l == *best) {
    sum[0] += n * c[0];
    sum[1] += n * c[1];
    sum[2] += n * c[2];
    sum[3] += n * d;
    *count += n;
  }
}

// The farthest content near pixel (x, y) of depth position `depth` and blur
// radius abs_coc, within a few blur radii, for filling what the composite
// leaves uncovered.  At each level, from the finest, the cells of the
// bilinear 2 x 2 stencil give the mean colour of their farthest layer,
// weighted by their bilinear weight, by the fraction of their pixels holding
// it, and by how much farther it lies (0 at the pixel's own depth, 1 from
// kFarDepthRamp positions behind); the level's answer is trusted in
// proportion to that weight (fully from kFarConfident), the rest of the trust
// goes on to coarser levels.  Levels of cells up to 4 blur radii (at least
// 8 px) count fully, fading out by twice that.  Every weight goes to 0 where
// a cell leaves the stencil, a level fades out or the depths meet, so the fill
// is continuous across the image and across depth; and a lone pixel of a
// farther layer (depth noise at an object's rim) weighs little.  Writes the
// fill, premultiplied by its weight, and returns the weight in [0, 1] (0:
// nothing farther lies near; the caller makes up the rest).
constexpr float kFarConfident = 0.25f;
constexpr float kFarDepthRamp = 2.0f;
PB_HD float far_level_weight(float max_cell, float s) { return clamp_f(2.0f * max_cell / s - 1.0f, 0.0f, 1.0f); }
PB_HD float far_depth_weight(float depth, float cell_depth) {
  return clamp_f((depth - cell_depth) * (1.0f / kFarDepthRamp), 0.0f, 1.0f);
}
PB_HD float far_content(const FarPyramid& p, int x, int y, float depth, float abs_coc, float* fill) {
  const float max_cell = 4.0f * max_f(abs_coc, 2.0f);
  float left = 1.0f;
  fill[0] = fill[1] = fill[2] = 0.0f;
  for (int k = 0; k < p.levels; ++k) {
    const int si = 2 << k;
    const float s = (float)si;
    const float g = far_level_weight(max_cell, s);
    if (!(g > 0.0f)) break;
    const int h = p.h[k], w = p.w[k];
    const FarRows* apart = k < kFarApartLevels ? p.apart[k] : nullptr;
    const float* cell_count = apart ? apart->count : p.count;
    const float* cell_rgb = apart ? apart->rgb : p.rgb;
    const float* cell_depth = apart ? apart->depth : p.depth;
    const long long base = apart ? -(long long)apart->first * w : p.off[k];
    const float u = ((float)x + 0.5f) / s - 0.5f, v = ((float)y + 0.5f) / s - 0.5f;
    const int ix = floor_i(u), iy = floor_i(v);
    const float fx = u - (float)ix, fy = v - (float)iy;
    float acc[3] = {0.0f, 0.0f, 0.0f}, wsum = 0.0f;
    for (int dy = 0; dy < 2; ++dy) {
      for (int dx = 0; dx < 2; ++dx) {
        int cx = ix + dx, cy = iy + dy;
        cx = cx < 0 ? 0 : (cx > w - 1 ? w - 1 : cx);
        cy = cy < 0 ? 0 : (cy > h - 1 ? h - 1 : cy);
        const long long o = base + (long long)cy * w + cx;
        const float farther = far_depth_weight(depth, cell_depth[o]);
        if (!(farther > 0.0f)) continue;
        const int cw = p.width - cx * si < si ? p.width - cx * si : si;
        const int ch = p.height - cy * si < si ? p.height - cy * si : si;
        const float frac = cell_count[o] / ((float)cw * (float)ch);
        const float wgt = (dx ? fx : 1.0f - fx) * (dy ? fy : 1.0f - fy) * frac * farther;
        for (int c = 0; c < 3; ++c) acc[c] += wgt * cell_rgb[3 * o + c];
        wsum += wgt;
      }
    }
    if (wsum > 0.0f) {
      const float trust = g * min_f(1.0f, wsum * (1.0f / kFarConfident));
      const float kf = left * trust / wsum;
      for (int c = 0; c < 3; ++c) fill[c] += kf * acc[c];
      left *= 1.0f - trust;
      if (!(left > 0.0f)) break;
    }
  }
  return 1.0f - left;
}

// Final linear colour of a pixel.  acc: the composite (premultiplied rgb +
// coverage); what it leaves uncovered (hole = 1 - coverage) is light from
// behind the blurred objects in front, which the photo never showed.  It is
// filled with what lies behind the visible layers (behind / coverage, see
// composite_over: premultiplied, so each farther layer in proportion to its
// coverage), what that leaves uncovered with the farthest content nearby
// (far, premultiplied by its weight far_w, see far_content), and the rest
// with the normalised composite (the pixel's own layers continue).  own: the
// pixel's own colour, used where nothing at all covers it.
PB_HD float behind_scale(const float* acc) { return acc[3] > 1e-12f ? 1.0f / acc[3] : 0.0f; }
PB_HD bool needs_far_content(const float* acc, const float* behind) {
  return 1.0f - acc[3] > 1e-4f && 1.0f - behind[3] * behind_scale(acc) > 1e-4f;
}
PB_HD void resolve_pixel(const float* acc, const float* behind, float far_w, const float* far, const float* own,
                         float* rgb) {
  float norm[3];
  if (acc[3] > 1e-12f) {
    const float inv = 1.0f / acc[3];
    for (int c = 0; c < 3; ++c) norm[c] = acc[c] * inv;
  } else {
    for (int c = 0; c < 3; ++c) norm[c] = own[c];
  }
  const float hole = 1.0f - acc[3];
  if (!(hole > 1e-4f)) {
    for (int c = 0; c < 3; ++c) rgb[c] = norm[c];
    return;
  }
  const float kb = behind_scale(acc);
  const float rest = 1.0f - clamp_f(behind[3] * kb, 0.0f, 1.0f);
  for (int c = 0; c < 3; ++c)
    rgb[c] = acc[c] + hole * (behind[c] * kb + rest * (far[c] + (1.0f - far_w) * norm[c]));
}

}  // namespace pybokeh
