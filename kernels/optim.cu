// Fused optimizer updates (contract in include/vts/backend/cuda/optim.hpp). The update rules are
// the functors of include/vts/optim/update.hpp, instantiated with V = float: one thread applies
// one element's update, reading param, grad and the state buffers once and writing them once.
// Memory-bound: Adam moves 7 fp32 words per element (reads p, g, m, v; writes p, m, v), 28 bytes;
// for a bf16 model the gradient read is 2 bytes and the bf16 weight written 2 more, 28 again; at
// 3 TB/s that is ≈ 9.3 µs per million parameters.
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

// G is the gradient's type: float for fp32 parameters (copy null), __nv_bfloat16 for a bf16 model,
// whose fp32 masters are `param` and whose bf16 parameters `copy` receives.
template <class F, int NB, class G>
__global__ void optim_update_kernel(int64_t n, F f, float* __restrict__ param, const G* __restrict__ grad,
                                    Buffers bufs, __nv_bfloat16* __restrict__ copy, bool vec) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
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

template <class F, class G>
void launch(int64_t n, const F& f, float* param, const G* grad, float* const* buffers, bf16* copy) {
  if (n <= 0) return;
  constexpr int NB = optim_buffers_v<F>;
  Buffers b{};
  bool vec = aligned16(param) && (sizeof(G) == 4 ? aligned16(grad) : aligned8(grad)) &&
             (copy == nullptr || aligned8(copy));
  for (int k = 0; k < NB; ++k) {
    VTS_CHECK(buffers[k] != nullptr, "vts::cuda::optim_update: state buffer ", k, " is null");
    b.b[k] = buffers[k];
    vec = vec && aligned16(buffers[k]);
  }
  optim_update_kernel<F, NB, DevT<G>><<<grid_for((n + 3) / 4, 256, int64_t(device_info().sm_count) * 8), 256, 0,
                                        current_stream()>>>(n, f, param, dev_ptr(grad), b, dev_ptr(copy), vec);
  VTS_CUDA_CHECK_LAUNCH("optim_update_kernel");
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

#define VTS_OPTIM(F)                                                                                  \
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
