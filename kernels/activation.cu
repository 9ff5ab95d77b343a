// GELU forward and backward (contract in include/vts/backend/cuda/activation.hpp).
//
// Forward moves 2·n·sizeof(T) bytes, backward 3·n·sizeof(T). fp32 is memory-bound; bf16, half the
// bytes for the same arithmetic, was bound by instruction issue with erff (~25 instructions an
// element: docs/cuda.md) and takes Φ in the exp form instead (~18 for the whole GELU). Each
// thread handles one 16-byte pack per iteration of a grid-stride loop (4 floats or 8 bf16) — the
// 128-bit access that llm.c's Packed128 showed to halve such kernels' time against scalar loads —
// and the grid is capped at a few waves so the loop, not the launch, covers large tensors.
//
// With DROP, the MLP's dropout after the GELU rides along (gelu_dropout_*): each pack draws its
// mask — one Philox block per 4 elements, the dropout kernels' layout — where the separate dropout
// would read and write the whole hidden activation again, forward and backward. Every rounding of
// the two-launch form is kept (GELU's output, and the masked gradient, rounded to T), so the fused
// result is the same bits.
#include <atomic>

#include "common/check.cuh"
#include "common/philox.cuh"
#include "common/types.cuh"
#include "vts/backend/cuda/activation.hpp"
#include "vts/core/gelu_exp_form.hpp"

