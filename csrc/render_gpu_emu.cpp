// Serial CPU emulation of the CUDA renderer: the plan and per-thread steps of
// render_cuda.cu, run in loops over the same index spaces (integer atomics
// become plain adds, block scans become running sums; both are exact, so the
// layer buffers are bit-identical to the GPU's).
#include <algorithm>
#include <cstring>
#include <vector>

#include "gpu_plan.h"
#include "gpu_steps.h"
#include "render_gpu.h"

namespace pybokeh {
namespace {

using namespace gpu;

template <typename T>
void run(const GpuRenderArgs& a) {
  const int H = a.height, W = a.width;
  const T* image = static_cast<const T*>(a.image);
  const float* coc = a.coc;
  T* out = static_cast<T*>(a.out);
  const size_t N = (size_t)H * W;

  std::vector<float> dlut = decode_table<T>(), elut = encode_table();
  Params p = make_params(a);
  p.decode_lut = dlut.data();
  p.encode_lut = elut.data();

  // classify
  std::vector<uint8_t> keys(N);
  Stats st;
  init_stats(st);
  for (int y = 0; y < H; ++y) {
    for (int x = 0; x < W; ++x) {
      size_t i = (size_t)y * W + x;
      if (!pixel_valid(image + 3 * i)) st.bad_image = 1;
      if (!coc_valid(coc[i], p.max_abs_coc)) st.bad_coc = 1;
      if (p.gain_map && !gain_valid(p.gain_map[i])) st.bad_gain = 1;
      st.max_boost_bits = std::max(st.max_boost_bits, float_bits(pixel_boost(p.gain_map, coc, i)));
      int k = pixel_key(coc[i]);
      keys[i] = (uint8_t)k;
      st.count[k]++;
      st.coc_units[k] += (unsigned long long)coc_units(fabsf(coc[i]));
      st.ymin[k] = std::min(st.ymin[k], y);
      st.ymax[k] = std::max(st.ymax[k], y);
      st.xmin[k] = std::min(st.xmin[k], x);
      st.xmax[k] = std::max(st.xmax[k], x);
      const int b = pixel_fine_bin(image, coc, i, p, k);
      if (b > 0) {
        st.fine_hist[k][b]++;
        st.fine_ymin[k] = std::min(st.fine_ymin[k], y);
        st.fine_ymax[k] = std::max(st.fine_ymax[k], y);
        st.fine_xmin[k] = std::min(st.fine_xmin[k], x);
        st.fine_xmax[k] = std::max(st.fine_xmax[k], x);
      }
    }
  }
  check_stats(st);
  set_fixed_point(p, max_boost(st));
  const size_t budget = a.budget_bytes ? a.budget_bytes : ((size_t)1 << 30);
  Plan plan = make_plan(st, H, W, a.params, (long long)(budget / sizeof(Cell)));

  // aggregate
  std::vector<Record> records((size_t)plan.records);
  std::vector<CoverRecord> crecords((size_t)plan.cover_records);
  std::memset(records.data(), 0, records.size() * sizeof(Record));
  std::memset(crecords.data(), 0, crecords.size() * sizeof(CoverRecord));
  for (const AggPass& ag : plan.passes)
    for (int cy = 0; cy < ag.ncy; ++cy)
      for (int cx = 0; cx < ag.ncx; ++cx)
      {
        aggregate_layers(image, coc, keys.data(), p, ag, plan.layers.data(), records.data(), ag.cx0 + cx,
                         ag.cy0 + cy);
        aggregate_covers(keys.data(), p, ag, plan.layers.data(), crecords.data(), ag.cx0 + cx, ag.cy0 + cy);
      }

  // farthest-content pyramid
  const long long far_cells = set_layers(p, plan);
  std::vector<uint8_t> far_layer((size_t)far_cells);
  std::vector<float> far_count((size_t)far_cells);
  std::vector<float> far_rgb((size_t)far_cells * 3), far_depth((size_t)far_cells);
  p.far.layer = far_layer.data();
  p.far.count = far_count.data();
  p.far.rgb = far_rgb.data();
  p.far.depth = far_depth.data();
  for (int k = 0; k < p.far.levels; ++k)
    for (int cy = 0; cy < p.far.h[k]; ++cy)
      for (int cx = 0; cx < p.far.w[k]; ++cx)
        far_cell(image, coc, keys.data(), p, k, cx, cy, far_layer.data(), far_count.data(), far_rgb.data(),
                 far_depth.data());

  std::vector<Cell> buf((size_t)plan.max_group_cells);
  std::vector<float> acc(N * 4, 0.0f), behind(N * 4, 0.0f);
  for (const GroupDesc& g : plan.groups) {
    std::memset(buf.data(), 0, buf.size() * sizeof(Cell));
    // splat: level-0 pixels (own splats and coverage), fine highlights of
    // coarse layers, then coarse records
    int y0, y1;
    group_pixel_rows(plan, st, g, &y0, &y1);
    for (int y = y0; y <= y1; ++y) {
      for (int x = 0; x < W; ++x) {
        const int key = keys[(size_t)y * W + x];
        const int l = g.layer_of_key[key], f = g.cover_of_key[key];
        if (l >= 0) splat_pixel(image, coc, p, plan.layers[l], buf.data(), x, y, AddWord());
        if (f >= 0) cover_pixel(p, plan.layers[f], buf.data(), x, y, AddWord());
      }
    }
    int fx0, fx1;
    group_fine_box(plan, st, g, &y0, &y1, &fx0, &fx1);
    for (int y = y0; y <= y1; ++y) {
      for (int x = fx0; x <= fx1; ++x) {
        const int fl = g.fine_of_key[keys[(size_t)y * W + x]];
        if (fl >= 0) splat_fine_pixel(image, coc, p, plan.layers[fl], buf.data(), x, y, AddWord());
      }
    }
    for (int l = g.l0; l < g.l1; ++l) {
      const LayerDesc& L = plan.layers[l];
      if (L.is_focus || L.level == 0) continue;
      for (long long r = 0; r < (long long)L.rh * L.rw; ++r)
        splat_record(records[L.rec_offset + r], p, L, buf.data(), AddWord());
      for (long long r = 0; r < (long long)L.crh * L.crw; ++r)
        splat_cover_record(crecords[L.crec_offset + r], p, L, buf.data(), AddWord());
    }
    // scan
    for (int l = g.l0; l < g.l1; ++l) {
      const LayerDesc& L = plan.layers[l];
      for (int r = 0; r < scan_rows(L); ++r) {
        int len;
        Cell* row = scan_row(L, buf.data(), r, &len);
        for (int c = 1; c < len; ++c) row[c] = row[c - 1] + row[c];
      }
    }
    // composite (+ finish on the last group)
    for (int y = 0; y < H; ++y) {
      for (int x = 0; x < W; ++x) {
        size_t i = (size_t)y * W + x;
        float* ac = acc.data() + 4 * i;
        float* bh = behind.data() + 4 * i;
        composite_pixel(image, coc, keys.data(), p, plan.layers.data() + g.l0, g, buf.data(), x, y, ac, bh);
        if (g.last) finish_pixel(image, coc, p, x, y, ac, bh, out);
      }
    }
  }
}

}  // namespace

void render_gpu_emulated(const GpuRenderArgs& a) {
  gpu::check_render_args(a.height, a.width, a.params);
  switch (a.type) {
    case PixelType::kU8: run<uint8_t>(a); break;
    case PixelType::kU16: run<uint16_t>(a); break;
    case PixelType::kF32: run<float>(a); break;
  }
}

}  // namespace pybokeh
