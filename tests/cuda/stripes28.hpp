#pragma once
// A small dataset for the training-loop tests (tests/cuda: [training], [graph]).
#include "vts/core/rng.hpp"
#include "vts/data/dataset.hpp"

namespace vts::cuda::test {

// 24 images (1 × 28 × 28) of 3 classes for the training loop: a class-dependent stripe pattern
// plus per-image noise, so batches differ and the loss moves from step to step.
class Stripes28 final : public data::Dataset {
 public:
  int64_t size() const override { return 24; }
  int num_classes() const override { return 3; }
  data::ImageSpec spec() const override { return {1, 28, 28}; }
  void get(int64_t i, float* image, float* label, Generator&) const override {
    check_index(i);
    Generator noise(500 + static_cast<uint64_t>(i));
    const int64_t c = i % 3;
    for (int64_t y = 0; y < 28; ++y)
      for (int64_t x = 0; x < 28; ++x)
        image[y * 28 + x] = ((x + 3 * c) % 9 < 3 ? 1.5f : -0.5f) + 0.5f * static_cast<float>(noise.next_double());
    get_label(i, label);
  }
  void get_label(int64_t i, float* label) const override {
    for (int c = 0; c < 3; ++c) label[c] = (i % 3 == c) ? 1.0f : 0.0f;
  }
};

}  // namespace vts::cuda::test
