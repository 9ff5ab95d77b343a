// Compiled by the test "nn: a ViT configuration that cannot work is a compile error saying why"
// (tests/core/CMakeLists.txt, expect_compile_errors.cmake): it must NOT compile, and the compiler's
// output must hold each of nn/vit.hpp's static_assert messages below. Each configuration has one slip.
#include <vts/nn/vit.hpp>

namespace {
struct Base {
  static constexpr const char* name = "slip";
  static constexpr int64_t image = 8, channels = 1, patch = 4, dim = 8, depth = 1, heads = 2, mlp = 16;
};
struct PatchZero : Base {
  static constexpr int64_t patch = 0;  // was: division by zero is not a constant expression
};
struct DepthNegative : Base {
  static constexpr int64_t depth = -1;  // was: size 18446744073709551615 of array exceeds ...
};
struct PatchNotDividing : Base {
  static constexpr int64_t image = 10;
};
struct HeadsNotDividing : Base {
  static constexpr int64_t dim = 10, heads = 3;  // was: an error at run time, and none with depth 0
};
}  // namespace

int main() {
  vts::Generator gen(1);
  vts::nn::ViT<PatchZero> a(gen);
  vts::nn::ViT<DepthNegative> b(gen);
  vts::nn::ViT<PatchNotDividing> c(gen);
  vts::nn::ViT<HeadsNotDividing> d(gen);
  return 0;
}
