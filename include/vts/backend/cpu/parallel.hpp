#pragma once
// Thread helpers over OpenMP. Small loops run inline: forking threads costs microseconds, which a
// few thousand elements do not repay.
#include <algorithm>
#include <cstddef>
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

// parallel_for for a loop that writes `out[i]` through Eigen's vectorised array functions (erf,
// exp): Eigen computes the elements before the first 64-byte-aligned one and after the last whole
// vector with its scalar functions, whose last bit can differ from the vector ones. Here every
// chunk but the first starts on a 64-byte boundary of `out` and every chunk but the last ends on
// one, so each element takes the path it takes in one chunk, at any thread count.
template <class T, class Body>
void parallel_for_aligned(const T* out, int64_t n, int64_t grain, Body&& body) {
  constexpr int64_t lanes = 64 / static_cast<int64_t>(sizeof(T));
  const int64_t misaligned = static_cast<int64_t>(reinterpret_cast<std::uintptr_t>(out) / sizeof(T)) % lanes;
  const int64_t head = std::min(n, (lanes - misaligned) % lanes);
  const int64_t vectors = (n - head + lanes - 1) / lanes;
  if (vectors <= 1) {
    if (n > 0) body(int64_t(0), n);
    return;
  }
  parallel_for(0, vectors, std::max<int64_t>(1, grain / lanes), [&](int64_t vb, int64_t ve) {
    body(vb == 0 ? int64_t(0) : head + vb * lanes, std::min(n, head + ve * lanes));
  });
}

// The number of partial sums a reduction over `elements` values is cut into: fixed by its size,
// never by the thread count, and the partials added in a fixed order, so that a sum has the same
// bits however many threads ran it (docs/ops.md, "Threads").
inline constexpr int64_t kSumPartElements = int64_t(1) << 13;
inline constexpr int64_t kMaxSumParts = 64;

inline int64_t sum_parts(int64_t elements) {
  return std::clamp<int64_t>((elements + kSumPartElements - 1) / kSumPartElements, 1, kMaxSumParts);
}

}  // namespace vts::cpu
