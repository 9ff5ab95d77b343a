#pragma once
// N-dimensional strided iteration, the engine under every elementwise kernel. Dimensions whose
// strides allow it are merged first, so a contiguous tensor is a single flat loop and a transposed
// one costs one extra level, not one per dimension.
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "vts/backend/cpu/parallel.hpp"
#include "vts/core/device.hpp"
#include "vts/core/shape.hpp"

namespace vts::cpu {

template <size_t N>
struct StridedPlan {
  std::vector<int64_t> sizes;                   // coalesced sizes, innermost last
  std::vector<std::array<int64_t, N>> strides;  // per dimension, per operand (in elements)
  int64_t numel = 1;
};

template <size_t N>
StridedPlan<N> make_plan(const Shape& shape, const std::array<const int64_t*, N>& strides) {
  StridedPlan<N> plan;
  for (int d = 0; d < shape.ndim(); ++d) {
    if (shape[d] == 1) continue;  // size-1 dims carry no iteration
    std::array<int64_t, N> st;
    for (size_t k = 0; k < N; ++k) st[k] = strides[k][d];
    if (!plan.sizes.empty()) {
      bool mergeable = true;
      for (size_t k = 0; k < N; ++k)
        if (plan.strides.back()[k] != st[k] * shape[d]) mergeable = false;
      if (mergeable) {
        plan.sizes.back() *= shape[d];
        plan.strides.back() = st;
        continue;
      }
    }
    plan.sizes.push_back(shape[d]);
    plan.strides.push_back(st);
  }
  if (plan.sizes.empty()) {
    plan.sizes.push_back(1);
    plan.strides.push_back({});
  }
  plan.numel = shape.numel();
  return plan;
}

// Runs inner(offsets, inner_strides, length) over every innermost run of the plan, in parallel
// over the outer index. Offsets are element offsets of each operand.
template <size_t N, class Inner>
void for_each_run(const StridedPlan<N>& plan, Inner&& inner, int64_t grain = 1 << 15) {
  const int nd = static_cast<int>(plan.sizes.size());
  const int64_t inner_len = plan.sizes[static_cast<size_t>(nd - 1)];
  const std::array<int64_t, N> inner_st = plan.strides[static_cast<size_t>(nd - 1)];
  if (plan.numel == 0) return;
  const int64_t outer = plan.numel / inner_len;
  if (outer == 1) {
    // One long run: split it across threads.
    parallel_for(0, inner_len, grain, [&](int64_t b, int64_t e) {
      std::array<int64_t, N> off;
      for (size_t k = 0; k < N; ++k) off[k] = b * inner_st[k];
      inner(off, inner_st, e - b);
    });
    return;
  }
  const int64_t row_grain = std::max<int64_t>(1, grain / std::max<int64_t>(inner_len, 1));
  parallel_for(0, outer, row_grain, [&](int64_t b, int64_t e) {
    // Multi-index of row b over the outer dimensions.
    std::vector<int64_t> idx(static_cast<size_t>(nd > 1 ? nd - 1 : 1), 0);
    std::array<int64_t, N> off{};
    int64_t r = b;
    for (int d = nd - 2; d >= 0; --d) {
      idx[static_cast<size_t>(d)] = r % plan.sizes[static_cast<size_t>(d)];
      r /= plan.sizes[static_cast<size_t>(d)];
      for (size_t k = 0; k < N; ++k) off[k] += idx[static_cast<size_t>(d)] * plan.strides[static_cast<size_t>(d)][k];
    }
    for (int64_t row = b; row < e; ++row) {
      inner(off, inner_st, inner_len);
      for (int d = nd - 2; d >= 0; --d) {
        auto& i = idx[static_cast<size_t>(d)];
        const auto& st = plan.strides[static_cast<size_t>(d)];
        if (++i < plan.sizes[static_cast<size_t>(d)]) {
          for (size_t k = 0; k < N; ++k) off[k] += st[k];
          break;
        }
        for (size_t k = 0; k < N; ++k) off[k] -= (i - 1) * st[k];
        i = 0;
      }
    }
  });
}

// dst[i] = src[i] over a shape, both strided.
template <class T>
void copy_strided(Device, const Shape& shape, const T* src, const int64_t* src_strides, T* dst,
                  const int64_t* dst_strides) {
  const auto plan = make_plan<2>(shape, {dst_strides, src_strides});
  for_each_run(plan, [&](const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& st, int64_t n) {
    T* d = dst + off[0];
    const T* s = src + off[1];
    if (st[0] == 1 && st[1] == 1) {
      std::memcpy(d, s, static_cast<size_t>(n) * sizeof(T));
    } else {
      for (int64_t i = 0; i < n; ++i) d[i * st[0]] = s[i * st[1]];
    }
  });
}

template <class T>
void fill(Device, T* dst, int64_t n, T value) {
  parallel_for(0, n, 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dst[i] = value;
  });
}

inline void copy_to_host(Device, void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
inline void copy_from_host(Device, void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }

}  // namespace vts::cpu
