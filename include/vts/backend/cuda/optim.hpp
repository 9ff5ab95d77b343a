#pragma once
// Fused optimizer updates on the device: one kernel per parameter tensor (optim_update), or per
// batch of up to kOptimTargetsPerLaunch tensors (optim_update_many), applies the update rule of
// include/vts/optim/update.hpp — the very functors the CPU loop runs (they are VTS_HD), so both
// devices execute the same arithmetic in the same order. Same signature as vts::cpu::optim_update.
//
// Mixed precision: optim_update_master applies the rule to the fp32 master weights with the bf16
// gradient of a bf16 model and, in the same pass, writes the bf16 rounding of the updated masters
// into the parameters the bf16 forward pass reads — no conversion kernels before or after, and
// one read of each array (same contract as vts::cpu::optim_update_master).
//
// The kernels are compiled (kernels/optim.cu) for the functors the optimizers build, with float
// parameters: Sgd, SgdMomentum<Nesterov>, Rmsprop<Centered, Momentum>, Adam<Decoupled, Amsgrad>.
#include <cstdint>
#include <type_traits>

#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/dtype.hpp"
#include "vts/optim/update.hpp"

namespace vts::cuda {

// Number of state buffers each functor takes (after param and grad); -1: not a CUDA functor.
template <class F>
inline constexpr int optim_buffers_v = -1;
template <>
inline constexpr int optim_buffers_v<optim::kernel::Sgd<float>> = 0;
template <bool N>
inline constexpr int optim_buffers_v<optim::kernel::SgdMomentum<float, N>> = 1;
template <bool C, bool M>
inline constexpr int optim_buffers_v<optim::kernel::Rmsprop<float, C, M>> = 1 + int(C) + int(M);
template <bool D, bool A>
inline constexpr int optim_buffers_v<optim::kernel::Adam<float, D, A>> = 2 + int(A);

namespace detail {
template <class F>
void optim_update_many_impl(const optim::UpdateTarget<F>* targets, size_t count);
template <class F>
void optim_update_impl(int64_t n, const F& f, float* param, const float* grad, float* const* buffers);
template <class F>
void optim_update_master_impl(int64_t n, const F& f, float* master, const bf16* grad, bf16* param,
                              float* const* buffers);
}  // namespace detail

template <class T, class F, class... Buffers>
void optim_update(Device, int64_t n, const F& f, T* param, const T* grad, Buffers*... buffers) {
  static_assert(std::is_same_v<T, float>, "vts::cuda::optim_update: parameters are fp32 (master weights)");
  static_assert(optim_buffers_v<F> >= 0,
                "vts::cuda::optim_update: no CUDA instantiation for this update functor (see kernels/optim.cu)");
  static_assert(static_cast<int>(sizeof...(Buffers)) == optim_buffers_v<F>,
                "vts::cuda::optim_update: wrong number of state buffers for this functor");
  float* b[] = {static_cast<float*>(buffers)..., nullptr};
  detail::optim_update_impl(n, f, param, grad, b);
}

template <class F, class... Buffers>
void optim_update_master(Device, int64_t n, const F& f, float* master, const bf16* grad, bf16* param,
                         Buffers*... buffers) {
  static_assert(optim_buffers_v<F> >= 0,
                "vts::cuda::optim_update_master: no CUDA instantiation for this update functor");
  static_assert(static_cast<int>(sizeof...(Buffers)) == optim_buffers_v<F>,
                "vts::cuda::optim_update_master: wrong number of state buffers for this functor");
  float* b[] = {static_cast<float*>(buffers)..., nullptr};
  detail::optim_update_master_impl(n, f, master, grad, param, b);
}

// The updates of `count` parameters, with as few launches as the kernel's parameter space allows
// (kOptimTargetsPerLaunch each): what the optimizers use on the device. All targets of a call are
// fp32 (copy null) or all bf16-with-master (copy set). Same arithmetic, element by element, as
// optim_update / optim_update_master on each target.
inline constexpr size_t kOptimTargetsPerLaunch = 24;
template <class F>
void optim_update_many(Device, const optim::UpdateTarget<F>* targets, size_t count) {
  static_assert(optim_buffers_v<F> >= 0,
                "vts::cuda::optim_update_many: no CUDA instantiation for this update functor (see kernels/optim.cu)");
  detail::optim_update_many_impl(targets, count);
}

}  // namespace vts::cuda
