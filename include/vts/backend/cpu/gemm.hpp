#pragma once
// GEMM on the CPU through Eigen: C = alpha · A·B + beta · C for row-major C. A and B may be
// row-major or column-major views (a transpose is a free change of layout), with any leading
// stride; the element stride inside a row or column must be 1.
//
// Built with VTS_WITH_OPENBLAS (the vts::blas CMake target, -DVTS_BLAS=ON), float and double
// GEMMs go to OpenBLAS's cblas_?gemm instead: 1.3-1.5x Eigen 3.4's speed at the ViT shapes on
// AVX-512 (docs/perf.md, "Encoding, and the GEMM library"). It must be OpenBLAS's OpenMP build:
// that one shares the OpenMP threads of everything else here and runs single-threaded when
// called inside a parallel region; the pthread build's own thread pool fights OpenMP's spinning
// workers (at 2 threads the steps and batches ran 1.3-6.9x slower than with Eigen). Operands
// CBLAS cannot take (a dimension past 32-bit BLAS integers, a leading stride shorter than a row,
// such as an expanded row's 0) still go through Eigen. A product with a few rows of C and a large
// row-major B goes to neither: B is streamed (gemm_streamed below). Nor, in an AVX-512 build, does
// a float product of at least 2 rows and 2 columns whose B is at most 32,768 columns wide, or of
// 2-96 rows and any width (every float product of the ViT models up to batch 96): our own kernel
// takes it (panel_gemm.hpp), at 1.2-2x the Eigen path's speed on one Zen 4 core and ahead of
// OpenBLAS's, with the same bits at any thread count.
#include <Eigen/Core>
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>
#if defined(VTS_WITH_OPENBLAS)
#include <cblas.h>
#endif

#include "vts/backend/cpu/panel_gemm.hpp"
#include "vts/backend/cpu/parallel.hpp"
#include "vts/backend/cpu/reduce.hpp"
#include "vts/backend/cpu/strided.hpp"
#include "vts/core/device.hpp"
#include "vts/core/error.hpp"
#include "vts/core/layout.hpp"

