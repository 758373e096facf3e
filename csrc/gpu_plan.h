// Host-side planning of a GPU render, shared by render_cuda.cu and its CPU
// emulation (render_gpu_emu.cpp): lookup tables, fixed-point scales, and the
// layer table built from the classify step's per-key statistics.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "gpu_steps.h"
#include "render_cpu.h"
#include "render_gpu.h"

namespace pybokeh {
namespace gpu {

// sRGB -> linear table for the image dtype (the CPU's Decoder, entry by entry).
template <typename T>
std::vector<float> decode_table() {
  const bool is_float = std::is_same<T, float>::value;
  const int n = is_float ? kDecodeLutSize + 1 : (1 << (8 * sizeof(T)));
  std::vector<float> lut(n);
  for (int i = 0; i < n; ++i) {
    float v = is_float ? (float)i / kDecodeLutSize : to_unit((T)i);
    lut[i] = srgb_to_linear(v);
  }
  return lut;
}

inline std::vector<float> encode_table() {
  std::vector<float> lut(kEncodeLutSize + 1);
  for (int i = 0; i <= kEncodeLutSize; ++i) lut[i] = encode_lut_value(i, kEncodeLutSize);
  return lut;
}

// Fixed-point scales: coverage at 2^kAlphaBits; colour, whose linear values
// reach max_boost (the largest highlight_gain() factor of the image), at
// 2^(kColorBits - e) with max_boost < 2^e.
inline void set_fixed_point(Params& p, float max_boost) {
  int e = 0;
  std::frexp(std::max(1.0f, max_boost), &e);  // max_boost < 2^e
  p.q_alpha = std::ldexp(1.0f, kAlphaBits);
  p.inv_q_alpha = std::ldexp(1.0f, -kAlphaBits);
  p.q_color = std::ldexp(1.0f, kColorBits - e);
  p.inv_q_color = std::ldexp(1.0f, e - kColorBits);
}

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline void init_stats(Stats& s) {
  for (int k = 0; k < kNumKeys; ++k) {
    s.count[k] = 0;
    s.coc_units[k] = 0;
    s.ymin[k] = s.xmin[k] = INT_MAX;
    s.ymax[k] = s.xmax[k] = -1;
    s.fine_ymin[k] = s.fine_xmin[k] = INT_MAX;
    s.fine_ymax[k] = s.fine_xmax[k] = -1;
    for (int b = 0; b < kFineLightBins; ++b) s.fine_hist[k][b] = 0;
  }
  s.max_boost_bits = float_bits(1.0f);
  s.bad_image = s.bad_coc = s.bad_gain = 0;
}

inline float max_boost(const Stats& s) {
  float f;
  std::memcpy(&f, &s.max_boost_bits, sizeof f);
  return f;
}

struct Plan {
  int nbins = 0;
  std::vector<LayerDesc> layers;  // non-empty layers, composite order (far to near)
  std::vector<AggPass> passes;
  std::vector<GroupDesc> groups;
  long long records = 0;          // total records of the coarse layers
  long long cover_records = 0;  // total coverage records of the coarse layers
  long long max_group_cells = 0;  // largest group buffer, in cells
  int16_t layer_of_key[kNumKeys];
};

// Cells of a layer's own buffer, and of its fine-light buffer.
inline long long own_cells(const LayerDesc& L) {
  return L.is_focus ? 0 : (long long)(L.gy1 - L.gy0 + 1) * L.stride;
}
inline long long fine_cells(const LayerDesc& L) {
  return L.has_fine ? (long long)(L.fy1 - L.fy0 + 1) * L.fstride : 0;
}
inline long long layer_cells(const LayerDesc& L) { return own_cells(L) + fine_cells(L); }

// Crisp highlights of coarse layer L (the CPU's build_coarse): the threshold
// bin from the key's histogram, and where there are fine highlights, their
// buffer over the bounding box of the key's highlights (all bins >= 1, a
// superset of those that go fine) dilated by the splat reach.
inline void plan_fine_light(LayerDesc& L, const Stats& st, int H, int W, float r_hi, const ApertureShape& ap) {
  L.fine_bin = kFineLightBins;
  L.has_fine = 0;
  if (L.is_focus || L.level == 0) return;
  long long hist[kFineLightBins];
  long long bright = 0;
  for (int b = 1; b < kFineLightBins; ++b) bright += hist[b] = st.fine_hist[L.key][b];
  hist[0] = (long long)st.count[L.key] - bright;  // not read by fine_light_threshold
  L.fine_bin = fine_light_threshold(hist, fine_light_capacity(H, W, r_hi));
  long long fine = 0;
  for (int b = L.fine_bin; b < kFineLightBins; ++b) fine += hist[b];
  if (fine == 0 || st.fine_ymax[L.key] < 0) return;
  L.has_fine = 1;
  // Rows: the aperture's vertical extent; columns: its circumradius.
  const float reach_unit = std::max(std::fabs(ap.ext_lo), std::fabs(ap.ext_hi));
  const int my = (int)std::ceil(r_hi * reach_unit) + 2, mx = (int)std::ceil(r_hi) + 2;
  L.fy0 = std::max(0, st.fine_ymin[L.key] - my);
  L.fy1 = std::min(H - 1, st.fine_ymax[L.key] + my);
  L.fx0 = std::max(0, st.fine_xmin[L.key] - mx);
  L.fx1 = std::min(W - 1, st.fine_xmax[L.key] + mx);
  L.fstride = L.fx1 - L.fx0 + 2;
}

// Build the layer table from the statistics.  budget_cells bounds the buffer
// cells of a group of layers rendered together (a single larger layer still
// gets a group of its own).
inline Plan make_plan(const Stats& st, int H, int W, const RenderParams& rp, long long budget_cells) {
  Plan plan;
  int max_j = -1;
  for (int k = 0; k < kFocusKey; ++k)
    if (st.count[k] > 0) max_j = std::max(max_j, k % kMaxBinsPerSide);
  const int nbins = max_j + 1;
  plan.nbins = nbins;
  for (int k = 0; k < kNumKeys; ++k) plan.layer_of_key[k] = -1;

  for (int l = 0; l < 2 * nbins + 1; ++l) {
    int key;
    if (l == nbins) key = kFocusKey;
    else if (l < nbins) key = nbins - 1 - l;                  // far side, bin j = nbins - 1 - l
    else key = kMaxBinsPerSide + (l - nbins - 1);             // near side, bin j = l - nbins - 1
    if (st.count[key] <= 0) continue;
    LayerDesc L = {};
    L.key = key;
    L.index = l;
    L.is_focus = key == kFocusKey;
    L.fine_bin = kFineLightBins;
    L.side = l > nbins ? 1 : 0;  // in front of the focus plane: the reflected aperture
    L.level = L.is_focus ? 0 : layer_level(l, nbins);
    L.scale = 1 << L.level;
    const int s = L.scale;
    L.gh = (H + s - 1) / s;
    L.gw = (W + s - 1) / s;
    if (!L.is_focus) {
      const int j = key % kMaxBinsPerSide;
      const float r_hi = layer_edge(j + 1);
      const ApertureShape& ap = rp.shape[L.side];
      const float reach_unit = std::max(std::fabs(ap.ext_lo), std::fabs(ap.ext_hi));
      const int margin = (int)std::ceil(r_hi * reach_unit / (float)s) + 2;
      L.gy0 = std::max(0, st.ymin[key] / s - margin);
      L.gy1 = std::min(L.gh - 1, st.ymax[key] / s + margin);
      L.gx0 = std::max(0, st.xmin[key] / s - margin);
      L.gx1 = std::min(L.gw - 1, st.xmax[key] / s + margin);
      L.stride = L.gx1 - L.gx0 + 2;
      plan_fine_light(L, st, H, W, r_hi, ap);
      if (L.level > 0) {
        L.ry0 = st.ymin[key] / s;
        L.rx0 = st.xmin[key] / s;
        L.rh = st.ymax[key] / s - L.ry0 + 1;
        L.rw = st.xmax[key] / s - L.rx0 + 1;
        L.rec_offset = plan.records;
        plan.records += (long long)L.rh * L.rw;
      }
    }
    plan.layer_of_key[key] = (int16_t)plan.layers.size();
    plan.layers.push_back(L);
  }

  // Coverage: every out-of-focus layer gets splats of one radius from its
  // pixels and the next nearer layer's (the CPU's Renderer::run).
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    LayerDesc& L = plan.layers[i];
    if (L.is_focus) continue;
    const bool next = i + 1 < plan.layers.size() && plan.layers[i + 1].index == L.index + 1;
    L.has_next = next ? 1 : 0;
    L.next_key = next ? plan.layers[i + 1].key : -1;
    L.cover_r = coverage_radius((long long)st.coc_units[L.key], st.count[L.key]);
    const ApertureShape& ap = rp.shape[L.side];
    if (L.level == 0) {
      const float t = splat_total(ap, 0.0f, 0.0f, L.cover_r);
      L.cover_scale = t > 0.0f ? 1.0f / t : 0.0f;
    } else {
      const int s = L.scale;
      int y0 = st.ymin[L.key], y1 = st.ymax[L.key], x0 = st.xmin[L.key], x1 = st.xmax[L.key];
      if (next) {
        y0 = std::min(y0, st.ymin[L.next_key]);
        y1 = std::max(y1, st.ymax[L.next_key]);
        x0 = std::min(x0, st.xmin[L.next_key]);
        x1 = std::max(x1, st.xmax[L.next_key]);
      }
      L.cry0 = y0 / s;
      L.crx0 = x0 / s;
      L.crh = y1 / s - L.cry0 + 1;
      L.crw = x1 / s - L.crx0 + 1;
      L.crec_offset = plan.cover_records;
      plan.cover_records += (long long)L.crh * L.crw;
    }
  }

