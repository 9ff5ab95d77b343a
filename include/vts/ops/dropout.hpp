#pragma once
// dropout(x, p, training, generator) -> same shape. Inverted scaling: kept elements are divided by
// (1 − p) in training, so evaluation is the identity. The mask comes from the counter-based
// generator (element i uses counter offset + i/4, lane i%4), so it is the same for any thread
// count. Saves the scaled mask (on CUDA, for a contiguous input, only the counter range that
// regenerates it).
#include "vts/backend/cpu/dropout.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/dropout.hpp"
#endif
#include "vts/core/rng.hpp"
#include "vts/core/tensor.hpp"
#include "vts/ops/elementwise.hpp"

namespace vts {

template <class T, class D>
Tensor<T, D> dropout(const Tensor<T, D>& x, double p, bool training, Generator& gen = default_generator()) {
  VTS_CHECK(p >= 0.0 && p < 1.0, "dropout: probability must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  const int64_t n = x.numel();
  const uint64_t first = gen.reserve(static_cast<uint64_t>(n));
  // Keep an element when its 24-bit uniform is ≥ p·2^24 (probability 1 − p up to 2^-24).
  const uint32_t threshold = static_cast<uint32_t>(p * 16777216.0);
  const T keep_scale = T(1.0 / (1.0 - p));
  if constexpr (!is_cpu_v<D>) {
    if (x.is_contiguous()) {
      // One launch, and no mask tensor: the backward draws the same mask again from (seed, first),
      // which costs a few integer rounds per element where storing the mask costs a write and a
      // read of an activation-sized tensor. (On the CPU the rounds cost more than the bytes.)
      Tensor<T, D> out = Tensor<T, D>::empty(x.shape());
      const uint64_t seed = gen.seed();
      const float scale = static_cast<float>(keep_scale);
      dropout_apply(D{}, seed, first, n, threshold, scale, x.data(), out.data());
      return record(out, "dropout", {&x}, [seed, first, n, threshold, scale](const Tensor<T, D>& g) {
        const Tensor<T, D> gc = g.contiguous_nograd();
        Tensor<T, D> dx = Tensor<T, D>::empty(g.shape());
        dropout_apply(D{}, seed, first, n, threshold, scale, gc.data(), dx.data());
        return std::vector<Tensor<T, D>>{dx};
      });
    }
  }
  Tensor<T, D> mask = Tensor<T, D>::empty(x.shape());
  Tensor<T, D> out;
  if constexpr (is_cpu_v<D>) {
    if (x.is_contiguous()) {  // mask and output in one pass
      out = Tensor<T, D>::empty(x.shape());
      cpu::dropout_forward(D{}, gen.seed(), first, n, threshold, keep_scale, x.data(), mask.data(), out.data());
    }
  }
  if (!out.defined()) {
    dropout_mask(D{}, gen.seed(), first, n, threshold, keep_scale, mask.data());
    out = map(x, mask, fn::Mul{});
  }
  return record(out, "dropout", {&x}, [mask](const Tensor<T, D>& g) {
    return std::vector<Tensor<T, D>>{map(g, mask, fn::Mul{})};
  });
}

}  // namespace vts
