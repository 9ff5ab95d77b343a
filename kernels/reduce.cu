// Reductions: sum over the middle axis of [A, R, C], row max with argmax, its backward scatter,
// and whole-buffer sums. Deterministic throughout: partial sums are written to scratch and added in
// a fixed order by a second pass, never combined with floating-point atomics (whose order, and so
// rounding, changes from run to run).
#include "common/check.cuh"
#include "common/types.cuh"
#include "vts/backend/cuda/memory.hpp"
#include "vts/backend/cuda/reduce.hpp"

namespace vts::cuda {

namespace {

using detail::DevT;
using detail::from_f;
using detail::to_f;

// ---- C == 1: sums of A contiguous rows of length R -------------------------------------------
// One block of 256 threads per row; a row of R elements costs R/256 loads per thread plus one
// block reduction.
template <class T>
__global__ void row_sum_kernel(const T* __restrict__ in, int64_t R, T* __restrict__ out) {
  __shared__ float scratch[32];
  const T* row = in + blockIdx.x * R;
  float s = 0.0f;
  for (int64_t r = threadIdx.x; r < R; r += blockDim.x) s += to_f(row[r]);
  s = detail::block_sum(s, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = from_f<T>(s);
}

// ---- C > 1: column sums -------------------------------------------------------------------------
// Block (32, 8) covers 32 columns and a chunk of rows; threads with the same threadIdx.x read one
// column, consecutive threadIdx.x read consecutive columns (coalesced 128-byte rows). Stage 1
// writes partial[chunk][a][c]; stage 2 adds the chunks in order. With one chunk (R ≤ 64, or
// columns enough to fill the device), stage 1 writes the result and stage 2 is not launched.
constexpr int kColTile = 32, kRowThreads = 8;

template <class T, class Out>
__global__ void column_partial_kernel(const T* __restrict__ in, int64_t A, int64_t R, int64_t C, int64_t rows_per_chunk,
                                      Out* __restrict__ partial) {
  __shared__ float tile[kRowThreads][kColTile + 1];
  const int64_t c = blockIdx.x * int64_t(kColTile) + threadIdx.x;
  const int64_t a = blockIdx.z;
  const int64_t r0 = blockIdx.y * rows_per_chunk, r1 = min(R, r0 + rows_per_chunk);
  float s = 0.0f;
  if (c < C)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowThreads) s += to_f(in[(a * R + r) * C + c]);
  tile[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float t = 0.0f;
#pragma unroll
    for (int y = 0; y < kRowThreads; ++y) t += tile[y][threadIdx.x];
    partial[(blockIdx.y * A + a) * C + c] = from_f<Out>(t);
  }
}

template <class T>
__global__ void column_final_kernel(const float* __restrict__ partial, int64_t chunks, int64_t AC, T* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < AC; i += int64_t(gridDim.x) * blockDim.x) {
    float s = 0.0f;
    for (int64_t k = 0; k < chunks; ++k) s += partial[k * AC + i];
    out[i] = from_f<T>(s);
  }
}

template <class T>
void sum_middle_impl(const T* in_, int64_t A, int64_t R, int64_t C, T* out_) {
  using D = DevT<T>;
  const D* in = detail::dev_ptr(in_);
  D* out = detail::dev_ptr(out_);
  if (A == 0 || C == 0) return;
  const cudaStream_t s = current_stream();
  if (R == 0) {
    const T zero{};
    fill_bytes(out_, A * C, &zero, sizeof(T));
    return;
  }
  if (C == 1) {
    VTS_CHECK(A < (int64_t(1) << 31), "vts::cuda::sum_middle: too many rows (", A, ")");
    row_sum_kernel<D><<<static_cast<unsigned>(A), 256, 0, s>>>(in, R, out);
    VTS_CUDA_CHECK_LAUNCH("row_sum_kernel");
    return;
  }
  // Enough chunks along R to give the device ~4 blocks per SM, each chunk at least 64 rows.
  const int64_t col_tiles = (C + kColTile - 1) / kColTile;
  const int64_t want_blocks = int64_t(device_info().sm_count) * 4;
  int64_t chunks = std::max<int64_t>(1, want_blocks / std::max<int64_t>(1, col_tiles * A));
  chunks = std::min(chunks, (R + 63) / 64);
  const int64_t rows_per_chunk = (R + chunks - 1) / chunks;
  chunks = (R + rows_per_chunk - 1) / rows_per_chunk;
  VTS_CHECK(A <= 65535 && chunks <= 65535, "vts::cuda::sum_middle: grid too large for A=", A, ", R=", R);
  const dim3 grid(static_cast<unsigned>(col_tiles), static_cast<unsigned>(chunks), static_cast<unsigned>(A));
  if (chunks == 1) {
    column_partial_kernel<D, D><<<grid, dim3(kColTile, kRowThreads), 0, s>>>(in, A, R, C, rows_per_chunk, out);
    VTS_CUDA_CHECK_LAUNCH("column_partial_kernel");
    return;
  }
  DeviceBuffer partial(static_cast<size_t>(chunks * A * C) * sizeof(float));
  column_partial_kernel<D, float><<<grid, dim3(kColTile, kRowThreads), 0, s>>>(in, A, R, C, rows_per_chunk,
                                                                                partial.as<float>());
  VTS_CUDA_CHECK_LAUNCH("column_partial_kernel");
  column_final_kernel<D><<<detail::grid_for(A * C, 256, 65535), 256, 0, s>>>(partial.as<float>(), chunks, A * C, out);
  VTS_CUDA_CHECK_LAUNCH("column_final_kernel");
}

// ---- max with argmax ----------------------------------------------------------------------------
// The CPU rule: the first NaN if any, otherwise the first maximum. Combining two candidates keeps
// that rule as long as ties and NaNs prefer the smaller index.
struct MaxCand {
  float v;
  int64_t i;
};
__device__ __forceinline__ MaxCand better(MaxCand a, MaxCand b) {
  const bool an = a.v != a.v, bn = b.v != b.v;
  if (an || bn) {
    if (an && bn) return a.i <= b.i ? a : b;
    return an ? a : b;
  }
  if (a.v != b.v) return a.v > b.v ? a : b;
  return a.i <= b.i ? a : b;
}

// One warp per row.
__global__ void max_rows_kernel(const float* __restrict__ in, int64_t A, int64_t R, float* __restrict__ out,
                                int64_t* __restrict__ argmax) {
  const int64_t row = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (row >= A) return;
  const float* p = in + row * R;
  MaxCand best{-INFINITY, R};  // index R: "none yet", loses every tie
  for (int64_t r = lane; r < R; r += 32) best = better(best, MaxCand{p[r], r});
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    MaxCand other{__shfl_xor_sync(0xffffffffu, best.v, o), __shfl_xor_sync(0xffffffffu, best.i, o)};
    best = better(best, other);
  }
  if (lane == 0) {
    out[row] = best.v;
    argmax[row] = best.i;
  }
}