namespace vts::cpu {

namespace detail {
template <class T>
using RowMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                          Eigen::OuterStride<>>;
template <class T>
using ColMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>, 0,
                          Eigen::OuterStride<>>;

template <class T, class F>
void with_eigen(const MatrixRef<T>& m, F&& f) {
  if (m.col_stride == 1 || m.cols == 1) {
    f(RowMap<T>(m.data, m.rows, m.cols, Eigen::OuterStride<>(m.row_stride)));
  } else if (m.row_stride == 1 || m.rows == 1) {
    f(ColMap<T>(m.data, m.rows, m.cols, Eigen::OuterStride<>(m.col_stride)));
  } else {
    throw Error("gemm: operand has no unit stride (rows stride " + std::to_string(m.row_stride) +
                ", cols stride " + std::to_string(m.col_stride) + "); make it contiguous first");
  }
}
// How gemm shares one product among the threads: C cut into `parts` blocks of whole rows (by_rows)
// or whole columns, each computed by one thread as a single-threaded Eigen product, so that C has
// the same bits at any thread count. Each element's sum over k runs in the order of Eigen's depth
// blocking, which depends on k alone; the cuts must also keep each element in the same kind of
// register tile. Eigen computes a row-major C as its transpose, so its 48-wide tiles run along C's
// columns and its 4-wide ones along C's rows: in a sweep of random shapes and layouts (float and
// double), cuts at multiples of 8 rows or 48 columns kept every bit and cuts at multiples of 16
// columns did not. Eigen's own parallel product (compiled out: EIGEN_DONT_PARALLELIZE, set by the
// vts::vts target) chooses another depth blocking when it has several threads, so its bits
// depend on the thread count. The longer side is cut. On 2 threads against Eigen's parallel
// product: up to 10 % faster for the encoder's forward products of ViT-B/16, level for fc2 and the
// input gradients, 7-10 % slower for fc1's weight gradient (k = the 788 tokens; its gᵀ has a
// leading dimension of 3,072 floats, a multiple of 4 KB, which Eigen's single-threaded product
// reads at 161 GFLOP/s against 183 at 3,088), 1.7x faster for the tiny model's products and 1.6-2x
// for the all-token head's (docs/perf.md, "2-core Intel Xeon, idle, 2026-12-06").
inline constexpr int64_t kGemmSplitAlign = 48;
inline constexpr int64_t kGemmSplitMinWork = int64_t(1) << 18;  // multiply-adds worth a fork

struct GemmSplit {
  int64_t parts;
  bool by_rows;
};

inline GemmSplit gemm_split(int64_t m, int64_t n, int64_t k) {
  const bool by_rows = m >= n;
  const int threads = in_parallel() ? 1 : max_threads();
  // A vector result (m or n of 1) goes to Eigen's matrix-vector kernel, which is left whole.
  if (threads <= 1 || m == 1 || n == 1 || m * n * k < kGemmSplitMinWork) return {1, by_rows};
  return {std::min<int64_t>(threads, (by_rows ? m : n) / kGemmSplitAlign), by_rows};
}

// A product with few rows of C and a large row-major B: a batch's output gradient times a large
// weight, as the all-token hash head's input gradient (batch 4: 4 × 1,024 times 1,024 × 151,296,
// a 620 MB weight). Eigen packs B into panels before its kernel reads them, writing and reading
// all of B again to use each panel for a handful of rows; OpenBLAS likewise. Here B's rows are
// read once, in blocks of kStreamColumns columns, each element of B feeding the FMAs of every row
// of C while it is in L1. Measured on the 2-core Xeon (throwaway program, float, median ms at 2
// threads; docs/perf.md, "The head's input gradient"): at k × n = 1,024 × 151,296, m = 4: Eigen
// 120-128, OpenBLAS 72, streamed 30-36; m = 16: 130-136 / 74 / 55-60; m = 32: 144-150 / 86-91 /
// 89-91. At 1,024 × 8,192 (32 MB) m = 16 is 0.73-0.81 of Eigen's time and m = 32 0.97-1.22;
// below 32 MB Eigen wins from m = 4 (its packed panels stay in cache).
inline constexpr int64_t kStreamColumns = 1024;
inline constexpr int64_t kStreamMinColumns = 4096;

// The most rows of C for which gemm streams B, by B's size in bytes (0: none).
inline int64_t streamed_rows_limit(int64_t b_bytes) {
  if (b_bytes >= (int64_t(128) << 20)) return 32;
  if (b_bytes >= (int64_t(32) << 20)) return 16;
  return 0;
}

// Whether gemm takes the streamed path for C (m × n) = A (m × k) · B (k × n). One row of C is a
// vector product, which Eigen's gemv already reads B once for.
template <class T>
bool streams_b(const MatrixRef<T>& a, const MatrixRef<T>& b) {
  if constexpr (!std::is_floating_point_v<T>) {
    return false;
  } else {
    const int64_t m = a.rows, k = a.cols, n = b.cols;
    return m >= 2 && n >= kStreamMinColumns && b.col_stride == 1 &&
           m <= streamed_rows_limit(k * n * static_cast<int64_t>(sizeof(T)));
  }
}

// a·b + c rounded once where the machine has the instruction: std::fma compiles to it there and
// to a slow library call elsewhere, where the two roundings are kept instead.
template <class T>
inline T multiply_add(T a, T b, T c) {
#if defined(__FMA__) || defined(__aarch64__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// s + f0·v0 + f1·v1 + f2·v2 + f3·v3, the terms added in that order, each with multiply_add.
template <class T>
inline T add_four_products(T s, T f0, T v0, T f1, T v1, T f2, T v2, T f3, T v3) {
  return multiply_add(f3, v3, multiply_add(f2, v2, multiply_add(f1, v1, multiply_add(f0, v0, s))));
}

// C = alpha·A·B + beta·C for streams_b's shapes. Each element of C is the sum over k in order,
// one multiply_add per term, whichever block or thread computes it: the same bits at any thread
// count, and in the vector loops and their scalar tails alike.
template <class T>
void gemm_streamed(const MatrixRef<T>& a, const MatrixRef<T>& b, T* c, int64_t ldc, T alpha, T beta) {
  const int64_t m = a.rows, k = a.cols, n = b.cols, ldb = b.row_stride;
  auto a_at = [&](int64_t i, int64_t p) { return a.data[i * a.row_stride + p * a.col_stride]; };
  const int64_t blocks = (n + kStreamColumns - 1) / kStreamColumns;
  parallel_for(0, blocks, 1, [&](int64_t block_begin, int64_t block_end) {
    std::vector<T> sums(static_cast<size_t>(m * kStreamColumns));
    for (int64_t block = block_begin; block < block_end; ++block) {
      const int64_t j0 = block * kStreamColumns, width = std::min(n, j0 + kStreamColumns) - j0;
      std::fill(sums.begin(), sums.begin() + m * width, T(0));
      int64_t p = 0;
      for (; p + 4 <= k; p += 4) {  // four rows of B a pass: one load and store of the sums per four terms
        const T* b0 = b.data + p * ldb + j0;
        const T* b1 = b0 + ldb;
        const T* b2 = b1 + ldb;
        const T* b3 = b2 + ldb;
        int64_t i = 0;
        for (; i + 2 <= m; i += 2) {  // two rows of C share each load of B
          const T f0 = a_at(i, p), f1 = a_at(i, p + 1), f2 = a_at(i, p + 2), f3 = a_at(i, p + 3);
          const T g0 = a_at(i + 1, p), g1 = a_at(i + 1, p + 1), g2 = a_at(i + 1, p + 2), g3 = a_at(i + 1, p + 3);
          T* s = sums.data() + i * width;
          T* t = s + width;
#pragma omp simd
          for (int64_t j = 0; j < width; ++j) {
            const T v0 = b0[j], v1 = b1[j], v2 = b2[j], v3 = b3[j];
            s[j] = add_four_products(s[j], f0, v0, f1, v1, f2, v2, f3, v3);
            t[j] = add_four_products(t[j], g0, v0, g1, v1, g2, v2, g3, v3);
          }
        }
        for (; i < m; ++i) {
          const T f0 = a_at(i, p), f1 = a_at(i, p + 1), f2 = a_at(i, p + 2), f3 = a_at(i, p + 3);
          T* s = sums.data() + i * width;
#pragma omp simd
          for (int64_t j = 0; j < width; ++j)
            s[j] = add_four_products(s[j], f0, b0[j], f1, b1[j], f2, b2[j], f3, b3[j]);
        }
      }
      for (; p < k; ++p) {
        const T* b0 = b.data + p * ldb + j0;
        for (int64_t i = 0; i < m; ++i) {
          const T f0 = a_at(i, p);
          T* s = sums.data() + i * width;
#pragma omp simd
          for (int64_t j = 0; j < width; ++j) s[j] = multiply_add(f0, b0[j], s[j]);
        }
      }
      for (int64_t i = 0; i < m; ++i) {
        const T* s = sums.data() + i * width;
        T* out = c + i * ldc + j0;
        if (beta == T(0)) {  // C is not read: it may hold anything
          for (int64_t j = 0; j < width; ++j) out[j] = alpha * s[j];
        } else {
          for (int64_t j = 0; j < width; ++j) out[j] = alpha * s[j] + beta * out[j];
        }
      }
    }
  });
}

#if defined(VTS_WITH_OPENBLAS)
// An operand as CBLAS sees it in row-major order: element (i, j) at data[i·ld + j] (NoTrans) or
// at data[j·ld + i] (Trans, a column-major view). ld must be at least the row (column) length.
struct BlasOperand {
  CBLAS_TRANSPOSE trans;
  int ld;
};

inline bool fits_blas_int(int64_t x) { return 0 <= x && x <= INT_MAX; }

template <class T>
bool blas_operand(const MatrixRef<T>& m, BlasOperand& out) {
  if (m.col_stride == 1 || m.cols == 1) {  // rows of unit stride
    const int64_t ld = m.rows == 1 ? std::max<int64_t>(m.cols, 1) : m.row_stride;
    if (ld >= std::max<int64_t>(m.cols, 1) && fits_blas_int(ld)) {
      out = {CblasNoTrans, static_cast<int>(ld)};
      return true;
    }
  }
  if (m.row_stride == 1 || m.rows == 1) {  // columns of unit stride
    const int64_t ld = m.cols == 1 ? std::max<int64_t>(m.rows, 1) : m.col_stride;
    if (ld >= std::max<int64_t>(m.rows, 1) && fits_blas_int(ld)) {
      out = {CblasTrans, static_cast<int>(ld)};
      return true;
    }
  }
  return false;
}

// C = alpha·A·B + beta·C through cblas_sgemm / cblas_dgemm; false when the operands do not fit
// CBLAS (the caller then uses Eigen). Needs a.rows, b.cols, a.cols > 0. With beta = 0, C is
// written without being read, as Eigen's noalias assignment does.
template <class T>
bool blas_gemm(const MatrixRef<T>& a, const MatrixRef<T>& b, T* c, int64_t ldc, T alpha, T beta) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    BlasOperand ab{}, bb{};
    if (!fits_blas_int(a.rows) || !fits_blas_int(b.cols) || !fits_blas_int(a.cols) ||
        !fits_blas_int(ldc) || ldc < b.cols || !blas_operand(a, ab) || !blas_operand(b, bb))
      return false;
    const int m = static_cast<int>(a.rows), n = static_cast<int>(b.cols), k = static_cast<int>(a.cols);
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemm(CblasRowMajor, ab.trans, bb.trans, m, n, k, alpha, a.data, ab.ld, b.data, bb.ld, beta, c,
                  static_cast<int>(ldc));
    else
      cblas_dgemm(CblasRowMajor, ab.trans, bb.trans, m, n, k, alpha, a.data, ab.ld, b.data, bb.ld, beta, c,
                  static_cast<int>(ldc));
    return true;
  } else {
    return false;
  }
}
#endif
}  // namespace detail

