// Occlusion-aware layered scatter renderer on the CPU (std::thread, no OpenMP).
#pragma once

#include <cstdint>

#include "bokeh_math.h"

namespace pybokeh {

struct RenderParams {
  // Aperture for points behind the focus plane ([0]) and in front of it ([1],
  // the point reflection of [0]).
  ApertureShape shape[2] = {{0, nullptr, -1.0f, 1.0f}, {0, nullptr, -1.0f, 1.0f}};
  // Per-pixel highlight gain (H x W), see highlight_gain() in bokeh_math.h;
  // nullptr: no boost.
  const float* highlight_gain = nullptr;
  int threads = 1;
};

// An H x W signed CoC map (px) as the renderer reads it: float32 radii, or
// int16 counts of 1 / kCocStepsPerPx px (half the memory; what render() hands
// over when every radius fits, |CoC| < 512 px).  The two give the same radii
// for a map on the grid (k / 64 is exact in float).
struct CocMap {
  const float* px = nullptr;
  const int16_t* steps = nullptr;
  float operator[](size_t i) const { return steps ? (float)steps[i] * (1.0f / kCocStepsPerPx) : px[i]; }
};

// image: H x W x 3 (sRGB; uint8, uint16 or float in [0, 1]), coc: finite,
// out: H x W x 3 of the image's type.
template <typename T>
void render_cpu(const T* image, CocMap coc, T* out, int height, int width, const RenderParams& p);

}  // namespace pybokeh
