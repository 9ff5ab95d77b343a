#pragma once
// The per-element update rules of the optimizers, written once as functors callable on the host
// and on the device (VTS_HD), plus the CPU loop that applies one to a parameter.
//
// Each functor reproduces PyTorch 1.13's single-tensor (non-foreach) code path operation by
// operation, in the same order, with the scalar coefficients computed in double on the host and
// rounded to T once, as PyTorch does with Python floats passed to a float tensor op:
//   a.add_(b, alpha=s)        → a + s·b
//   a.addcmul_(b, c, value=s) → a + s·b·c
//   a.addcdiv_(b, c, value=s) → a + s·b / c
// Each functor's operator() is a template over the value type V: T for one element (a CUDA thread,
// the CPU loop's tail) or an Eigen fixed-size array of T, one SIMD register wide, for the CPU
// loop's body. The array form is what makes the CPU loop vectorise: a std::sqrt in a plain loop
// keeps a scalar errno-setting libm call (GCC without -fno-math-errno) and the loop stays scalar,
// 5× slower on a 16M-element Adam step. A CUDA backend provides vts::cuda::optim_update with the
// same signature and reuses these functors with V = T, so both devices run the same arithmetic.
#include <Eigen/Core>
#include <array>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "vts/backend/cpu/parallel.hpp"
#include "vts/core/device.hpp"
#include "vts/core/dtype.hpp"
#include "vts/core/functors.hpp"

namespace vts::optim::kernel {

namespace detail {
// max(a, b) elementwise for a scalar or an Eigen array (PyTorch's torch.maximum, NaN aside).
template <class V>
VTS_HD V elementwise_max(const V& a, const V& b) {
  if constexpr (std::is_arithmetic_v<V>) {
    return a > b ? a : b;
  } else {
    return a.max(b);
  }
}
}  // namespace detail

// Plain SGD (momentum 0): no state.
template <class T>
struct Sgd {
  T neg_lr, weight_decay;
  bool maximize;
  template <class V>
  VTS_HD void operator()(V& p, V g) const {
    if (maximize) g = -g;
    if (weight_decay != T(0)) g = g + weight_decay * p;
    p = p + neg_lr * g;
  }
};

// SGD with momentum. `first` is true on the step that creates the buffer: PyTorch then copies the
// (decayed) gradient into it instead of blending with zeros, so dampening does not apply yet.
template <class T, bool Nesterov>
struct SgdMomentum {
  T neg_lr, weight_decay, momentum, one_minus_dampening;
  bool maximize, first;
  template <class V>
  VTS_HD void operator()(V& p, V g, V& buf) const {
    if (maximize) g = -g;
    if (weight_decay != T(0)) g = g + weight_decay * p;
    if (first) {
      buf = g;
    } else {
      buf = buf * momentum + one_minus_dampening * g;
    }
    if constexpr (Nesterov) {
      p = p + neg_lr * (g + momentum * buf);
    } else {
      p = p + neg_lr * buf;
    }
  }
};

// RMSprop. Buffers, in this order: square_avg, then grad_avg when Centered, then the momentum
// buffer when Momentum. All start at zero (unlike SGD's momentum buffer).
template <class T, bool Centered, bool Momentum>
struct Rmsprop {
  T neg_lr, alpha, one_minus_alpha, eps, weight_decay, momentum;
  bool maximize;

  template <class V>
  VTS_HD void operator()(V& p, V g, V& sq) const
    requires(!Centered && !Momentum)
  {
    apply(p, g, sq, sq, sq);
  }
  template <class V>
  VTS_HD void operator()(V& p, V g, V& sq, V& extra) const
    requires(Centered != Momentum)
  {
    apply(p, g, sq, extra, extra);
  }
  template <class V>
  VTS_HD void operator()(V& p, V g, V& sq, V& grad_avg, V& buf) const
    requires(Centered && Momentum)
  {
    apply(p, g, sq, grad_avg, buf);
  }

 private:
  // Unused buffer references alias `sq`; the `if constexpr` guards keep them untouched.
  template <class V>
  VTS_HD void apply(V& p, V g, V& sq, V& grad_avg, V& buf) const {
    using std::sqrt;
    if (maximize) g = -g;
    if (weight_decay != T(0)) g = g + weight_decay * p;
    sq = sq * alpha + one_minus_alpha * g * g;
    V avg;
    if constexpr (Centered) {
      grad_avg = grad_avg * alpha + one_minus_alpha * g;
      avg = sqrt(sq + T(-1) * grad_avg * grad_avg);
    } else {
      avg = sqrt(sq);
    }
    avg = avg + eps;
    if constexpr (Momentum) {
      buf = buf * momentum + g / avg;
      p = p + neg_lr * buf;
    } else {
      p = p + neg_lr * g / avg;
    }
  }
};

// Adam (Decoupled = false: weight decay is an L2 term added to the gradient) and AdamW
// (Decoupled = true: the parameter is first shrunk by decay_factor = 1 − lr·wd). Buffers: exp_avg,
// exp_avg_sq, then max_exp_avg_sq when Amsgrad. neg_step_size = −lr / (1 − β1^t) and
// bc2_sqrt = √(1 − β2^t) are per-step scalars.
template <class T, bool Decoupled, bool Amsgrad>
struct Adam {
  T neg_step_size, bc2_sqrt, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay_factor;
  bool maximize;