namespace vts::cuda {

namespace {

using detail::DevT;
using detail::from_f;
using detail::Pack;
using detail::to_f;

// The two ways to the normal CDF: erff (fp32, the CPU's functors, so both devices share one formula
// where the parity bar is 1e-5), and the exp form of core/gelu_exp_form.hpp (bf16's default: about
// 18 instructions per element instead of 30, and closer to the exact bf16 values; docs/cuda.md).
struct ErfMath {
  static __device__ __forceinline__ float gelu(float x) { return fn::Gelu{}(x); }
  static __device__ __forceinline__ float gelu_grad(float x) { return fn::GeluGrad{}(x); }
};
struct ExpFormMath {
  static __device__ __forceinline__ float gelu(float x) { return fn::gelu_exp_form(x); }
  static __device__ __forceinline__ float gelu_grad(float x) { return fn::gelu_grad_exp_form(x); }
};

// Element i's dropout factors for a pack starting at element i0 (a multiple of 4): V/4 Philox blocks.
template <int V>
__device__ __forceinline__ void pack_factors(const DropoutDraw& d, int64_t i0, float (&f)[V]) {
#pragma unroll
  for (int q = 0; q < V / 4; ++q)
    detail::dropout_block_factors(d.seed, d.first_block + static_cast<uint64_t>(i0 / 4 + q), d.threshold,
                                  d.keep_scale, reinterpret_cast<float(&)[4]>(f[4 * q]));
}

template <class T, class M, bool DROP>
__device__ __forceinline__ T gelu_out(float x, float factor) {
  const T y = from_f<T>(M::gelu(x));
  if constexpr (DROP) return from_f<T>(to_f(y) * factor);
  return y;
}
template <class T, class M, bool DROP>
__device__ __forceinline__ T gelu_grad_out(float x, T g, float factor) {
  if constexpr (DROP) g = from_f<T>(to_f(g) * factor);
  return from_f<T>(to_f(g) * M::gelu_grad(x));
}

// The kept elements as bits, for the backward to read instead of drawing the mask again: one byte
// per Philox block of 4 elements, bit q set when element 4b + q is kept (the block's factor is
// keep_scale, not 0). A pack of V elements owns V/4 whole bytes.
__device__ __forceinline__ uint32_t keep_bits4(const float* f) {
  return uint32_t(f[0] != 0.0f) | uint32_t(f[1] != 0.0f) << 1 | uint32_t(f[2] != 0.0f) << 2 |
         uint32_t(f[3] != 0.0f) << 3;
}
template <int V>
__device__ __forceinline__ void store_keep(uint8_t* keep, int64_t pack, const float (&f)[V]) {
  if constexpr (V == 4) keep[pack] = static_cast<uint8_t>(keep_bits4(f));
  else reinterpret_cast<uint16_t*>(keep)[pack] = static_cast<uint16_t>(keep_bits4(f) | keep_bits4(f + 4) << 8);
}
template <int V>
__device__ __forceinline__ void load_keep(const uint8_t* keep, int64_t pack, float keep_scale, float (&f)[V]) {
  const uint32_t bits = V == 4 ? keep[pack] : reinterpret_cast<const uint16_t*>(keep)[pack];
  const uint32_t expanded = V == 4 ? bits : (bits & 0xfu) | (bits >> 4 & 0xf0u);  // 4 bits a byte → 8 in a row
#pragma unroll
  for (int j = 0; j < V; ++j) f[j] = (expanded >> j & 1u) ? keep_scale : 0.0f;
}

// KEEP_OUT (with DROP): the forward also writes the kept elements' bits to keep.
template <class T, class M, bool DROP, bool KEEP_OUT = false>
__global__ void gelu_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, bool vec, DropoutDraw d,
                                    uint8_t* __restrict__ keep) {
  static_assert(DROP || !KEEP_OUT);
  constexpr int V = Pack<T>::N;
  if (DROP && d.first_offset != nullptr) d.first_block += *d.first_offset;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  int64_t done = 0;
  if (vec) {
    const int64_t packs = n / V;
    for (int64_t p = tid; p < packs; p += stride) {
      Pack<T> v = detail::load_pack_ro(x + p * V);
      float f[V] = {};
      if constexpr (DROP) pack_factors<V>(d, p * V, f);
      if constexpr (KEEP_OUT) store_keep<V>(keep, p, f);
#pragma unroll
      for (int j = 0; j < V; ++j) v.v[j] = gelu_out<T, M, DROP>(to_f(v.v[j]), f[j]);
      detail::store_pack(y + p * V, v);
    }
    done = packs * V;
  }
  if constexpr (KEEP_OUT) {
    // By Philox block, so that one thread writes each byte (done is a multiple of 4).
    for (int64_t q = done / 4 + tid; q * 4 < n; q += stride) {
      float f[4];
      detail::dropout_block_factors(d.seed, d.first_block + static_cast<uint64_t>(q), d.threshold, d.keep_scale, f);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t i = 4 * q + e;
        if (i < n) y[i] = gelu_out<T, M, true>(to_f(x[i]), f[e]);
        else f[e] = 0.0f;
      }
      keep[q] = static_cast<uint8_t>(keep_bits4(f));
    }
  } else {
    for (int64_t i = done + tid; i < n; i += stride) {
      const float f = DROP ? detail::dropout_factor(d.seed, d.first_block, i, d.threshold, d.keep_scale) : 0.0f;
      y[i] = gelu_out<T, M, DROP>(to_f(x[i]), f);
    }
  }
}

// KEEP_IN (with DROP): the mask comes from the forward's keep bits (and d.keep_scale), not Philox.
template <class T, class M, bool DROP, bool KEEP_IN = false>
__global__ void gelu_backward_kernel(const T* __restrict__ x, const T* __restrict__ g, T* __restrict__ dx, int64_t n,
                                     bool vec, DropoutDraw d, const uint8_t* __restrict__ keep) {
  static_assert(DROP || !KEEP_IN);
  constexpr int V = Pack<T>::N;
  if (DROP && !KEEP_IN && d.first_offset != nullptr) d.first_block += *d.first_offset;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  int64_t done = 0;
  if (vec) {
    const int64_t packs = n / V;
    for (int64_t p = tid; p < packs; p += stride) {
      const Pack<T> vx = detail::load_pack_ro(x + p * V), vg = detail::load_pack_ro(g + p * V);
      float f[V] = {};
      if constexpr (KEEP_IN) load_keep<V>(keep, p, d.keep_scale, f);
      else if constexpr (DROP) pack_factors<V>(d, p * V, f);
      Pack<T> r;
#pragma unroll
      for (int j = 0; j < V; ++j) r.v[j] = gelu_grad_out<T, M, DROP>(to_f(vx.v[j]), vg.v[j], f[j]);
      detail::store_pack(dx + p * V, r);
    }
    done = packs * V;
  }
  for (int64_t i = done + tid; i < n; i += stride) {
    float f = 0.0f;
    if constexpr (KEEP_IN) f = (keep[i / 4] >> (i % 4) & 1u) ? d.keep_scale : 0.0f;
    else if constexpr (DROP) f = detail::dropout_factor(d.seed, d.first_block, i, d.threshold, d.keep_scale);
    dx[i] = gelu_grad_out<T, M, DROP>(to_f(x[i]), g[i], f);
  }
}

