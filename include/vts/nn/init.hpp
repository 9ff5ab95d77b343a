#pragma once
// Parameter initialisation. Every random initialiser draws from a vts::Generator (the default
// one unless given), so a seed fixes every value; the values do not depend on the thread count
// and are the same for float and double tensors up to rounding (both are computed in double from
// the same counters).
//
// How counters map to values (each Philox block is 4 × 32 bits):
//   uniform_          element i ← block i/2, lanes 2(i%2), 2(i%2)+1 → one 53-bit uniform u ∈ [0, 1)
//   normal_           elements 2j, 2j+1 ← block j → two uniforms → Box-Muller (cos, sin)
//   trunc_normal_     like uniform_, then the inverse normal CDF restricted to [a, b]
// A draw of n elements advances the generator by ⌈n/2⌉ blocks.
//
// PyTorch defaults reproduced here (as distributions; the random streams differ from PyTorch's):
//   nn.Linear: weight and bias ~ U(−1/√fan_in, 1/√fan_in)      → linear_(w, b)
//   kaiming_uniform_(w, a, mode):  U(±gain·√(3/fan)), gain = √(2/(1+a²)) for leaky_relu(a)
//   xavier_uniform_(w, gain):      U(±gain·√(6/(fan_in + fan_out)))
//   trunc_normal_(mean, std, a, b): a and b are absolute bounds, not multiples of std (as in
//   torch.nn.init.trunc_normal_, where the common call trunc_normal_(w, std=.02) truncates at ±2,
//   i.e. at ±100 std: effectively no truncation).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "vts/autograd/grad_mode.hpp"
#include "vts/backend/cpu/parallel.hpp"
#include "vts/backend/cpu/philox.hpp"
#include "vts/core/rng.hpp"
#include "vts/core/tensor.hpp"

namespace vts::nn::init {

enum class FanMode { fan_in, fan_out };

struct Fans {
  int64_t fan_in, fan_out;
};

// PyTorch's rule: dimension 1 is the input, dimension 0 the output, and every further dimension
// (a convolution's kernel window) multiplies both.
inline Fans fans(const Shape& shape) {
  VTS_CHECK_SHAPE(shape.ndim() >= 2, "init: fan in/out needs a tensor with at least 2 dimensions, found shape ",
                  shape.str());
  int64_t receptive = 1;
  for (int i = 2; i < shape.ndim(); ++i) receptive *= shape[i];
  return {shape[1] * receptive, shape[0] * receptive};
}

// Gain of a leaky ReLU with negative slope a (a = 0: ReLU, √2). PyTorch's nn.Linear uses a = √5.
inline double leaky_relu_gain(double negative_slope) { return std::sqrt(2.0 / (1.0 + negative_slope * negative_slope)); }

// While one is alive on this thread, the random initialisers (uniform_, normal_, trunc_normal_ and
// those built on them) leave their targets as they are, uninitialised memory for a new model. For a
// model built only to have every weight loaded into it — by a reader that refuses a file missing
// any (io::CheckpointReader) — where the draws would be overwritten: ViT-B/16 with the all-token
// head is 240.8 M of them, 0.75 s on a core. Constant fills (zeros_, ones_) still run.
class SkipRandomInit {
 public:
  SkipRandomInit() : previous_(active()) { active() = true; }
  ~SkipRandomInit() { active() = previous_; }
  SkipRandomInit(const SkipRandomInit&) = delete;
  SkipRandomInit& operator=(const SkipRandomInit&) = delete;
  static bool& active() {
    thread_local bool skipping = false;
    return skipping;
  }