// Whether float and double GEMMs go to OpenBLAS (a build with vts::blas) rather than Eigen.
inline constexpr bool gemm_uses_openblas() {
#if defined(VTS_WITH_OPENBLAS)
  return true;
#else
  return false;
#endif
}

// The CPU GEMM library as a lower-case word, for machine-readable records (metrics.json, JSON lines):
// the library of this build, which an AVX-512 build uses for what its own float kernel does not take.
inline constexpr const char* gemm_name() { return gemm_uses_openblas() ? "openblas" : "eigen"; }

// The CPU GEMMs in words, for a program's banner: "Eigen 3.4.0", or OpenBLAS's version, threading
// and the kernels it picked, naming OPENBLAS_CORETYPE when that variable chose them (this build
// machine sets Haswell, whose AVX2 kernels ran 1.04-1.35x slower than Eigen: docs/perf.md); in an
// AVX-512 build, after the kernel of our own that takes most float products.
inline std::string gemm_library() {
#if defined(VTS_WITH_OPENBLAS)
  std::string version = OPENBLAS_VERSION;  // " OpenBLAS 0.3.21 "
  version.erase(0, version.find_first_not_of(' '));
  version.erase(version.find_last_not_of(' ') + 1);
  const int parallel = openblas_get_parallel();
  const char* threading = parallel == 2 ? "OpenMP" : parallel == 1 ? "pthreads: slow next to OpenMP" : "sequential";
  std::string s = version + " (" + threading + ", " + openblas_get_corename() + " kernels";
  if (const char* forced = std::getenv("OPENBLAS_CORETYPE")) s += std::string(" from OPENBLAS_CORETYPE=") + forced;
  s += ")";
#else
  std::string s = "Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
                  std::to_string(EIGEN_MINOR_VERSION);
#endif
  return detail::kPanelGemmCompiled ? "VTS AVX-512 kernel for float, " + s + " for the rest" : s;
}