constexpr int kThreads = 256;

unsigned grid_for_packs(int64_t n, int per_pack) {
  // Up to 8 blocks of 256 per SM (2048 threads, the SM's limit): one full wave, then grid-stride.
  return detail::grid_for((n + per_pack - 1) / per_pack, kThreads, int64_t(device_info().sm_count) * 8);
}

bool keep_aligned(const uint8_t* keep, int pack_elems) {
  return keep == nullptr || (reinterpret_cast<uintptr_t>(keep) & static_cast<uintptr_t>(pack_elems / 4 - 1)) == 0;
}

// keep (DROP only): where the forward writes the kept elements' bits, or the backward reads them.
template <class T, class M = ErfMath, bool DROP = false>
void forward_impl(const T* x, T* y, int64_t n, const DropoutDraw& d = {}, uint8_t* keep = nullptr) {
  if (n <= 0) return;
  using D = DevT<T>;
  const bool vec = detail::aligned16(x) && detail::aligned16(y) && keep_aligned(keep, Pack<D>::N);
  const unsigned grid = grid_for_packs(n, Pack<D>::N);
  if constexpr (DROP) {
    if (keep != nullptr) {
      gelu_forward_kernel<D, M, true, true>
          <<<grid, kThreads, 0, current_stream()>>>(detail::dev_ptr(x), detail::dev_ptr(y), n, vec, d, keep);
      VTS_CUDA_CHECK_LAUNCH("gelu_forward_kernel");
      return;
    }
  }
  gelu_forward_kernel<D, M, DROP><<<grid, kThreads, 0, current_stream()>>>(detail::dev_ptr(x), detail::dev_ptr(y), n,
                                                                           vec, d, nullptr);
  VTS_CUDA_CHECK_LAUNCH("gelu_forward_kernel");
}

template <class T, class M = ErfMath, bool DROP = false>
void backward_impl(const T* x, const T* g, T* dx, int64_t n, const DropoutDraw& d = {}, const uint8_t* keep = nullptr) {
  if (n <= 0) return;
  using D = DevT<T>;
  const bool vec =
      detail::aligned16(x) && detail::aligned16(g) && detail::aligned16(dx) && keep_aligned(keep, Pack<D>::N);
  const unsigned grid = grid_for_packs(n, Pack<D>::N);
  if constexpr (DROP) {
    if (keep != nullptr) {
      gelu_backward_kernel<D, M, true, true><<<grid, kThreads, 0, current_stream()>>>(
          detail::dev_ptr(x), detail::dev_ptr(g), detail::dev_ptr(dx), n, vec, d, keep);
      VTS_CUDA_CHECK_LAUNCH("gelu_backward_kernel");
      return;
    }
  }
  gelu_backward_kernel<D, M, DROP><<<grid, kThreads, 0, current_stream()>>>(
      detail::dev_ptr(x), detail::dev_ptr(g), detail::dev_ptr(dx), n, vec, d, nullptr);
  VTS_CUDA_CHECK_LAUNCH("gelu_backward_kernel");
}

}  // namespace

