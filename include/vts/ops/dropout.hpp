#pragma once
// dropout(x, p, training, generator) -> same shape. Inverted scaling: kept elements are divided by
// (1 − p) in training, so evaluation is the identity. The mask comes from the counter-based
// generator (element i uses counter offset + i/4, lane i%4), so it is the same for any thread
// count. Saves the scaled mask (on CUDA, for a contiguous input, only the counter range that
// regenerates it).
// Two fusions with their neighbours, for the ViT MLP on CUDA (elsewhere the plain composites, with
// the same draws and bits): gelu_dropout(x) = dropout(gelu(x)) and add_dropout(r, x) = r + dropout(x).
#include <memory>

#include "vts/backend/cpu/dropout.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/activation.hpp"
#include "vts/backend/cuda/dropout.hpp"
#include "vts/backend/cuda/graph.hpp"
#include "vts/backend/cuda/memory.hpp"
#endif
#include "vts/core/rng.hpp"
#include "vts/core/tensor.hpp"
#include "vts/ops/elementwise.hpp"

namespace vts {

namespace detail {
// What one dropout call draws: n counters reserved from the generator, the keep threshold and the
// scale of kept elements (in T, as the mask holds it). Inside a CUDA graph capture also the device
// offset each replay adds to the counters (backend/cuda/graph.hpp); null otherwise.
template <class T>
struct DropoutDrawOf {
  uint64_t seed, first;
  uint32_t threshold;
  T keep_scale;
  const uint64_t* first_offset;
};
template <class T, class D>
DropoutDrawOf<T> draw_dropout(double p, int64_t n, Generator& gen) {
  const uint64_t* offset = nullptr;
#if defined(VTS_WITH_CUDA)
  if constexpr (std::is_same_v<D, Cuda>) offset = cuda::philox_offset_for(gen);
#endif
  const uint64_t first = gen.reserve(static_cast<uint64_t>(n));
  // Keep an element when its 24-bit uniform is ≥ p·2^24 (probability 1 − p up to 2^-24).
  return {gen.seed(), first, static_cast<uint32_t>(p * 16777216.0), T(1.0 / (1.0 - p)), offset};
}
}  // namespace detail

template <class T, class D>
Tensor<T, D> dropout(const Tensor<T, D>& x, double p, bool training, Generator& gen = default_generator()) {
  VTS_CHECK(p >= 0.0 && p < 1.0, "dropout: probability must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  const int64_t n = x.numel();
  const auto draw = detail::draw_dropout<T, D>(p, n, gen);
  if constexpr (!is_cpu_v<D>) {
    if (x.is_contiguous()) {
      // One launch, and no mask tensor: the backward draws the same mask again from (seed, first),
      // which costs a few integer rounds per element where storing the mask costs a write and a
      // read of an activation-sized tensor. (On the CPU the rounds cost more than the bytes.)
      Tensor<T, D> out = Tensor<T, D>::empty(x.shape());
      const float scale = static_cast<float>(draw.keep_scale);
      dropout_apply(D{}, draw.seed, draw.first, n, draw.threshold, scale, x.data(), out.data(), draw.first_offset);
      return record(out, "dropout", {&x}, [draw, n, scale](const Tensor<T, D>& g) {
        const Tensor<T, D> gc = g.contiguous_nograd();
        Tensor<T, D> dx = Tensor<T, D>::empty(g.shape());
        dropout_apply(D{}, draw.seed, draw.first, n, draw.threshold, scale, gc.data(), dx.data(), draw.first_offset);
        return std::vector<Tensor<T, D>>{dx};
      });
    }
  }
  Tensor<T, D> mask = Tensor<T, D>::empty(x.shape());
  Tensor<T, D> out;
  if constexpr (is_cpu_v<D>) {
    if (x.is_contiguous()) {  // mask and output in one pass
      out = Tensor<T, D>::empty(x.shape());
      cpu::dropout_forward(D{}, draw.seed, draw.first, n, draw.threshold, draw.keep_scale, x.data(), mask.data(),
                           out.data());
    }
  }
  if (!out.defined()) {
    if constexpr (is_cpu_v<D>)
      dropout_mask(D{}, draw.seed, draw.first, n, draw.threshold, draw.keep_scale, mask.data());
    else
      dropout_mask(D{}, draw.seed, draw.first, n, draw.threshold, draw.keep_scale, mask.data(), draw.first_offset);
    out = map(x, mask, fn::Mul{});
  }
  return record(out, "dropout", {&x}, [mask](const Tensor<T, D>& g) {
    return std::vector<Tensor<T, D>>{map(g, mask, fn::Mul{})};
  });
}

// add_dropout(residual, x, p, training, generator) = residual + dropout(x, p, training, generator),
// a residual connection: the same draws and bits; on CUDA, for contiguous operands of one shape in
// training, one kernel forward (cuda::dropout_add) instead of two. The backward is dropout's for x
// and the identity for the residual.
template <class T, class D>
Tensor<T, D> add_dropout(const Tensor<T, D>& residual, const Tensor<T, D>& x, double p, bool training,
                         Generator& gen = default_generator()) {
#if defined(VTS_WITH_CUDA)
  if constexpr (std::is_same_v<D, Cuda>) {
    VTS_CHECK(p >= 0.0 && p < 1.0, "add_dropout: probability must be in [0, 1), got ", p);
    if (training && p > 0.0 && x.is_contiguous() && residual.is_contiguous() && residual.shape() == x.shape()) {
      const int64_t n = x.numel();
      const auto draw = detail::draw_dropout<T, D>(p, n, gen);
      const float scale = static_cast<float>(draw.keep_scale);
      Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
      cuda::dropout_add(D{}, draw.seed, draw.first, n, draw.threshold, scale, x.data(), residual.data(), y.data(),
                        draw.first_offset);
      return record(y, "add_dropout", {&residual, &x}, [draw, scale, n](const Tensor<T, D>& g) {
        const Tensor<T, D> gc = g.contiguous_nograd();
        Tensor<T, D> dx = Tensor<T, D>::empty(g.shape());
        cuda::dropout_apply(D{}, draw.seed, draw.first, n, draw.threshold, scale, gc.data(), dx.data(),
                            draw.first_offset);
        return std::vector<Tensor<T, D>>{g, dx};
      });
    }
  }
#endif
  return residual + dropout(x, p, training, gen);
}

// gelu_dropout(x, p, training, generator) = dropout(gelu(x), p, training, generator): the same
// draws from the generator and the same result bits. On CUDA, for a contiguous x in training, one
// kernel each way (cuda::gelu_dropout_forward/backward) instead of two: the hidden activation of a
// ViT MLP (B·N × 4·dim) is read and written once less in each direction. Saves x.
template <class T, class D>
Tensor<T, D> gelu_dropout(const Tensor<T, D>& x, double p, bool training, Generator& gen = default_generator()) {
#if defined(VTS_WITH_CUDA)
  if constexpr (std::is_same_v<D, Cuda>) {
    VTS_CHECK(p >= 0.0 && p < 1.0, "gelu_dropout: probability must be in [0, 1), got ", p);
    if (training && p > 0.0 && x.is_contiguous()) {
      const int64_t n = x.numel();
      const auto draw = detail::draw_dropout<T, D>(p, n, gen);
      const cuda::DropoutDraw d{draw.seed, draw.first, draw.threshold, static_cast<float>(draw.keep_scale),
                                draw.first_offset};
      Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
      if (cuda::gelu_dropout_keep_mask()) {  // the mask kept as bits for the backward (activation.hpp)
        auto keep = std::make_shared<cuda::DeviceBuffer>(static_cast<size_t>((n + 3) / 4));
        cuda::gelu_dropout_forward_keep(D{}, x.data(), y.data(), n, d, keep->template as<uint8_t>());
        const float scale = d.keep_scale;
        return record(y, "gelu_dropout", {&x}, [xd = Saved(x), keep, scale, n](const Tensor<T, D>& g) {
          const Tensor<T, D> gc = g.contiguous_nograd();
          Tensor<T, D> dx = Tensor<T, D>::empty(g.shape());
          cuda::gelu_dropout_backward_kept(D{}, xd.get().data(), gc.data(), dx.data(), n, keep->template as<uint8_t>(),
                                           scale);
          return std::vector<Tensor<T, D>>{dx};
        });
      }
      cuda::gelu_dropout_forward(D{}, x.data(), y.data(), n, d);
      return record(y, "gelu_dropout", {&x}, [xd = Saved(x), d, n](const Tensor<T, D>& g) {
        const Tensor<T, D> gc = g.contiguous_nograd();
        Tensor<T, D> dx = Tensor<T, D>::empty(g.shape());
        cuda::gelu_dropout_backward(D{}, xd.get().data(), gc.data(), dx.data(), n, d);
        return std::vector<Tensor<T, D>>{dx};
      });
    }
  }
#endif
  return dropout(gelu(x), p, training, gen);
}

}  // namespace vts
