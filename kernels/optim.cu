// Fused optimizer updates (contract in include/vts/backend/cuda/optim.hpp). The update rules are
// the functors of include/vts/optim/update.hpp, instantiated with V = float: one thread applies
// one element's update, reading param, grad and the state buffers once and writing them once.
// Memory-bound: Adam moves 7 fp32 words per element (reads p, g, m, v; writes p, m, v), 28 bytes;
// for a bf16 model the gradient read is 2 bytes and the bf16 weight written 2 more, 28 again; at
// 3 TB/s that is ≈ 9.3 µs per million parameters.
#include <algorithm>

#include "common/check.cuh"
#include "common/types.cuh"
#include "vts/backend/cuda/optim.hpp"

#define VTS_COMMA ,

namespace vts::cuda {

namespace {

using namespace vts::optim::kernel;
using detail::aligned16;
using detail::aligned8;
using detail::dev_ptr;
using detail::DevT;
using detail::grid_for;
using detail::to_f;

struct Buffers {
  float* b[3];
};

template <int NB, class F>
__device__ __forceinline__ void apply(const F& f, float& p, float g, float (&s)[3]) {
  if constexpr (NB == 0) f(p, g);
  else if constexpr (NB == 1) f(p, g, s[0]);
  else if constexpr (NB == 2) f(p, g, s[0], s[1]);
  else f(p, g, s[0], s[1], s[2]);
}

// Four gradients through one 16-byte (fp32) or 8-byte (bf16) load.
__device__ __forceinline__ float4 load_grad4(const float* g) { return __ldg(reinterpret_cast<const float4*>(g)); }
__device__ __forceinline__ float4 load_grad4(const __nv_bfloat16* g) {
  const uint2 raw = __ldg(reinterpret_cast<const uint2*>(g));
  const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
  const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
  return make_float4(lo.x, lo.y, hi.x, hi.y);
}

// Elements [0, n) of one tensor, grid-stride from `tid`: packs of four when `vec` (every array
// aligned for it), then one at a time. G is the gradient's type: float for fp32 parameters (copy
// null), __nv_bfloat16 for a bf16 model, whose fp32 masters are `param` and whose bf16 parameters
// `copy` receives.
template <class F, int NB, class G>
__device__ __forceinline__ void update_elements(int64_t n, const F& f, float* __restrict__ param,
                                                const G* __restrict__ grad, const Buffers& bufs,
                                                __nv_bfloat16* __restrict__ copy, bool vec, int64_t tid,
                                                int64_t stride) {
  int64_t done = 0;
  if (vec) {
    const int64_t packs = n / 4;
    for (int64_t q = tid; q < packs; q += stride) {
      const int64_t i = 4 * q;
      float4 p4 = *reinterpret_cast<const float4*>(param + i);
      const float4 g4 = load_grad4(grad + i);
      float4 s4[3];
#pragma unroll
      for (int k = 0; k < NB; ++k) s4[k] = *reinterpret_cast<const float4*>(bufs.b[k] + i);
      float* pv = &p4.x;
      const float* gv = &g4.x;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float s[3];
#pragma unroll
        for (int k = 0; k < NB; ++k) s[k] = (&s4[k].x)[j];
        apply<NB>(f, pv[j], gv[j], s);
#pragma unroll
        for (int k = 0; k < NB; ++k) (&s4[k].x)[j] = s[k];
      }
      *reinterpret_cast<float4*>(param + i) = p4;
#pragma unroll
      for (int k = 0; k < NB; ++k) *reinterpret_cast<float4*>(bufs.b[k] + i) = s4[k];
      if (copy) {
        __nv_bfloat162 lo = __floats2bfloat162_rn(p4.x, p4.y), hi = __floats2bfloat162_rn(p4.z, p4.w);
        uint2 packed;
        packed.x = *reinterpret_cast<uint32_t*>(&lo);
        packed.y = *reinterpret_cast<uint32_t*>(&hi);
        *reinterpret_cast<uint2*>(copy + i) = packed;
      }
    }
    done = packs * 4;
  }
  for (int64_t i = done + tid; i < n; i += stride) {
    float p = param[i];
    float s[3];
#pragma unroll
    for (int k = 0; k < NB; ++k) s[k] = bufs.b[k][i];
    apply<NB>(f, p, to_f(grad[i]), s);
    param[i] = p;
#pragma unroll
    for (int k = 0; k < NB; ++k) bufs.b[k][i] = s[k];
    if (copy) copy[i] = __float2bfloat16_rn(p);
  }
}

template <class F, int NB, class G>
__global__ void optim_update_kernel(int64_t n, F f, float* __restrict__ param, const G* __restrict__ grad,
                                    Buffers bufs, __nv_bfloat16* __restrict__ copy, bool vec) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  update_elements<F, NB>(n, f, param, grad, bufs, copy, vec, tid, stride);
}

// The arrays' alignment decides the pack path, per tensor.
template <int NB, class G>
bool packs_aligned(const float* param, const G* grad, float* const* buffers, const bf16* copy) {
  bool vec = aligned16(param) && (sizeof(G) == 4 ? aligned16(grad) : aligned8(grad)) &&
             (copy == nullptr || aligned8(copy));
  for (int k = 0; k < NB; ++k) vec = vec && aligned16(buffers[k]);
  return vec;
}

template <class F, class G>
void launch(int64_t n, const F& f, float* param, const G* grad, float* const* buffers, bf16* copy) {
  if (n <= 0) return;
  constexpr int NB = optim_buffers_v<F>;
  Buffers b{};
  for (int k = 0; k < NB; ++k) {
    VTS_CHECK(buffers[k] != nullptr, "vts::cuda::optim_update: state buffer ", k, " is null");
    b.b[k] = buffers[k];
  }
  const bool vec = packs_aligned<NB>(param, grad, buffers, copy);
  optim_update_kernel<F, NB, DevT<G>><<<grid_for((n + 3) / 4, 256, int64_t(device_info().sm_count) * 8), 256, 0,
                                        current_stream()>>>(n, f, param, dev_ptr(grad), b, dev_ptr(copy), vec);
  VTS_CUDA_CHECK_LAUNCH("optim_update_kernel");
}

