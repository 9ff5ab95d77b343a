#pragma once
// How the fused kernels address their operands, shared by every backend (CPU and CUDA kernels take
// the same structs, so the op layer builds them once without knowing the device). Plain
// aggregates: no Eigen, no CUDA headers, usable from nvcc translation units.
#include <cstdint>

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

}  // namespace vts