  template <class V>
  VTS_HD void operator()(V& p, V g, V& m, V& v) const
    requires(!Amsgrad)
  {
    apply(p, g, m, v, v);
  }
  template <class V>
  VTS_HD void operator()(V& p, V g, V& m, V& v, V& v_max) const
    requires(Amsgrad)
  {
    apply(p, g, m, v, v_max);
  }

 private:
  template <class V>
  VTS_HD void apply(V& p, V g, V& m, V& v, V& v_max) const {
    using std::sqrt;
    if (maximize) g = -g;
    if constexpr (Decoupled) {
      p = p * decay_factor;
    } else {
      if (weight_decay != T(0)) g = g + weight_decay * p;
    }
    m = m * beta1 + one_minus_beta1 * g;
    v = v * beta2 + one_minus_beta2 * g * g;
    V denom;
    if constexpr (Amsgrad) {
      v_max = detail::elementwise_max(v_max, v);
      denom = sqrt(v_max) / bc2_sqrt + eps;
    } else {
      denom = sqrt(v) / bc2_sqrt + eps;
    }
    p = p + neg_step_size * m / denom;
  }
};

}  // namespace vts::optim::kernel

namespace vts::optim {

// One parameter's update, for a device that applies the updates of many parameters in one launch
// (vts::cuda::optim_update_many; on a GPU a small model's step is bound by launches, one per
// parameter tensor otherwise). Each parameter keeps its own functor: step counts, and with them
// Adam's bias corrections, can differ between parameters.
template <class F>
struct UpdateTarget {
  F f;
  int64_t n;
  float* param;        // the fp32 parameter, or the fp32 master of a bf16 one
  const void* grad;    // float*, or bf16* when copy is set
  float* buffers[3];   // the functor's state buffers in order; the rest null
  bf16* copy;          // the bf16 parameter that receives the updated master's rounding; null for fp32
};

}  // namespace vts::optim

namespace vts::cpu {

// Smallest slice of a parameter worth a thread: below this, forking costs more than the update.
inline constexpr int64_t kOptimGrain = int64_t(1) << 15;

namespace detail {
template <class T, class F, size_t... I, class... Buffers>
void optim_packs(int64_t first_pack, int64_t last_pack, const F& f, T* param, const T* grad,
                 std::index_sequence<I...>, Buffers*... buffers) {
  constexpr int64_t kLanes = 64 / sizeof(T);  // one AVX-512 register (two AVX2, four SSE)
  using Pack = Eigen::Array<T, kLanes, 1>;
  for (int64_t k = first_pack; k < last_pack; ++k) {
    const int64_t i = k * kLanes;
    Pack p = Eigen::Map<const Pack>(param + i);
    std::array<Pack, sizeof...(Buffers)> b{Pack(Eigen::Map<const Pack>(buffers + i))...};
    f(p, Pack(Eigen::Map<const Pack>(grad + i)), b[I]...);
    Eigen::Map<Pack>(param + i) = p;
    ((Eigen::Map<Pack>(buffers + i) = b[I]), ...);
  }
}
}  // namespace detail

// Applies f(param[i], grad[i], buffers[i]...) for i in [0, n): whole SIMD-width packs threaded over
// chunks, then the remainder element by element. Which elements go through the pack path depends
// only on n, never on the thread count, so results are identical for any number of threads.
template <class T, class F, class... Buffers>
void optim_update(Device, int64_t n, const F& f, T* param, const T* grad, Buffers*... buffers) {
  constexpr int64_t kLanes = 64 / sizeof(T);
  const int64_t packs = n / kLanes;
  parallel_for(0, packs, kOptimGrain / kLanes, [&](int64_t b, int64_t e) {
    detail::optim_packs(b, e, f, param, grad, std::index_sequence_for<Buffers...>{}, buffers...);
  });
  for (int64_t i = packs * kLanes; i < n; ++i) f(param[i], grad[i], buffers[i]...);
}

// The mixed-precision form: f runs on the fp32 master weight with the bf16 gradient read as fp32,
// and the bf16 parameter receives the rounding of the updated master. One element at a time (V =
// float), the arithmetic of the CUDA kernel's tail; the CPU computes nothing in bf16 itself, so
// this path exists for tests and for bf16 models moved between devices.
template <class F, class... Buffers>
void optim_update_master(Device, int64_t n, const F& f, float* master, const bf16* grad, bf16* param,
                         Buffers*... buffers) {
  parallel_for(0, n, kOptimGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float p = master[i];
      f(p, static_cast<float>(grad[i]), buffers[i]...);
      master[i] = p;
      param[i] = bf16(p);
    }
  });
}

}  // namespace vts::cpu