 private:
  bool previous_;
};

namespace detail {

// Inverse of erf on (−1, 1): a closed-form first guess (rel. error ~2e-3) refined by Halley steps
// on erf(x) − y. Near ±1 the residual is formed from erfc, which keeps its precision there.
inline double erfinv(double y) {
  if (y <= -1.0) return -HUGE_VAL;
  if (y >= 1.0) return HUGE_VAL;
  const double a = 0.147;
  const double ln = std::log((1.0 - y) * (1.0 + y));
  const double t = 2.0 / (std::numbers::pi * a) + 0.5 * ln;
  double x = std::copysign(std::sqrt(std::sqrt(t * t - ln / a) - t), y);
  const double two_over_sqrt_pi = 2.0 / std::sqrt(std::numbers::pi);
  for (int it = 0; it < 3; ++it) {
    const double r = y >= 0.0 ? (1.0 - y) - std::erfc(x) : std::erfc(-x) - (1.0 + y);  // erf(x) − y
    const double slope = two_over_sqrt_pi * std::exp(-x * x);
    if (slope == 0.0) break;
    x -= r / (slope * (1.0 + x * r));
  }
  return x;
}

inline double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

// Writes every element of t from the Philox blocks first, first + 1, ... of stream `seed`, two
// elements a block: element i gets value(block first + i/2, i % 2). The blocks are made 16 at a
// time with vector instructions (cpu::detail::philox_blocks_x16), each once for both its elements:
// made one at a time by the scalar Philox::generate, the rounds were most of an element's cost
// (docs/perf.md, "Initialisation"). A value depends only on i, so the loop can be split across
// threads freely.
template <class T, class D, class F>
void fill_from_blocks(const Tensor<T, D>& t, uint64_t seed, uint64_t first, F&& value) {
  if (SkipRandomInit::active()) return;
  constexpr int64_t kPerBlock = 2, kBatch = 16 * kPerBlock;  // elements of 16 blocks
  const int64_t n = t.numel();
  auto write = [&](T* out) {
    cpu::parallel_for(0, (n + kBatch - 1) / kBatch, 512, [&](int64_t batch_begin, int64_t batch_end) {
      alignas(64) uint32_t words[4][16];
      for (int64_t batch = batch_begin; batch < batch_end; ++batch) {
        cpu::detail::philox_blocks_x16(seed, first + 16 * static_cast<uint64_t>(batch), words);
        const int64_t i0 = batch * kBatch, count = std::min(kBatch, n - i0);
        T* dst = out + i0;
        if (count == kBatch) {  // the loop GCC vectorises: no bound and no division by kPerBlock
          for (int j = 0; j < 16; ++j) {
            const Philox::Block bits = {words[0][j], words[1][j], words[2][j], words[3][j]};
            for (int h = 0; h < kPerBlock; ++h) dst[kPerBlock * j + h] = static_cast<T>(value(bits, h));
          }
          continue;
        }
        for (int64_t k = 0; k < count; ++k) {
          const int64_t j = k / kPerBlock;
          const Philox::Block bits = {words[0][j], words[1][j], words[2][j], words[3][j]};
          dst[k] = static_cast<T>(value(bits, static_cast<int>(k % kPerBlock)));
        }
      }
    });
  };
  if constexpr (is_cpu_v<D>) {
    if (t.is_contiguous()) {
      write(t.data());
      return;
    }
  }
  // Strided views and device tensors: draw on the host, then copy into place.
  std::vector<T> host(static_cast<size_t>(n));
  write(host.data());
  NoGradGuard no_grad;
  Tensor<T, D>(t).detach().copy_(Tensor<T, D>::from_vector(host, t.shape()));
}

inline double unit_double(const Philox::Block& bits, int lane) {
  return Philox::to_unit_double(bits[static_cast<size_t>(lane)], bits[static_cast<size_t>(lane + 1)]);
}

}  // namespace detail

template <class T, class D>
Tensor<T, D> constant_(const Tensor<T, D>& t, double value) {
  Tensor<T, D>(t).detach().fill_(static_cast<T>(value));
  return t;
}
template <class T, class D>
Tensor<T, D> zeros_(const Tensor<T, D>& t) {
  return constant_(t, 0.0);
}
template <class T, class D>
Tensor<T, D> ones_(const Tensor<T, D>& t) {
  return constant_(t, 1.0);
}

// U(a, b): a + (b − a)·u with u ∈ [0, 1) (after rounding to float a value may equal b).
template <class T, class D>
Tensor<T, D> uniform_(const Tensor<T, D>& t, double a, double b, Generator& gen = default_generator()) {
  VTS_CHECK(a <= b, "uniform_: lower bound ", a, " is above upper bound ", b);
  const uint64_t first = gen.reserve(2 * static_cast<uint64_t>(t.numel()));
  detail::fill_from_blocks(t, gen.seed(), first, [=](const Philox::Block& bits, int half) {
    return a + (b - a) * detail::unit_double(bits, 2 * half);
  });
  return t;
}

// N(mean, std²) by Box-Muller.
template <class T, class D>
Tensor<T, D> normal_(const Tensor<T, D>& t, double mean = 0.0, double std = 1.0, Generator& gen = default_generator()) {
  VTS_CHECK(std >= 0.0, "normal_: standard deviation must be >= 0, got ", std);
  const uint64_t first = gen.reserve(4 * static_cast<uint64_t>((t.numel() + 1) / 2));
  detail::fill_from_blocks(t, gen.seed(), first, [=](const Philox::Block& bits, int half) {
    const double u1 = 1.0 - detail::unit_double(bits, 0);  // (0, 1]: the log stays finite
    const double u2 = detail::unit_double(bits, 2);
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * std::numbers::pi * u2;
    return mean + std * r * (half == 0 ? std::cos(angle) : std::sin(angle));
  });
  return t;
}

// N(mean, std²) conditioned on [a, b], by inverting the CDF: one uniform per element, no
// rejection loop, so the generator advances by a fixed amount.
template <class T, class D>
Tensor<T, D> trunc_normal_(const Tensor<T, D>& t, double mean = 0.0, double std = 1.0, double a = -2.0, double b = 2.0,
                           Generator& gen = default_generator()) {
  VTS_CHECK(std > 0.0, "trunc_normal_: standard deviation must be > 0, got ", std);
  VTS_CHECK(a < b, "trunc_normal_: lower bound ", a, " must be below upper bound ", b);
  const double lo = detail::normal_cdf((a - mean) / std), hi = detail::normal_cdf((b - mean) / std);
  VTS_CHECK(hi > lo, "trunc_normal_: [", a, ", ", b, "] lies too far in the tail of N(", mean, ", ", std,
            "²) to sample");
  const uint64_t first = gen.reserve(2 * static_cast<uint64_t>(t.numel()));
  detail::fill_from_blocks(t, gen.seed(), first, [=](const Philox::Block& bits, int half) {
    const double p = lo + (hi - lo) * detail::unit_double(bits, 2 * half);
    const double x = mean + std * std::numbers::sqrt2 * detail::erfinv(2.0 * p - 1.0);
    return std::clamp(x, a, b);
  });
  return t;
}

// U(±gain·√(3/fan)); fan is fan_in or fan_out of t's shape.
template <class T, class D>
Tensor<T, D> kaiming_uniform_(const Tensor<T, D>& t, double gain = std::numbers::sqrt2, FanMode mode = FanMode::fan_in,
                              Generator& gen = default_generator()) {
  const Fans f = fans(t.shape());
  const int64_t fan = mode == FanMode::fan_in ? f.fan_in : f.fan_out;
  VTS_CHECK(fan > 0, "kaiming_uniform_: zero fan for shape ", t.shape().str());
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(fan));
  return uniform_(t, -bound, bound, gen);
}

