#pragma once
// GEMM on the CPU through Eigen: C = alpha · A·B + beta · C for row-major C. A and B may be
// row-major or column-major views (a transpose is a free change of layout), with any leading
// stride; the element stride inside a row or column must be 1.
#include <Eigen/Core>
#include <cstdint>

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
}  // namespace detail

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
  detail::with_eigen(a, [&](const auto& am) {
    detail::with_eigen(b, [&](const auto& bm) {
      if (beta == T(0)) {
        if (alpha == T(1)) cm.noalias() = am * bm;
        else cm.noalias() = alpha * am * bm;
      } else {
        if (beta != T(1)) cm *= beta;
        if (alpha == T(1)) cm.noalias() += am * bm;
        else cm.noalias() += alpha * am * bm;
      }
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
