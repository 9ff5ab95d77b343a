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
  const int64_t work = A * R * C;
  const int threads = max_threads();
  if (C == 1) {
    auto row_sum = [&](int64_t a) {
      const T* p = in + a * R;
      T s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t r = 0; r < R; ++r) s += p[r];
      out[a] = s;
    };
    if (A >= threads || work < (1 << 16)) {
      parallel_for(0, A, std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
        for (int64_t a = b; a < e; ++a) row_sum(a);
      });
      return;
    }
    // Few long rows: split each row across threads.
    for (int64_t a = 0; a < A; ++a) {
      std::vector<T> partial(static_cast<size_t>(threads), T(0));
      const T* p = in + a * R;
      parallel_for(0, threads, 1, [&](int64_t tb, int64_t te) {
        for (int64_t t = tb; t < te; ++t) {
          const int64_t rb = R * t / threads, re = R * (t + 1) / threads;
          T s = 0;
#pragma omp simd reduction(+ : s)
          for (int64_t r = rb; r < re; ++r) s += p[r];
          partial[static_cast<size_t>(t)] = s;
        }
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
  if (A >= threads || work < (1 << 16)) {
    parallel_for(0, A, std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(R * C, 1)), [&](int64_t b, int64_t e) {
      for (int64_t a = b; a < e; ++a) {
        T* dst = out + a * C;
        std::fill(dst, dst + C, T(0));
        column_sums(a, 0, R, dst);
      }
    });
    return;
  }
  // Few output rows but many reduced rows: per-thread partial rows, combined in a fixed order.
  for (int64_t a = 0; a < A; ++a) {
    std::vector<T> partial(static_cast<size_t>(threads * C), T(0));
    parallel_for(0, threads, 1, [&](int64_t tb, int64_t te) {
      for (int64_t t = tb; t < te; ++t)
        column_sums(a, R * t / threads, R * (t + 1) / threads, partial.data() + t * C);
    });
    T* dst = out + a * C;
    std::fill(dst, dst + C, T(0));
    for (int t = 0; t < threads; ++t)
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