// N(0, (gain/√fan)²).
template <class T, class D>
Tensor<T, D> kaiming_normal_(const Tensor<T, D>& t, double gain = std::numbers::sqrt2, FanMode mode = FanMode::fan_in,
                             Generator& gen = default_generator()) {
  const Fans f = fans(t.shape());
  const int64_t fan = mode == FanMode::fan_in ? f.fan_in : f.fan_out;
  VTS_CHECK(fan > 0, "kaiming_normal_: zero fan for shape ", t.shape().str());
  return normal_(t, 0.0, gain / std::sqrt(static_cast<double>(fan)), gen);
}

// U(±gain·√(6/(fan_in + fan_out))).
template <class T, class D>
Tensor<T, D> xavier_uniform_(const Tensor<T, D>& t, double gain = 1.0, Generator& gen = default_generator()) {
  const Fans f = fans(t.shape());
  VTS_CHECK(f.fan_in + f.fan_out > 0, "xavier_uniform_: zero fans for shape ", t.shape().str());
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(f.fan_in + f.fan_out));
  return uniform_(t, -bound, bound, gen);
}

// nn.Linear's reset_parameters: weight [out, in] by kaiming_uniform_ with a = √5, which is
// U(±1/√in), then (if given) bias [out] from U(±1/√in). Weight first, then bias, from `gen`.
template <class T, class D>
void linear_(const Tensor<T, D>& weight, const Tensor<T, D>& bias = Tensor<T, D>(),
             Generator& gen = default_generator()) {
  VTS_CHECK_SHAPE(weight.ndim() == 2, "init::linear_: weight must be [out, in], found ", weight.shape().str());
  kaiming_uniform_(weight, leaky_relu_gain(std::sqrt(5.0)), FanMode::fan_in, gen);
  if (bias.defined()) {
    VTS_CHECK_SHAPE(bias.shape() == Shape{weight.size(0)}, "init::linear_: bias shape ", bias.shape().str(),
                    " does not match weight ", weight.shape().str());
    const double bound = 1.0 / std::sqrt(static_cast<double>(weight.size(1)));
    uniform_(bias, -bound, bound, gen);
  }
}

}  // namespace vts::nn::init