void gelu_forward(Device, const float* x, float* y, int64_t n) { forward_impl(x, y, n); }
void gelu_forward(Device, const bf16* x, bf16* y, int64_t n) { gelu_forward(Device{}, x, y, n, GeluLaunch{}); }
void gelu_backward(Device, const float* x, const float* g, float* dx, int64_t n) { backward_impl(x, g, dx, n); }
void gelu_backward(Device, const bf16* x, const bf16* g, bf16* dx, int64_t n) {
  gelu_backward(Device{}, x, g, dx, n, GeluLaunch{});
}
void gelu_forward(Device, const bf16* x, bf16* y, int64_t n, const GeluLaunch& launch) {
  if (launch.erf_form) forward_impl<bf16, ErfMath>(x, y, n);
  else forward_impl<bf16, ExpFormMath>(x, y, n);
}
void gelu_backward(Device, const bf16* x, const bf16* g, bf16* dx, int64_t n, const GeluLaunch& launch) {
  if (launch.erf_form) backward_impl<bf16, ErfMath>(x, g, dx, n);
  else backward_impl<bf16, ExpFormMath>(x, g, dx, n);
}

void gelu_dropout_forward(Device, const float* x, float* y, int64_t n, const DropoutDraw& d) {
  forward_impl<float, ErfMath, true>(x, y, n, d);
}
void gelu_dropout_forward(Device, const bf16* x, bf16* y, int64_t n, const DropoutDraw& d, const GeluLaunch& launch) {
  if (launch.erf_form) forward_impl<bf16, ErfMath, true>(x, y, n, d);
  else forward_impl<bf16, ExpFormMath, true>(x, y, n, d);
}
void gelu_dropout_backward(Device, const float* x, const float* g, float* dx, int64_t n, const DropoutDraw& d) {
  backward_impl<float, ErfMath, true>(x, g, dx, n, d);
}
void gelu_dropout_backward(Device, const bf16* x, const bf16* g, bf16* dx, int64_t n, const DropoutDraw& d,
                           const GeluLaunch& launch) {
  if (launch.erf_form) backward_impl<bf16, ErfMath, true>(x, g, dx, n, d);
  else backward_impl<bf16, ExpFormMath, true>(x, g, dx, n, d);
}

namespace {
std::atomic<bool> g_keep_mask{false};
}  // namespace
void set_gelu_dropout_keep_mask(bool keep) { g_keep_mask.store(keep, std::memory_order_relaxed); }
bool gelu_dropout_keep_mask() { return g_keep_mask.load(std::memory_order_relaxed); }

void gelu_dropout_forward_keep(Device, const float* x, float* y, int64_t n, const DropoutDraw& d, uint8_t* keep) {
  VTS_CHECK(keep != nullptr, "vts::cuda::gelu_dropout_forward_keep: keep is null");
  forward_impl<float, ErfMath, true>(x, y, n, d, keep);
}
void gelu_dropout_forward_keep(Device, const bf16* x, bf16* y, int64_t n, const DropoutDraw& d, uint8_t* keep,
                               const GeluLaunch& launch) {
  VTS_CHECK(keep != nullptr, "vts::cuda::gelu_dropout_forward_keep: keep is null");
  if (launch.erf_form) forward_impl<bf16, ErfMath, true>(x, y, n, d, keep);
  else forward_impl<bf16, ExpFormMath, true>(x, y, n, d, keep);
}
void gelu_dropout_backward_kept(Device, const float* x, const float* g, float* dx, int64_t n, const uint8_t* keep,
                                float keep_scale) {
  VTS_CHECK(keep != nullptr, "vts::cuda::gelu_dropout_backward_kept: keep is null");
  backward_impl<float, ErfMath, true>(x, g, dx, n, DropoutDraw{.keep_scale = keep_scale}, keep);
}
void gelu_dropout_backward_kept(Device, const bf16* x, const bf16* g, bf16* dx, int64_t n, const uint8_t* keep,
                                float keep_scale, const GeluLaunch& launch) {
  VTS_CHECK(keep != nullptr, "vts::cuda::gelu_dropout_backward_kept: keep is null");
  if (launch.erf_form) backward_impl<bf16, ErfMath, true>(x, g, dx, n, DropoutDraw{.keep_scale = keep_scale}, keep);
  else backward_impl<bf16, ExpFormMath, true>(x, g, dx, n, DropoutDraw{.keep_scale = keep_scale}, keep);
}

}  // namespace vts::cuda
