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

// image: H x W x 3 (sRGB; uint8, uint16 or float in [0, 1]), coc: H x W signed
// CoC radius in px (finite), out: H x W x 3 of the image's type.
template <typename T>
void render_cpu(const T* image, const float* coc, T* out, int height, int width, const RenderParams& p);

}  // namespace pybokeh
