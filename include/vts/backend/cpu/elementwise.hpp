#pragma once
// Elementwise loops over strided, broadcast inputs into a contiguous output. The functor carries
// the math; the contiguous case is a flat loop the compiler vectorises.
#include <cstdint>
#include <type_traits>

#include "vts/backend/cpu/parallel.hpp"
#include "vts/backend/cpu/strided.hpp"
#include "vts/core/dtype.hpp"

// Before a loop that applies a caller's functor. OpenMP's `simd` lets GCC vectorise it without
// run-time alias checks, and where the functor calls a scalar libm function (erf, tanh, pow) GCC
// keeps that loop scalar without a word. Clang warns instead (-Wpass-failed), once for every such
// instantiation and at the caller's line, where no pragma in this header can silence it: a user's
// 25-line program got nine warnings. So under Clang the loop is left to the auto-vectoriser, which
// vectorises what it can (with an alias check) and says nothing about the rest.
#if defined(__clang__)
#define VTS_SIMD_FUNCTOR_LOOP
#else
#define VTS_SIMD_FUNCTOR_LOOP _Pragma("omp simd")
#endif

namespace vts::cpu {

template <class T, class F>
void unary_map(Device, const Shape& shape, const T* x, const int64_t* x_strides, T* out, F f) {
  const auto out_strides = contiguous_strides(shape);
  const auto plan = make_plan<2>(shape, {out_strides.data(), x_strides});
  for_each_run(plan, [&](const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& st, int64_t n) {
    T* o = out + off[0];
    const T* a = x + off[1];
    if (st[1] == 1) {
      VTS_SIMD_FUNCTOR_LOOP
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i * st[1]]);
    }
  });
}

// out = f(a, b) with a and b already given broadcast strides (0 on broadcast dimensions).
template <class T, class F>
void binary_map(Device, const Shape& shape, const T* a, const int64_t* a_strides, const T* b,
                const int64_t* b_strides, T* out, F f) {
  const auto out_strides = contiguous_strides(shape);
  const auto plan = make_plan<3>(shape, {out_strides.data(), a_strides, b_strides});
  for_each_run(plan, [&](const std::array<int64_t, 3>& off, const std::array<int64_t, 3>& st, int64_t n) {
    T* o = out + off[0];
    const T* pa = a + off[1];
    const T* pb = b + off[2];
    if (st[1] == 1 && st[2] == 1) {
      VTS_SIMD_FUNCTOR_LOOP
      for (int64_t i = 0; i < n; ++i) o[i] = f(pa[i], pb[i]);
    } else if (st[1] == 1 && st[2] == 0) {
      const T vb = *pb;
      VTS_SIMD_FUNCTOR_LOOP
      for (int64_t i = 0; i < n; ++i) o[i] = f(pa[i], vb);
    } else if (st[1] == 0 && st[2] == 1) {
      const T va = *pa;
      VTS_SIMD_FUNCTOR_LOOP
      for (int64_t i = 0; i < n; ++i) o[i] = f(va, pb[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i] = f(pa[i * st[1]], pb[i * st[2]]);
    }
  });
}

// out = f(a, b, c), three broadcast inputs (used by backward formulas such as g·f'(x, y)).
template <class T, class F>
void ternary_map(Device, const Shape& shape, const T* a, const int64_t* sa, const T* b, const int64_t* sb,
                 const T* c, const int64_t* sc, T* out, F f) {
  const auto out_strides = contiguous_strides(shape);
  const auto plan = make_plan<4>(shape, {out_strides.data(), sa, sb, sc});
  for_each_run(plan, [&](const std::array<int64_t, 4>& off, const std::array<int64_t, 4>& st, int64_t n) {
    T* o = out + off[0];
    const T* pa = a + off[1];
    const T* pb = b + off[2];
    const T* pc = c + off[3];
    if (st[1] == 1 && st[2] == 1 && st[3] == 1) {
      VTS_SIMD_FUNCTOR_LOOP
      for (int64_t i = 0; i < n; ++i) o[i] = f(pa[i], pb[i], pc[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i] = f(pa[i * st[1]], pb[i * st[2]], pc[i * st[3]]);
    }
  });
}

// acc[i] += x[i] over contiguous buffers (bf16: summed in float, rounded once, as on CUDA).
template <class T>
void accumulate(Device, T* acc, const T* x, int64_t n) {
  parallel_for(0, n, 1 << 15, [&](int64_t b, int64_t e) {
    if constexpr (std::is_same_v<T, bf16>) {
      for (int64_t i = b; i < e; ++i) acc[i] = bf16(static_cast<float>(acc[i]) + static_cast<float>(x[i]));
    } else {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) acc[i] += x[i];
    }
  });
}

// dst[i] = src[i] converted to T: the casts between element types (an fp32 loss on a bf16 model,
// float <-> double). bf16 converts through float, so double -> bf16 rounds twice and can differ
// from a single correctly rounded conversion in the last bf16 bit.
template <class S, class T>
void convert(Device, const S* src, T* dst, int64_t n) {
  parallel_for(0, n, 1 << 15, [&](int64_t b, int64_t e) {
    if constexpr (std::is_same_v<S, bf16> || std::is_same_v<T, bf16>) {
      for (int64_t i = b; i < e; ++i) dst[i] = T(static_cast<float>(src[i]));
    } else {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) dst[i] = static_cast<T>(src[i]);
    }
  });
}

}  // namespace vts::cpu

#undef VTS_SIMD_FUNCTOR_LOOP
