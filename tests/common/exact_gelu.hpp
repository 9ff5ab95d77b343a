#pragma once
// The exact GELU and its derivative in long double (glibc's erfc), and every finite bf16 value:
// what the exp-form GELU is checked against, on the host (tests/core) and on the device
// (tests/cuda).
#include <cmath>
#include <cstdint>
#include <vector>

#include "vts/core/dtype.hpp"

namespace vts_test_common {

inline long double normal_cdf(long double x) { return 0.5L * std::erfc(-x / std::sqrt(2.0L)); }
inline long double exact_gelu(long double x) { return x * normal_cdf(x); }
inline long double exact_gelu_grad(long double x) {
  constexpr long double kPi = 3.14159265358979323846264338327950288L;
  return normal_cdf(x) + x * std::exp(-0.5L * x * x) / std::sqrt(2.0L * kPi);
}

// The 65,280 finite values of bf16 (all bit patterns but ±∞ and the NaNs), in bit order.
inline std::vector<float> finite_bf16_values() {
  std::vector<float> xs;
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    vts::bf16 b;
    b.bits = static_cast<uint16_t>(bits);
    const float x = static_cast<float>(b);
    if (std::isfinite(x)) xs.push_back(x);
  }
  return xs;
}

}  // namespace vts_test_common
