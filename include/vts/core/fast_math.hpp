#pragma once
// Branch-free float exp and erf that the compiler vectorises (libm's expf/erff are scalar calls,
// and erf-GELU and softmax spend most of their time in them). Accuracy: exp within 2 ulp on its
// range, erf within 4e-7 absolute — below float's own rounding of the results that use them.
// Double keeps the exact library functions (gradient checks run in double).
#include <bit>
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define VTS_FM_HD __host__ __device__ __forceinline__
#else
// Always inlined: a call inside an `omp simd` loop would stop the loop from vectorising.
#define VTS_FM_HD [[gnu::always_inline]]
#endif

namespace vts::fm {

// e^x: x = n·ln2 + r with |r| ≤ ln2/2, e^r by its degree-7 Taylor polynomial, 2^n by exponent bits.
VTS_FM_HD inline float exp(float x) {
  // Clamped to where 2^n is a normal float: e^x saturates at 2.4e38 above 88.37 and at 1.2e-38 below.
  x = x < -87.33654f ? -87.33654f : (x > 88.37626f ? 88.37626f : x);
  // Round to nearest by adding and removing 1.5·2^23 (nearbyint is a call the vectoriser keeps scalar).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  // ln2 split in two so that n·ln2 is exact in the first product (Cody-Waite).
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

// erf via erfc(z) = t·exp(−z² + P(t)), t = 1/(1 + z/2) (a Chebyshev fit with fractional error
// below 1.2e-7 for z ≥ 0), reflected for negative arguments.
VTS_FM_HD inline float erf(float x) {
  const float z = x < 0.0f ? -x : x;
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const float erfc = t * fm::exp(p - z * z);
  const float r = 1.0f - erfc;
  return x < 0.0f ? -r : r;
}

// Generic entry points: fast for float, the library's for everything else.
template <class T>
VTS_FM_HD inline T exp_of(T x) {
  if constexpr (std::is_same_v<T, float>) return fm::exp(x);
  else { using std::exp; return exp(x); }
}
template <class T>
VTS_FM_HD inline T erf_of(T x) {
  if constexpr (std::is_same_v<T, float>) return fm::erf(x);
  else { using std::erf; return erf(x); }
}

}  // namespace vts::fm