  // Aggregation passes: the coarse layers of each level, kMaxSlots at a time
  // (their own splats and their coverage splats).
  for (int level = 1; level < 31; ++level) {
    std::vector<int> ids, pids;
    for (int i = 0; i < (int)plan.layers.size(); ++i) {
      const LayerDesc& L = plan.layers[i];
      if (L.is_focus || L.level != level) continue;
      ids.push_back(i);
      pids.push_back(i);
    }
    for (size_t b = 0; b < std::max(ids.size(), pids.size()); b += kMaxSlots) {
      AggPass ag = {};
      ag.level = level;
      ag.scale = 1 << level;
      ag.gh = (H + ag.scale - 1) / ag.scale;
      ag.gw = (W + ag.scale - 1) / ag.scale;
      for (int k = 0; k < kNumKeys; ++k) ag.slot_of_key[k] = ag.pslot_of_key[k] = ag.nslot_of_key[k] = -1;
      int cy0 = INT_MAX, cx0 = INT_MAX, cy1 = -1, cx1 = -1;
      auto cover = [&](int ry0, int rx0, int rh, int rw) {
        cy0 = std::min(cy0, ry0);
        cx0 = std::min(cx0, rx0);
        cy1 = std::max(cy1, ry0 + rh - 1);
        cx1 = std::max(cx1, rx0 + rw - 1);
      };
      for (size_t q = b; q < ids.size() && q < b + kMaxSlots; ++q) {
        const LayerDesc& L = plan.layers[ids[q]];
        ag.layer_of_slot[ag.nslots] = ids[q];
        ag.fine_bin_of_slot[ag.nslots] = L.fine_bin;
        ag.slot_of_key[L.key] = (int8_t)ag.nslots;
        ++ag.nslots;
        cover(L.ry0, L.rx0, L.rh, L.rw);
      }
      for (size_t q = b; q < pids.size() && q < b + kMaxSlots; ++q) {
        const LayerDesc& L = plan.layers[pids[q]];
        ag.layer_of_pslot[ag.npslots] = pids[q];
        ag.pslot_of_key[L.key] = (int8_t)ag.npslots;
        if (L.has_next) ag.nslot_of_key[L.next_key] = (int8_t)ag.npslots;
        ++ag.npslots;
        cover(L.cry0, L.crx0, L.crh, L.crw);
      }
      ag.cy0 = cy0;
      ag.cx0 = cx0;
      ag.ncy = cy1 - cy0 + 1;
      ag.ncx = cx1 - cx0 + 1;
      plan.passes.push_back(ag);
    }
  }