template <class T>
void gemm(Device, const MatrixRef<T>& a, const MatrixRef<T>& b, T* c, int64_t ldc, T alpha, T beta) {
  VTS_CHECK(a.cols == b.rows, "gemm: inner dimensions differ (", a.rows, "x", a.cols, " times ", b.rows, "x",
            b.cols, ")");
  using CMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>>;
  CMap cm(c, a.rows, b.cols, Eigen::OuterStride<>(ldc));
  if (a.rows == 0 || b.cols == 0) return;
  if (a.cols == 0) {
    if (beta == T(0)) cm.setZero(); else cm *= beta;
    return;
  }
  if (detail::streams_b(a, b)) {  // before the library: OpenBLAS packs B too
    detail::gemm_streamed(a, b, c, ldc, alpha, beta);
    return;
  }
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {  // before the library: faster than OpenBLAS too
    if (detail::panel_gemm_takes(a, b)) {
      detail::panel_gemm(a, b, c, ldc, alpha, beta);
      return;
    }
  }
#endif
#if defined(VTS_WITH_OPENBLAS)
  if (detail::blas_gemm(a, b, c, ldc, alpha, beta)) return;
#endif
  detail::with_eigen(a, [&](const auto& am) {
    detail::with_eigen(b, [&](const auto& bm) {
      // C's rows [r0, r0 + rn) and columns [c0, c0 + cn), from the same rows of A and columns of B.
      auto block_product = [&](int64_t r0, int64_t rn, int64_t c0, int64_t cn) {
        auto cb = cm.block(r0, c0, rn, cn);
        const auto ab = am.middleRows(r0, rn);
        const auto bb = bm.middleCols(c0, cn);
        if (beta == T(0)) {
          if (alpha == T(1)) cb.noalias() = ab * bb;
          else cb.noalias() = alpha * ab * bb;
        } else {
          if (beta != T(1)) cb *= beta;
          if (alpha == T(1)) cb.noalias() += ab * bb;
          else cb.noalias() += alpha * ab * bb;
        }
      };
      const detail::GemmSplit split = detail::gemm_split(a.rows, b.cols, a.cols);
      if (split.parts <= 1) {
        block_product(0, a.rows, 0, b.cols);
        return;
      }
      // Every block at least kGemmSplitAlign long (a block of one row would go to Eigen's
      // matrix-vector kernel, with other bits); the last one takes the remainder.
      const int64_t len = split.by_rows ? a.rows : b.cols;
      const int64_t units = len / detail::kGemmSplitAlign;
      parallel_for(0, split.parts, 1, [&](int64_t pb, int64_t pe) {
        for (int64_t p = pb; p < pe; ++p) {
          const int64_t begin = units * p / split.parts * detail::kGemmSplitAlign;
          const int64_t end = p + 1 == split.parts ? len : units * (p + 1) / split.parts * detail::kGemmSplitAlign;
          if (split.by_rows) block_product(begin, end - begin, 0, b.cols);
          else block_product(0, a.rows, begin, end - begin);
        }
      });
    });
  });
}

