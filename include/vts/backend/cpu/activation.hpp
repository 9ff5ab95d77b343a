#pragma once
// GELU (exact, erf form) forward and backward over contiguous buffers.
//   y  = x·Φ(x),                Φ(x) = ½(1 + erf(x/√2))
//   dx = g·(Φ(x) + x·φ(x)),     φ(x) = e^{−x²/2}/√(2π)
// Written as Eigen array expressions: Eigen's float erf (a rational approximation, a few ulp,
// ±1 beyond |x| = 4) and exp are vectorised, where std::erf in an elementwise loop is a scalar
// libm call, ~90× slower per element. double keeps libm's erf (Eigen forwards to it).
#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>
#include <cstdint>

#include "vts/backend/cpu/parallel.hpp"
#include "vts/core/device.hpp"

namespace vts::cpu {

namespace detail {
template <class T>
using FlatArray = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using ConstFlatArray = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
inline constexpr int64_t kActivationGrain = int64_t(1) << 14;
}  // namespace detail

template <class T>
void gelu_forward(Device, const T* x, T* y, int64_t n) {
  parallel_for_aligned(y, n, detail::kActivationGrain, [&](int64_t b, int64_t e) {
    const detail::ConstFlatArray<T> xv(x + b, e - b);
    detail::FlatArray<T>(y + b, e - b) = T(0.5) * xv * (T(1) + (xv * T(0.70710678118654752440)).erf());
  });
}

template <class T>
void gelu_backward(Device, const T* x, const T* g, T* dx, int64_t n) {
  parallel_for_aligned(dx, n, detail::kActivationGrain, [&](int64_t b, int64_t e) {
    const detail::ConstFlatArray<T> xv(x + b, e - b), gv(g + b, e - b);
    const auto cdf = T(0.5) * (T(1) + (xv * T(0.70710678118654752440)).erf());
    const auto pdf = (T(-0.5) * xv.square()).exp() * T(0.39894228040143267794);
    detail::FlatArray<T>(dx + b, e - b) = gv * (cdf + xv * pdf);
  });
}

}  // namespace vts::cpu
