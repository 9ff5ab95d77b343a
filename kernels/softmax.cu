// Row softmax / log-softmax forward and backward, fused softmax-cross-entropy, and binary
// cross-entropy (contracts in include/vts/backend/cuda/softmax.hpp).
//
// One warp per row. The forward pass reads the row twice: first an online max-and-sum (each lane
// keeps a running max m and Σ e^{x−m}, rescaling the sum when m grows; lanes then merge pairs), then
// the output. For the row lengths here (197 attention keys, ≤ a few thousand classes) the second
// read hits L1/L2, so the kernel moves ≈ one read and one write of the tensor.
#include <cmath>

#include "common/check.cuh"
#include "common/types.cuh"
#include "vts/backend/cuda/softmax.hpp"

namespace vts::cuda {

namespace {

using detail::DevT;
using detail::from_f;
using detail::to_f;

constexpr int kWarps = 8;

// Merge two (max, sum of exp relative to max) pairs; an empty side has m = −inf and s = 0.
__device__ __forceinline__ void merge(float& m, float& s, float m2, float s2) {
  const float mn = fmaxf(m, m2);
  const float a = m == -INFINITY ? 0.0f : s * expf(m - mn);
  const float b = m2 == -INFINITY ? 0.0f : s2 * expf(m2 - mn);
  m = mn;
  s = a + b;
}

template <class T>
__device__ __forceinline__ void row_max_sum(const T* __restrict__ row, int64_t n, int lane, float& m, float& s) {
  m = -INFINITY;
  s = 0.0f;
  for (int64_t i = lane; i < n; i += 32) {
    const float v = to_f(row[i]);
    if (v > m) {
      s = (m == -INFINITY ? 0.0f : s * expf(m - v)) + 1.0f;
      m = v;
    } else {
      s += expf(v - m);
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
    merge(m, s, m2, s2);
  }
}

template <class T>
__global__ void softmax_rows_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t n, bool log_y) {
  const int64_t row = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const T* xr = x + row * n;
  T* yr = y + row * n;
  float m, s;
  row_max_sum(xr, n, lane, m, s);
  if (log_y) {
    const float log_s = logf(s);
    // (x − m) − log s, as the CPU writes it: x − m is exact, m + log s would round.
    for (int64_t i = lane; i < n; i += 32) yr[i] = from_f<T>((to_f(xr[i]) - m) - log_s);
  } else {
    const float inv = 1.0f / s;
    for (int64_t i = lane; i < n; i += 32) yr[i] = from_f<T>(expf(to_f(xr[i]) - m) * inv);
  }
}

template <class T>
__global__ void softmax_rows_backward_kernel(const T* __restrict__ y, const T* __restrict__ g, T* __restrict__ dx,
                                             int64_t rows, int64_t n, bool log_y) {
  const int64_t row = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const T* yr = y + row * n;
  const T* gr = g + row * n;
  T* dr = dx + row * n;
  float acc = 0.0f;
  if (log_y) {
    for (int64_t i = lane; i < n; i += 32) acc += to_f(gr[i]);
    acc = detail::warp_sum(acc);
    for (int64_t i = lane; i < n; i += 32) dr[i] = from_f<T>(to_f(gr[i]) - expf(to_f(yr[i])) * acc);
  } else {
    for (int64_t i = lane; i < n; i += 32) acc += to_f(gr[i]) * to_f(yr[i]);
    acc = detail::warp_sum(acc);
    for (int64_t i = lane; i < n; i += 32) dr[i] = from_f<T>(to_f(yr[i]) * (to_f(gr[i]) - acc));
  }
}

template <class T>
__global__ void cross_entropy_kernel(const T* __restrict__ logits, const int64_t* __restrict__ targets, int64_t rows,
                                     int64_t C, float* __restrict__ loss, T* __restrict__ dlogits, float scale) {
  const int64_t row = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const T* xr = logits + row * C;
  const int64_t t = targets[row];
  const bool valid = t >= 0 && t < C;
  float m, s;
  row_max_sum(xr, C, lane, m, s);
  const float lse = m + logf(s);
  if (lane == 0) loss[row] = valid ? lse - to_f(xr[t]) : NAN;
  if (dlogits == nullptr) return;
  T* dr = dlogits + row * C;
  for (int64_t i = lane; i < C; i += 32) {
    const float p = expf(to_f(xr[i]) - lse);
    dr[i] = from_f<T>(valid ? scale * (p - (i == t ? 1.0f : 0.0f)) : NAN);
  }
}

__global__ void bce_forward_kernel(const float* __restrict__ p, const float* __restrict__ t, float* __restrict__ loss,
                                   int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float pv = p[i], tv = t[i];
    const float lp = fmaxf(logf(pv), -100.0f), l1p = fmaxf(logf(1.0f - pv), -100.0f);
    loss[i] = -(tv * lp + (1.0f - tv) * l1p);
  }
}

__global__ void bce_backward_kernel(const float* __restrict__ p, const float* __restrict__ t,
                                    const float* __restrict__ grad_scale, float scale, float* __restrict__ dp,
                                    int64_t n) {
  const float k = (grad_scale ? *grad_scale : 1.0f) * scale;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float pv = p[i];
    dp[i] = k * (pv - t[i]) / fmaxf((1.0f - pv) * pv, 1e-12f);
  }
}