// Up to kOptimTargetsPerLaunch tensors by value in the kernel's parameters (24 Adam targets are
// ≈ 2.5 KB of the 4 KB every CUDA version allows), so nothing is copied to the device first.
template <class F>
struct Target {
  F f;
  int64_t n;
  float* param;
  const void* grad;
  Buffers bufs;
  __nv_bfloat16* copy;
  bool vec;
};
template <class F>
struct TargetBatch {
  int count;
  Target<F> t[kOptimTargetsPerLaunch];
};

// Every thread walks every tensor of the batch grid-stride: the small ones (biases, norms) cost a
// loop test each, and no table of block → tensor ranges has to be built.
template <class F, int NB, class G>
__global__ void optim_update_many_kernel(const TargetBatch<F> batch) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int k = 0; k < batch.count; ++k) {
    const Target<F>& t = batch.t[k];
    update_elements<F, NB>(t.n, t.f, t.param, static_cast<const G*>(t.grad), t.bufs, t.copy, t.vec, tid, stride);
  }
}

template <class F>
void launch_many(const optim::UpdateTarget<F>* targets, size_t count) {
  constexpr int NB = optim_buffers_v<F>;
  static_assert(sizeof(TargetBatch<F>) <= 4000, "the batch must fit the kernel parameter space");
  const bool bf16_grads = count > 0 && targets[0].copy != nullptr;
  for (size_t first = 0; first < count; first += kOptimTargetsPerLaunch) {
    TargetBatch<F> batch{};
    int64_t packs = 0;
    for (size_t i = first; i < std::min(count, first + kOptimTargetsPerLaunch); ++i) {
      const optim::UpdateTarget<F>& u = targets[i];
      VTS_CHECK((u.copy != nullptr) == bf16_grads, "vts::cuda::optim_update_many: target ", i,
                " mixes fp32 and bf16-with-master parameters with target 0");
      VTS_CHECK(u.n >= 0 && u.param != nullptr && u.grad != nullptr, "vts::cuda::optim_update_many: target ", i,
                " has n = ", u.n, ", param ", u.param, ", grad ", u.grad);
      Target<F>& t = batch.t[batch.count++];
      t.f = u.f;
      t.n = u.n;
      t.param = u.param;
      t.grad = u.grad;
      for (int k = 0; k < NB; ++k) {
        VTS_CHECK(u.buffers[k] != nullptr, "vts::cuda::optim_update_many: state buffer ", k, " of target ", i,
                  " is null");
        t.bufs.b[k] = u.buffers[k];
      }
      t.copy = dev_ptr(u.copy);
      t.vec = bf16_grads ? packs_aligned<NB>(u.param, static_cast<const bf16*>(u.grad), u.buffers, u.copy)
                         : packs_aligned<NB>(u.param, static_cast<const float*>(u.grad), u.buffers, u.copy);
      packs = std::max(packs, (u.n + 3) / 4);
    }
    if (packs == 0) continue;
    const auto grid = grid_for(packs, 256, int64_t(device_info().sm_count) * 8);
    if (bf16_grads) optim_update_many_kernel<F, NB, __nv_bfloat16><<<grid, 256, 0, current_stream()>>>(batch);
    else optim_update_many_kernel<F, NB, float><<<grid, 256, 0, current_stream()>>>(batch);
    VTS_CUDA_CHECK_LAUNCH("optim_update_many_kernel");
  }
}

}  // namespace

namespace detail {

template <class F>
void optim_update_impl(int64_t n, const F& f, float* param, const float* grad, float* const* buffers) {
  launch(n, f, param, grad, buffers, nullptr);
}

template <class F>
void optim_update_master_impl(int64_t n, const F& f, float* master, const bf16* grad, bf16* param,
                              float* const* buffers) {
  launch(n, f, master, grad, buffers, param);
}

template <class F>
void optim_update_many_impl(const optim::UpdateTarget<F>* targets, size_t count) {
  launch_many(targets, count);
}

#define VTS_OPTIM(F)                                                                                  \
  template void optim_update_many_impl<F>(const optim::UpdateTarget<F>*, size_t);                      \
  template void optim_update_impl<F>(int64_t, const F&, float*, const float*, float* const*);                \
  template void optim_update_master_impl<F>(int64_t, const F&, float*, const bf16*, bf16*, float* const*);
VTS_OPTIM(Sgd<float>)
VTS_OPTIM(SgdMomentum<float VTS_COMMA false>)
VTS_OPTIM(SgdMomentum<float VTS_COMMA true>)
VTS_OPTIM(Rmsprop<float VTS_COMMA false VTS_COMMA false>)
VTS_OPTIM(Rmsprop<float VTS_COMMA false VTS_COMMA true>)
VTS_OPTIM(Rmsprop<float VTS_COMMA true VTS_COMMA false>)
VTS_OPTIM(Rmsprop<float VTS_COMMA true VTS_COMMA true>)
VTS_OPTIM(Adam<float VTS_COMMA false VTS_COMMA false>)
VTS_OPTIM(Adam<float VTS_COMMA false VTS_COMMA true>)
VTS_OPTIM(Adam<float VTS_COMMA true VTS_COMMA false>)
VTS_OPTIM(Adam<float VTS_COMMA true VTS_COMMA true>)
#undef VTS_OPTIM

}  // namespace detail

}  // namespace vts::cuda
