#pragma once
// The smallest ViT the training tests use (tests/hash, tests/weights): 8x8 grey images, 4x4
// patches, two blocks of width 16. A config is nothing but these constants.
#include <cstdint>

namespace vts_test {

struct Tiny8 {
  static constexpr const char* name = "tiny8";
  static constexpr int64_t image = 8, channels = 1, patch = 4, dim = 16, depth = 2, heads = 2, mlp = 32;
};

}  // namespace vts_test
