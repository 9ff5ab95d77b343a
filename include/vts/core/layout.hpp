#pragma once
// How the fused kernels address their operands, shared by every backend (CPU and CUDA kernels take
// the same structs, so the op layer builds them once without knowing the device). Plain
// aggregates and one shape helper: no Eigen, no CUDA headers, usable from nvcc translation units.
#include <cstdint>

#include "vts/core/error.hpp"

namespace vts {

// Where one [B, H, N, d] operand lives: element (b, h, n, i) at data[b*sb + h*sh + n*sn + i].
template <class T>
struct HeadLayout {
  T* data;
  int64_t sb, sh, sn;
};

// A matrix operand: rows × cols with element (i, j) at data[i*row_stride + j*col_stride].
template <class T>
struct MatrixRef {
  const T* data;
  int64_t rows, cols, row_stride, col_stride;
};

// The row sums of a densely stored matrix as one reduction over a contiguous [outer, middle, inner]
// block (the shape every backend's sum_middle takes): row-major gives [rows, cols, 1], column-major
// [1, cols, rows]. A matrix with gaps between its rows or columns is refused, `who` naming the
// caller in the error.
struct RowSumShape {
  int64_t outer, middle, inner;
};
template <class T>
RowSumShape row_sum_shape(const MatrixRef<T>& m, const char* who) {
  if (m.col_stride == 1 && (m.row_stride == m.cols || m.rows <= 1)) return {m.rows, m.cols, 1};
  if (m.row_stride == 1 && (m.col_stride == m.rows || m.cols <= 1)) return {1, m.cols, m.rows};
  throw Error(detail::concat(who, ": A (", m.rows, "x", m.cols, ", strides ", m.row_stride, ", ", m.col_stride,
                             ") must be stored densely, row- or column-major"));
}

}  // namespace vts
