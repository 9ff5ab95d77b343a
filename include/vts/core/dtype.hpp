#pragma once
// Element types: float and double compute on the CPU; bf16 is a storage type (CUDA computes in
// fp32 and stores bf16), defined here so tensors of it can exist everywhere.
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace vts {

struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  // Round to nearest even, as the hardware conversion does; NaN stays NaN.
  explicit bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      bits = static_cast<uint16_t>((u >> 16) | 0x40u);
    } else {
      u += 0x7fffu + ((u >> 16) & 1u);
      bits = static_cast<uint16_t>(u >> 16);
    }
  }
  explicit operator float() const {
    uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

template <class T>
struct dtype_traits;
template <>
struct dtype_traits<float> {
  static constexpr const char* name = "float32";
};
template <>
struct dtype_traits<double> {
  static constexpr const char* name = "float64";
};
template <>
struct dtype_traits<bf16> {
  static constexpr const char* name = "bfloat16";
};

// The type of what ops save and pass beside a tensor of T (LayerNorm's mean and 1/std, attention's
// row log-sum-exp and scale): float for bf16, whose kernels compute in fp32; T otherwise.
template <class T>
using acc_t = std::conditional_t<std::is_same_v<T, bf16>, float, T>;

}  // namespace vts
