#pragma once
// Sum and max reductions over a contiguous input viewed as [A, R, C] (reduce the middle). Every
// axis-set reduction is expressed as one or more of these passes.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "vts/backend/cpu/parallel.hpp"
#include "vts/core/device.hpp"

namespace vts::cpu {

template <class T>
void sum_middle(Device, const T* in, int64_t A, int64_t R, int64_t C, T* out) {
  // Few reductions, each long: the threads share each one through its partial sums; otherwise
  // each reduction runs whole on one thread.
  const bool split_each = A < 8 && R * C >= (int64_t(1) << 16);
  if (C == 1) {
    auto range_sum = [&](const T* p, int64_t rb, int64_t re) {
      T s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t r = rb; r < re; ++r) s += p[r];
      return s;
    };
    if (!split_each) {
      parallel_for(0, A, std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
        for (int64_t a = b; a < e; ++a) out[a] = range_sum(in + a * R, 0, R);
      });
      return;
    }
    const int64_t parts = sum_parts(R);
    std::vector<T> partial(static_cast<size_t>(parts));
    for (int64_t a = 0; a < A; ++a) {
      const T* p = in + a * R;
      parallel_for(0, parts, 1, [&](int64_t pb, int64_t pe) {
        for (int64_t t = pb; t < pe; ++t) partial[static_cast<size_t>(t)] = range_sum(p, R * t / parts, R * (t + 1) / parts);
      });
      T s = 0;
      for (T v : partial) s += v;
      out[a] = s;
    }
    return;
  }
  auto column_sums = [&](int64_t a, int64_t rb, int64_t re, T* dst) {
    for (int64_t r = rb; r < re; ++r) {
      const T* p = in + (a * R + r) * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) dst[c] += p[c];
    }
  };
  if (!split_each) {
    parallel_for(0, A, std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(R * C, 1)), [&](int64_t b, int64_t e) {
      for (int64_t a = b; a < e; ++a) {
        T* dst = out + a * C;
        std::fill(dst, dst + C, T(0));
        column_sums(a, 0, R, dst);
      }
    });
    return;
  }
  // Few output rows but many reduced rows: partial rows over fixed ranges of R, added in order.
  const int64_t parts = std::min(R, sum_parts(R * C));
  std::vector<T> partial(static_cast<size_t>(parts * C));
  for (int64_t a = 0; a < A; ++a) {
    std::fill(partial.begin(), partial.end(), T(0));
    parallel_for(0, parts, 1, [&](int64_t pb, int64_t pe) {
      for (int64_t t = pb; t < pe; ++t) column_sums(a, R * t / parts, R * (t + 1) / parts, partial.data() + t * C);
    });
    T* dst = out + a * C;
    std::fill(dst, dst + C, T(0));
    for (int64_t t = 0; t < parts; ++t)
      for (int64_t c = 0; c < C; ++c) dst[c] += partial[static_cast<size_t>(t * C + c)];
  }
}

// out[a] = max over r of in[a*R + r]; argmax[a] = the first r attaining it (NaN propagates).
template <class T>
void max_rows(Device, const T* in, int64_t A, int64_t R, T* out, int64_t* argmax) {
  parallel_for(0, A, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
    for (int64_t a = b; a < e; ++a) {
      const T* p = in + a * R;
      T best = p[0];
      int64_t where = 0;
      for (int64_t r = 1; r < R; ++r) {
        if (p[r] > best || (p[r] != p[r] && best == best)) {
          best = p[r];
          where = r;
        }
      }
      out[a] = best;
      argmax[a] = where;
    }
  });
}

// Backward of max_rows: dx[a*R + argmax[a]] = g[a], zero elsewhere.
template <class T>
void scatter_rows_at(Device, const T* g, const int64_t* where, int64_t A, int64_t R, T* dx) {
  parallel_for(0, A, 1024, [&](int64_t b, int64_t e) {
    for (int64_t a = b; a < e; ++a) {
      std::fill(dx + a * R, dx + (a + 1) * R, T(0));
      dx[a * R + where[a]] = g[a];
    }
  });
}

}  // namespace vts::cpu
