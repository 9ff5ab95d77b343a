#pragma once
// Thread helpers over OpenMP. Small loops run inline: forking threads costs microseconds, which a
// few thousand elements do not repay.
#include <algorithm>
#include <cstdint>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace vts::cpu {

inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline bool in_parallel() {
#ifdef _OPENMP
  return omp_in_parallel();
#else
  return false;
#endif
}

// For the calling thread only (OpenMP keeps the count per thread): a count set on the main thread
// does not reach std::threads started later, which begin from OMP_NUM_THREADS or all cores.
inline void set_num_threads(int n) {
#ifdef _OPENMP
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}

// Calls body(begin, end) on contiguous chunks of [begin, end); `grain` is the smallest chunk
// worth a thread. Two user threads calling it at once each fork a team of their own (docs/ops.md,
// "Threads").
template <class Body>
void parallel_for(int64_t begin, int64_t end, int64_t grain, Body&& body) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  const int threads = max_threads();
  if (threads <= 1 || n <= grain || in_parallel()) {
    body(begin, end);
    return;
  }
  const int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
#ifdef _OPENMP
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
#endif
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = begin + n * c / chunks, e = begin + n * (c + 1) / chunks;
    body(b, e);
  }
}

}  // namespace vts::cpu