unsigned row_grid(int64_t rows) {
  VTS_CHECK(rows / kWarps < (int64_t(1) << 31), "vts::cuda softmax: too many rows (", rows, ")");
  return detail::grid_for(rows, kWarps, int64_t(1) << 31);
}
unsigned flat_grid(int64_t n) { return detail::grid_for(n, 256, int64_t(device_info().sm_count) * 8); }

template <class T>
void softmax_impl(const T* x, T* y, int64_t rows, int64_t n, bool log_y) {
  if (rows == 0 || n == 0) return;
  softmax_rows_kernel<DevT<T>><<<row_grid(rows), kWarps * 32, 0, current_stream()>>>(
      detail::dev_ptr(x), detail::dev_ptr(y), rows, n, log_y);
  VTS_CUDA_CHECK_LAUNCH("softmax_rows_kernel");
}
template <class T>
void softmax_backward_impl(const T* y, const T* g, T* dx, int64_t rows, int64_t n, bool log_y) {
  if (rows == 0 || n == 0) return;
  softmax_rows_backward_kernel<DevT<T>><<<row_grid(rows), kWarps * 32, 0, current_stream()>>>(
      detail::dev_ptr(y), detail::dev_ptr(g), detail::dev_ptr(dx), rows, n, log_y);
  VTS_CUDA_CHECK_LAUNCH("softmax_rows_backward_kernel");
}
template <class T>
void cross_entropy_impl(const T* logits, const int64_t* targets, int64_t rows, int64_t C, float* loss, T* dlogits,
                        float scale) {
  if (rows == 0) return;
  VTS_CHECK(C > 0, "vts::cuda::cross_entropy_fused: no classes");
  cross_entropy_kernel<DevT<T>><<<row_grid(rows), kWarps * 32, 0, current_stream()>>>(
      detail::dev_ptr(logits), targets, rows, C, loss, detail::dev_ptr(dlogits), scale);
  VTS_CUDA_CHECK_LAUNCH("cross_entropy_kernel");
}

}  // namespace

void softmax_rows(Device, const float* x, float* y, int64_t rows, int64_t n, bool log_y) {
  softmax_impl(x, y, rows, n, log_y);
}
void softmax_rows(Device, const bf16* x, bf16* y, int64_t rows, int64_t n, bool log_y) {
  softmax_impl(x, y, rows, n, log_y);
}
void softmax_rows_backward(Device, const float* y, const float* g, float* dx, int64_t rows, int64_t n, bool log_y) {
  softmax_backward_impl(y, g, dx, rows, n, log_y);
}
void softmax_rows_backward(Device, const bf16* y, const bf16* g, bf16* dx, int64_t rows, int64_t n, bool log_y) {
  softmax_backward_impl(y, g, dx, rows, n, log_y);
}
void cross_entropy_fused(Device, const float* logits, const int64_t* targets, int64_t rows, int64_t classes,
                         float* loss, float* dlogits, float scale) {
  cross_entropy_impl(logits, targets, rows, classes, loss, dlogits, scale);
}
void cross_entropy_fused(Device, const bf16* logits, const int64_t* targets, int64_t rows, int64_t classes,
                         float* loss, bf16* dlogits, float scale) {
  cross_entropy_impl(logits, targets, rows, classes, loss, dlogits, scale);
}

void bce_forward(Device, const float* p, const float* target, float* loss, int64_t n) {
  if (n <= 0) return;
  bce_forward_kernel<<<flat_grid(n), 256, 0, current_stream()>>>(p, target, loss, n);
  VTS_CUDA_CHECK_LAUNCH("bce_forward_kernel");
}
void bce_backward(Device, const float* p, const float* target, const float* grad_scale, float scale, float* dp,
                  int64_t n) {
  if (n <= 0) return;
  bce_backward_kernel<<<flat_grid(n), 256, 0, current_stream()>>>(p, target, grad_scale, scale, dp, n);
  VTS_CUDA_CHECK_LAUNCH("bce_backward_kernel");
}

}  // namespace vts::cuda
