#pragma once
// GELU and its derivative with the normal CDF in an exp form instead of erf, in fp32: what the bf16
// CUDA kernels compute (since 2026-12-04; erff stays selectable for the benchmark, docs/cuda.md),
// and what the host test checks against the exact function at every bf16 input.
//
// Why: with erff the bf16 GELU kernels were bound by instruction issue rather than by memory
// (docs/cuda.md, "GELU"). CUDA's erff evaluates two polynomials' worth of selected coefficients and an
// exp2 (about 25 instructions); with the lower tail of the normal distribution written as
//   Φ(−|x|) = t · 2^(−x²/2 · log2 e + R(t)),   t = 1 / (1 + 0.4 |x|),
// and R a degree-8 polynomial (fitted to the exact function for |x| ≤ 14, weighted minimax, max
// error 8.7e-8 in R: scripts/fit-gelu-exp-form.py prints these coefficients again), GELU is
//   x ≥ 0: x − x·Φ(−|x|),   x < 0: x·Φ(−|x|)   =   fma(−|x|, tail, max(x, 0)),
// about 18 instructions with one reciprocal and one exp2, and no cancellation in the lower tail
// (1 + erf(x/√2) loses every digit there: erff's formula returns 0 below x ≈ −5.5).
// Accuracy of Φ in fp32 (relative): ≤ 7e-7 for |x| ≤ 3, ≤ 2.2e-6 down to −6, ≤ 1e-5 down to −14,
// where the rounding of the exponent argument (≈ −x²/2 · log2 e) dominates. Rounded to bf16, the
// GELU of every finite bf16 input equals the correctly rounded value (tests/core/test_gelu_exp_form).
// ±∞: GELU(+∞) = +∞ and GELU(−∞) = 0 (the limits; erff's formula gives NaN at −∞); NaN stays NaN.
#include <cmath>

#include "vts/core/functors.hpp"

namespace vts::fn {

namespace gelu_exp_form_detail {

// 1/y and 2^y: one MUFU instruction each on the device (≤ 1 and 2 ulp; 2^y flushes results below
// 2^−126 to zero); correctly rounded library calls on the host, with 2^y flushed as the device
// flushes it, so that the host test of every bf16 input sees the device's zeros.
VTS_HD inline float rcp(float y) {
#if defined(__CUDA_ARCH__)
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(y));
  return r;
#else
  return 1.0f / y;
#endif
}
VTS_HD inline float exp2(float y) {
#if defined(__CUDA_ARCH__)
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(y));
  return r;
#else
  const float r = std::exp2(y);
  return r < 0x1p-126f ? 0.0f : r;
#endif
}

// 2^y for exponents down to −190: below −64, 2^(y + 64) · 2^−64, so that results under 2^−126 reach
// the denormal range through an ordinary multiply instead of exp2's flush. The tail and density
// of x ≈ −13.1 … −14 are such results (Φ(−13.125) ≈ 1.2e−39): flushed, GELU and its derivative
// there were 0 instead of the bf16 denormals down to 9e−41 (H200, 2026-12-04). y + 64 is exact
// for y in [−128, −64); the select and multiply are three instructions of the ≈ 20.
VTS_HD inline float exp2_deep(float y, float factor) {
  const bool deep = y < -64.0f;
  return (factor * exp2(deep ? y + 64.0f : y)) * (deep ? 0x1p-64f : 1.0f);
}

inline constexpr float kNegHalfLog2e = -0.72134752044448170f;  // −½ · log2 e
inline constexpr float kLog2InvSqrt2Pi = -1.32574806473615920f;  // log2(1/√(2π))

// Φ(−a) for a = |x| ≥ 0, and through q the factor −a/2 · log2 e of the exponent, which the
// derivative reuses.
VTS_HD inline float lower_tail(float a, float& q) {
  const float t = rcp(std::fma(0.4f, a, 1.0f));
  // R(t) · log2 e, Horner, highest power first.
  float r = 2.739437521e-01f;
  r = std::fma(r, t, -1.402856588e+00f);
  r = std::fma(r, t, 2.801234722e+00f);
  r = std::fma(r, t, -2.515230179e+00f);
  r = std::fma(r, t, 7.742470503e-01f);
  r = std::fma(r, t, -2.584658861e-01f);
  r = std::fma(r, t, 5.360392332e-01f);
  r = std::fma(r, t, 1.438610792e+00f);
  r = std::fma(r, t, -2.647522926e+00f);
  q = kNegHalfLog2e * a;
  return exp2_deep(std::fma(q, a, r), t);
}

// Past |x| = 14 the tail is below 1e-44: zero in fp32 once flushed. The forward clamps |x| there
// so that |x| = ∞ does not meet a zero tail in a product (∞ · 0).
inline constexpr float kTailEnd = 14.0f;

}  // namespace gelu_exp_form_detail

// x · Φ(x).
VTS_HD inline float gelu_exp_form(float x) {
  const float a = std::fmin(std::fabs(x), gelu_exp_form_detail::kTailEnd);
  float q;
  const float tail = gelu_exp_form_detail::lower_tail(a, q);
  const float positive_part = x < 0.0f ? 0.0f : x;  // not fmax, which would turn a NaN into 0
  return std::fma(-a, tail, positive_part);
}

// d/dx x·Φ(x) = Φ(x) + x·φ(x), φ(x) = 2^(−x²/2 · log2 e) / √(2π).
VTS_HD inline float gelu_grad_exp_form(float x) {
  namespace d = gelu_exp_form_detail;
  // Not clamped: x·φ(x) needs φ's own zero far out (a clamped |x| would leave x·φ(14) ≠ 0 for
  // x = −400 on the host); at ±∞ the derivative is NaN, as the erf formula's is.
  const float a = std::fabs(x);
  float q;
  const float tail = d::lower_tail(a, q);
  const float cdf = x < 0.0f ? tail : 1.0f - tail;  // not 0.5 ± (0.5 − tail): that cancels below 0
  const float pdf = d::exp2_deep(std::fma(q, a, d::kLog2InvSqrt2Pi), 1.0f);
  return std::fma(x, pdf, cdf);
}

}  // namespace vts::fn
