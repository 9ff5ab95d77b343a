#pragma once
// dropout(x, p, training, generator) -> same shape. Inverted scaling: kept elements are divided by
// (1 − p) in training, so evaluation is the identity. The mask comes from the counter-based
// generator (element i uses counter offset + i/4, lane i%4), so it is the same for any thread
// count. Saves the scaled mask.
#include "vts/core/rng.hpp"
#include "vts/core/tensor.hpp"
#include "vts/ops/elementwise.hpp"

namespace vts {

template <class T, class D>
Tensor<T, D> dropout(const Tensor<T, D>& x, double p, bool training, Generator& gen = default_generator()) {
  VTS_CHECK(p >= 0.0 && p < 1.0, "dropout: probability must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  static_assert(is_cpu_v<D>, "dropout: the CUDA mask generator lives in the CUDA backend");
  const int64_t n = x.numel();
  const uint64_t first = gen.reserve(static_cast<uint64_t>(n));
  // Keep an element when its 24-bit uniform is ≥ p·2^24 (probability 1 − p up to 2^-24).
  const uint32_t threshold = static_cast<uint32_t>(p * 16777216.0);
  const T keep_scale = T(1.0 / (1.0 - p));
  Tensor<T, D> mask = Tensor<T, D>::empty(x.shape());
  T* m = mask.data();
  cpu::parallel_for(0, (n + 3) / 4, 1 << 12, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      const auto bits = Philox::generate(gen.seed(), 0, first + static_cast<uint64_t>(blk));
      for (int64_t lane = 0; lane < 4 && blk * 4 + lane < n; ++lane)
        m[blk * 4 + lane] = (bits[static_cast<size_t>(lane)] >> 8) >= threshold ? keep_scale : T(0);
    }
  });
  return record(map(x, mask, fn::Mul{}), "dropout", {&x}, [mask](const Tensor<T, D>& g) {
    return std::vector<Tensor<T, D>>{map(g, mask, fn::Mul{})};
  });
}

}  // namespace vts
