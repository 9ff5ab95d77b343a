#pragma once
// Forced in front of every kernels/*.cu compiled for the emulator (see emu.hpp): the CUDA runtime
// and bf16 headers as any host code sees them, then CUDA C++'s device-side vocabulary mapped onto
// the emulator.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <type_traits>

#include "emu.hpp"

#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// One block runs at a time, so a function-local static is exactly a block's shared variable.
#define __shared__ static
#define __launch_bounds__(...)

#define threadIdx (::vts_emu::thread_idx())
#define blockIdx (::vts_emu::block_idx())
#define blockDim (::vts_emu::block_dim())
#define gridDim (::vts_emu::grid_dim())

inline void __syncthreads() { ::vts_emu::syncthreads(); }
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return ::vts_emu::shfl_xor(mask, v, lane_mask, width);
}
template <class T>
inline T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
  return ::vts_emu::shfl(mask, v, src_lane, width);
}
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<unsigned long long>(a) * b) >> 32);
}
// Blocks run one at a time and a thread gives way only at barriers and collectives, so a plain
// read-modify-write is atomic here and every store is already visible to the next block.
inline unsigned atomicAdd(unsigned* p, unsigned v) {
  const unsigned old = *p;
  *p = old + v;
  return old;
}
inline void __threadfence() {}
template <class T>
inline T __ldcg(const T* p) {
  return *p;
}
// A product rounded on its own, never contracted into an FMA with a following add (what nvcc
// promises for __fmul_rn; GCC contracts a·b + c across inlined calls unless the product is stored).
inline float __fmul_rn(float a, float b) {
  volatile float r = a * b;
  return r;
}

// CUDA's integer and mixed-type min/max, which device code calls unqualified.
template <class A, class B>
inline auto min(A a, B b) {
  using C = std::common_type_t<A, B>;
  return static_cast<C>(a) < static_cast<C>(b) ? static_cast<C>(a) : static_cast<C>(b);
}
template <class A, class B>
inline auto max(A a, B b) {
  using C = std::common_type_t<A, B>;
  return static_cast<C>(a) < static_cast<C>(b) ? static_cast<C>(b) : static_cast<C>(a);
}

// cuda_runtime.h's typed overloads, which it declares only for nvcc.
template <class... K>
inline cudaError_t cudaFuncSetAttribute(void (*kernel)(K...), cudaFuncAttribute attr, int value) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}
template <class... K>
inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, void (*kernel)(K...)) {
  return ::cudaFuncGetAttributes(attr, reinterpret_cast<const void*>(kernel));
}