__global__ void scatter_rows_at_kernel(const float* __restrict__ g, const int64_t* __restrict__ where, int64_t A,
                                       int64_t R, float* __restrict__ dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < A * R; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t a = i / R, r = i - a * R;
    dx[i] = r == where[a] ? g[a] : 0.0f;
  }
}

// ---- row gather and its backward --------------------------------------------------------------------
template <class T>
__global__ void gather_rows_kernel(const T* __restrict__ x, const int64_t* __restrict__ rows, int64_t n,
                                   int64_t width, T* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n * width;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = i / width;
    out[i] = x[rows[k] * width + (i - k * width)];
  }
}

template <class T>
__global__ void gather_rows_backward_kernel(const T* __restrict__ g, const int64_t* __restrict__ first,
                                            const int64_t* __restrict__ order, int64_t n_in, int64_t width,
                                            T* __restrict__ dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n_in * width;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / width, j = i - r * width;
    float s = 0.0f;
    for (int64_t p = first[r]; p < first[r + 1]; ++p) s += to_f(g[order[p] * width + j]);
    dx[i] = from_f<T>(s);
  }
}

template <class T>
void gather_rows_impl(const T* x, const int64_t* rows, int64_t n, int64_t width, T* out) {
  if (n * width == 0) return;
  gather_rows_kernel<DevT<T>><<<detail::grid_for(n * width, 256, int64_t(device_info().sm_count) * 16), 256, 0,
                                current_stream()>>>(detail::dev_ptr(x), rows, n, width, detail::dev_ptr(out));
  VTS_CUDA_CHECK_LAUNCH("gather_rows_kernel");
}

