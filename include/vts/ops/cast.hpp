#pragma once
// cast<U>(x): the same values as element type U (float <-> double, float <-> bf16), differentiable.
// The use it exists for is mixed precision: a bf16 network whose output goes to a loss computed in
// fp32, `loss(cast<float>(net.forward(x)), y)`.
//
// The autograd graph is typed (Tensor<T, D> nodes hold Tensor<T, D> inputs), so a cast cannot be
// an ordinary edge. Instead the cast's output is a node with no inputs whose backward converts the
// incoming gradient back to T and runs the backward pass of x's own graph from x with that seed.
// The gradient therefore reaches x's graph exactly once, when the U-graph's pass gets to the cast.
// Consequence: two casts of the same x (or of values sharing a graph) in one loss cannot both be
// back-propagated; the second finds x's graph already freed and reports it. Cast once and reuse
// the result instead.
#include <type_traits>
#include <vector>

#include "vts/backend/cpu/elementwise.hpp"
#include "vts/core/tensor.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/elementwise.hpp"
#endif

namespace vts {

template <class U, class T, class D>
Tensor<U, D> cast(const Tensor<T, D>& x) {
  if constexpr (std::is_same_v<U, T>) {
    return x;
  } else {
    const Tensor<T, D> xc = x.contiguous_nograd();
    Tensor<U, D> out = Tensor<U, D>::empty(x.shape());
    convert(D{}, xc.data(), out.data(), x.numel());
    if (grad_enabled() && x.requires_grad()) {
      auto node = std::make_shared<Node<U, D>>();
      node->name = "cast";
      node->backward = [source = x](const Tensor<U, D>& g) {
        source.backward(cast<T>(g));
        return std::vector<Tensor<U, D>>{};
      };
      out.impl()->requires_grad = true;
      out.impl()->grad_fn = std::move(node);
    }
    return out;
  }
}

}  // namespace vts