// C = A·B + bias in every row (bias[j] added to column j): the linear layer's x·Wᵀ + b. C is
// written, never read. Here C is seeded with the bias rows and the product added into it (beta =
// 1): the seeding is one pass over C, small next to the product on a CPU; the CUDA backend adds
// the bias in cuBLASLt's epilogue instead.
template <class T>
void gemm_bias(Device d, const MatrixRef<T>& a, const MatrixRef<T>& b, const T* bias, T* c, int64_t ldc) {
  const int64_t bias_strides[2] = {0, 1}, c_strides[2] = {ldc, 1};
  copy_strided(d, Shape{a.rows, b.cols}, bias, bias_strides, c, c_strides);
  gemm(d, a, b, c, ldc, T(1), T(1));
}

// C = A·B, and a_row_sums[i] = Σ_k A(i, k): a linear layer's weight gradient gᵀ·x together with
// its bias gradient (the column sums of g, i.e. the row sums of gᵀ). A must be stored densely,
// row- or column-major (row_sum_shape); C is written, never read.
template <class T>
void gemm_row_sums(Device d, const MatrixRef<T>& a, const MatrixRef<T>& b, T* c, int64_t ldc, T* a_row_sums) {
  const RowSumShape rs = row_sum_shape(a, "gemm_row_sums");
  gemm(d, a, b, c, ldc, T(1), T(0));
  sum_middle(d, a.data, rs.outer, rs.middle, rs.inner, a_row_sums);
}

}  // namespace vts::cpu