  // Groups of consecutive layers whose buffers fit the budget together.
  const int nl = (int)plan.layers.size();
  int l0 = 0;
  while (l0 < nl) {
    long long cells = 0;
    int l1 = l0;
    while (l1 < nl && (l1 == l0 || cells + layer_cells(plan.layers[l1]) <= budget_cells)) {
      plan.layers[l1].buf_offset = cells;
      plan.layers[l1].fine_offset = cells + own_cells(plan.layers[l1]);
      cells += layer_cells(plan.layers[l1]);
      ++l1;
    }
    GroupDesc g = {};
    g.l0 = l0;
    g.l1 = l1;
    for (int k = 0; k < kNumKeys; ++k) {
      int l = plan.layer_of_key[k];
      g.layer_of_key[k] =
          (l >= l0 && l < l1 && !plan.layers[l].is_focus && plan.layers[l].level == 0) ? (int16_t)l : (int16_t)-1;
      // The layer just farther than key k's receives the coverage of its pixels.
      int f = l - 1;
      g.cover_of_key[k] = (l > 0 && f >= l0 && f < l1 && plan.layers[f].has_next && plan.layers[f].level == 0)
                                ? (int16_t)f
                                : (int16_t)-1;
      g.fine_of_key[k] = (l >= l0 && l < l1 && plan.layers[l].has_fine) ? (int16_t)l : (int16_t)-1;
    }
    plan.max_group_cells = std::max(plan.max_group_cells, cells);
    plan.groups.push_back(g);
    l0 = l1;
  }
  for (size_t gi = 0; gi < plan.groups.size(); ++gi) {
    plan.groups[gi].first = gi == 0;
    plan.groups[gi].last = gi + 1 == plan.groups.size();
  }
  if (plan.groups.empty()) throw std::logic_error("pybokeh: empty render plan");
  return plan;
}

// Layer lookups and the farthest-content pyramid's geometry (the CPU halves
// the size, rounding up, down to 1 x 1).  Returns the pyramid's cell count.
inline long long set_layers(Params& p, const Plan& plan) {
  p.nbins = plan.nbins;
  for (int k = 0; k < kNumKeys; ++k) p.plan_layer_of_key[k] = plan.layer_of_key[k];
  const long long cells = far_pyramid_shape(p.height, p.width, &p.far);
  if (cells < 0) throw std::invalid_argument("image is too large");
  return cells;
}

// Rows of the image holding the level-0 splat pixels of a group, and the
// pixels whose coverage its level-0 layers receive: [y0, y1].
inline void group_pixel_rows(const Plan& plan, const Stats& st, const GroupDesc& g, int* y0, int* y1) {
  *y0 = INT_MAX;
  *y1 = -1;
  for (int l = g.l0; l < g.l1; ++l) {
    const LayerDesc& L = plan.layers[l];
    if (L.is_focus || L.level != 0) continue;
    *y0 = std::min(*y0, st.ymin[L.key]);
    *y1 = std::max(*y1, st.ymax[L.key]);
    if (L.has_next) {
      *y0 = std::min(*y0, st.ymin[L.next_key]);
      *y1 = std::max(*y1, st.ymax[L.next_key]);
    }
  }
}

// Bounding box [y0, y1] x [x0, x1] of the highlights of a group's coarse
// layers with fine light (empty: y1 < y0).
inline void group_fine_box(const Plan& plan, const Stats& st, const GroupDesc& g, int* y0, int* y1, int* x0,
                           int* x1) {
  *y0 = *x0 = INT_MAX;
  *y1 = *x1 = -1;
  for (int l = g.l0; l < g.l1; ++l) {
    const LayerDesc& L = plan.layers[l];
    if (!L.has_fine) continue;
    *y0 = std::min(*y0, st.fine_ymin[L.key]);
    *y1 = std::max(*y1, st.fine_ymax[L.key]);
    *x0 = std::min(*x0, st.fine_xmin[L.key]);
    *x1 = std::max(*x1, st.fine_xmax[L.key]);
  }
}

inline void check_stats(const Stats& st) {
  if (st.bad_image)
    throw std::invalid_argument("image: float images must be finite and lie in [0, 1] (sRGB)");
  if (st.bad_coc)
    throw std::invalid_argument("coc: the circle of confusion must be finite and within the renderer's limit");
  if (st.bad_gain)
    throw std::invalid_argument("highlight_gain: the gain map must lie in [0, " + std::to_string((int)kMaxHighlightGain) + "]");
}

inline void check_render_args(int height, int width, const RenderParams& rp) {
  if (height <= 0 || width <= 0) throw std::invalid_argument("image must not be empty");
  // Per-key pixel counters (Stats) are 32-bit: frames are limited like the CPU renderer's.
  if ((long long)height * width > kMaxPixels)
    throw std::invalid_argument("image is too large: at most " + std::to_string(kMaxPixels) + " pixels");
  for (const ApertureShape& ap : rp.shape) {
    if (ap.blades != 0 && (ap.blades < 3 || ap.blades > 16))
      throw std::invalid_argument("blades must be 0 or 3..16");
    if (ap.blades && !ap.lut) throw std::invalid_argument("polygon apertures need their span tables");
    if (!(ap.ext_lo < 0.0f && ap.ext_hi > 0.0f && ap.ext_lo >= -1.0f && ap.ext_hi <= 1.0f))
      throw std::invalid_argument("aperture_extents must lie in [-1, 1] around 0");
  }
}

// Params of a render (lookup tables and the gain map's device copy set by
// the caller; the fixed-point scales once the statistics are known).
inline Params make_params(const GpuRenderArgs& a) {
  Params p = {};
  p.height = a.height;
  p.width = a.width;
  p.shape[0] = a.params.shape[0];
  p.shape[1] = a.params.shape[1];
  p.gain_map = a.params.highlight_gain;
  p.max_abs_coc = a.max_abs_coc;
  set_fixed_point(p, 1.0f);
  return p;
}

}  // namespace gpu
}  // namespace pybokeh