template <class T>
void gather_rows_backward_impl(const T* g, const int64_t* first, const int64_t* order, int64_t n_in, int64_t width,
                               T* dx) {
  if (n_in * width == 0) return;
  gather_rows_backward_kernel<DevT<T>>
      <<<detail::grid_for(n_in * width, 256, int64_t(device_info().sm_count) * 16), 256, 0, current_stream()>>>(
          detail::dev_ptr(g), first, order, n_in, width, detail::dev_ptr(dx));
  VTS_CUDA_CHECK_LAUNCH("gather_rows_backward_kernel");
}

// ---- whole-buffer sum -----------------------------------------------------------------------------
// A fixed grid of 256 blocks (independent of the device, so the result is too): each block sums a
// strided share, block 0..255 partials land in scratch, and one block adds them in order.
constexpr int kSumBlocks = 256;

template <class T>
__global__ void sum_partial_kernel(const T* __restrict__ x, int64_t n, float* __restrict__ partial) {
  __shared__ float scratch[32];
  float s = 0.0f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    s += to_f(x[i]);
  s = detail::block_sum(s, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void sum_final_kernel(const float* __restrict__ partial, int count, float* __restrict__ out) {
  __shared__ float scratch[32];
  float s = 0.0f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
  s = detail::block_sum(s, scratch);
  if (threadIdx.x == 0) *out = s;
}

template <class T>
void sum_all_impl(const T* x, int64_t n, float* out) {
  const cudaStream_t s = current_stream();
  DeviceBuffer partial(kSumBlocks * sizeof(float));
  sum_partial_kernel<DevT<T>><<<kSumBlocks, 256, 0, s>>>(detail::dev_ptr(x), n, partial.as<float>());
  VTS_CUDA_CHECK_LAUNCH("sum_partial_kernel");
  sum_final_kernel<<<1, 256, 0, s>>>(partial.as<float>(), kSumBlocks, out);
  VTS_CUDA_CHECK_LAUNCH("sum_final_kernel");
}

}  // namespace

void sum_middle(Device, const float* in, int64_t A, int64_t R, int64_t C, float* out) {
  sum_middle_impl(in, A, R, C, out);
}
void sum_middle(Device, const bf16* in, int64_t A, int64_t R, int64_t C, bf16* out) {
  sum_middle_impl(in, A, R, C, out);
}

void max_rows(Device, const float* in, int64_t A, int64_t R, float* out, int64_t* argmax) {
  if (A == 0) return;
  VTS_CHECK(R > 0, "vts::cuda::max_rows: rows of length 0");
  constexpr int kWarps = 8;
  max_rows_kernel<<<detail::grid_for(A, kWarps, int64_t(1) << 31), kWarps * 32, 0, current_stream()>>>(in, A, R, out,
                                                                                                      argmax);
  VTS_CUDA_CHECK_LAUNCH("max_rows_kernel");
}

void scatter_rows_at(Device, const float* g, const int64_t* where, int64_t A, int64_t R, float* dx) {
  if (A * R == 0) return;
  scatter_rows_at_kernel<<<detail::grid_for(A * R, 256, int64_t(device_info().sm_count) * 16), 256, 0,
                           current_stream()>>>(g, where, A, R, dx);
  VTS_CUDA_CHECK_LAUNCH("scatter_rows_at_kernel");
}

void gather_rows(Device, const float* x, const int64_t* rows, int64_t n, int64_t width, float* out) {
  gather_rows_impl(x, rows, n, width, out);
}
void gather_rows(Device, const bf16* x, const int64_t* rows, int64_t n, int64_t width, bf16* out) {
  gather_rows_impl(x, rows, n, width, out);
}
void gather_rows_backward(Device, const float* g, const int64_t* first, const int64_t* order, int64_t n_in,
                          int64_t width, float* dx) {
  gather_rows_backward_impl(g, first, order, n_in, width, dx);
}
void gather_rows_backward(Device, const bf16* g, const int64_t* first, const int64_t* order, int64_t n_in,
                          int64_t width, bf16* dx) {
  gather_rows_backward_impl(g, first, order, n_in, width, dx);
}

void sum_all(Device, const float* x, int64_t n, float* out) { sum_all_impl(x, n, out); }
void sum_all(Device, const bf16* x, int64_t n, float* out) { sum_all_impl(x, n, out); }

}  // namespace vts::cuda
