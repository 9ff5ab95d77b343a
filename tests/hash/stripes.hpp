// The small model (common/tiny8.hpp) and dataset the hash tests that train share (test_pretrain.cpp,
// test_threads.cpp): a ViT of 8x8 grey images with 4x4 patches, and 48 striped images of 3 classes.
#pragma once

#include <cstdint>

#include "../common/tiny8.hpp"
#include "vts/core/rng.hpp"
#include "vts/data/dataset.hpp"
#include "vts/nn/vit.hpp"

namespace vts_test {

// 48 8x8 images of 3 classes: a class-dependent stripe plus per-item noise.
class Stripes final : public vts::data::Dataset {
 public:
  int64_t size() const override { return 48; }
  int num_classes() const override { return 3; }
  vts::data::ImageSpec spec() const override { return {1, 8, 8}; }
  void get(int64_t i, float* image, float* label, vts::Generator&) const override {
    check_index(i);
    vts::Generator noise(1000 + static_cast<uint64_t>(i));
    const int64_t c = i % 3;
    for (int64_t y = 0; y < 8; ++y)
      for (int64_t x = 0; x < 8; ++x)
        image[y * 8 + x] = ((x + c * 2) % 6 < 2 ? 1.0f : -0.5f) + 0.3f * static_cast<float>(noise.next_double());
    get_label(i, label);
  }
  void get_label(int64_t i, float* label) const override {
    for (int c = 0; c < 3; ++c) label[c] = (i % 3 == c) ? 1.0f : 0.0f;
  }
};

}  // namespace vts_test
