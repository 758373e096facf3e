// Occlusion-aware layered scatter renderer on the CPU (std::thread, no OpenMP).
#pragma once

#include <cstdint>

namespace pybokeh {

struct RenderParams {
  int blades = 0;                      // 0 = disk, else 3..16
  const float* aperture_lut = nullptr; // (kApertureLutSize + 1) x 2 for polygons
  float ext_lo = -1.0f, ext_hi = 1.0f; // vertical extent of the unit aperture
  float highlight_gain = 0.0f;         // see highlight_gain() in bokeh_math.h
  int threads = 1;
};

// image: H x W x 3 (sRGB; uint8, uint16 or float in [0, 1]), coc: H x W signed
// CoC radius in px (finite), out: H x W x 3 of the image's type.
template <typename T>
void render_cpu(const T* image, const float* coc, T* out, int height, int width, const RenderParams& p);

}  // namespace pybokeh
