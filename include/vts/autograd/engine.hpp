#pragma once
// The reverse pass: order the recorded graph topologically from the root, push gradients from
// each node to its inputs (consumers before producers), accumulate into leaves, then free the
// graph's saved state so a finished step holds no activations.
#include <algorithm>
#include <unordered_map>
#include <string>
#include <unordered_set>
#include <vector>

#include "vts/autograd/pending.hpp"
#include "vts/core/tensor.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/elementwise.hpp"  // accumulate
#endif

namespace vts {

namespace detail {

template <class T, class D>
Tensor<T, D> add_same_shape(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  Tensor<T, D> ac = a.contiguous_nograd();
  Tensor<T, D> out = ac.clone_nograd();
  Tensor<T, D> bc = b.contiguous_nograd();
  accumulate(D{}, out.data(), bc.data(), out.numel());
  return out;
}

template <class T, class D>
void accumulate_leaf(TensorImpl<T, D>& leaf, Tensor<T, D> g) {
  if (!leaf.grad) {
    if (!exclusively_owned(g) || g.offset() != 0 || g.shape() != leaf.shape) g = g.clone_nograd();
    leaf.grad = g.impl_ptr();
    return;
  }
  Tensor<T, D> acc(leaf.grad);
  Tensor<T, D> gc = g.contiguous_nograd();
  accumulate(D{}, acc.data(), gc.data(), acc.numel());
}

template <class T, class D>
void run_backward(const Tensor<T, D>& root, const Tensor<T, D>& seed) {
  using ImplPtr = TensorImpl<T, D>*;
  VTS_CHECK(root.requires_grad(), "backward(): the tensor does not require grad (no parameter or input with "
                                  "requires_grad took part in computing it, or it was computed under NoGradGuard)");
  VTS_CHECK_SHAPE(seed.shape() == root.shape(), "backward(): seed gradient has shape ", seed.shape().str(),
                  " but the tensor has shape ", root.shape().str());

  // Iterative depth-first post-order; reversed, it visits every tensor after all its consumers.
  std::vector<ImplPtr> order;
  std::unordered_set<ImplPtr> visited;
  std::vector<std::pair<ImplPtr, size_t>> stack{{root.impl(), 0}};
  visited.insert(root.impl());
  while (!stack.empty()) {
    auto& [impl, next_input] = stack.back();
    const auto& fn = impl->grad_fn;
    if (fn && fn->released)
      throw Error(std::string("backward(): the graph through '") + fn->name +
                  "' was already freed by an earlier backward pass; recompute the forward pass");
    if (fn && next_input < fn->inputs.size()) {
      ImplPtr child = fn->inputs[next_input++].get();
      if (child && visited.insert(child).second) stack.push_back({child, 0});
      continue;
    }
    order.push_back(impl);
    stack.pop_back();
  }

  NoGradGuard no_grad;
  std::unordered_map<ImplPtr, Tensor<T, D>> pending;
  pending.emplace(root.impl(), seed);
  PendingInputGrads<T, D> waiting;
  waiting.pending = &pending;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    ImplPtr impl = *it;
    auto found = pending.find(impl);
    if (found == pending.end()) continue;
    Tensor<T, D> g = std::move(found->second);
    pending.erase(found);
    auto& fn = impl->grad_fn;
    if (!fn) {
      // Moved, so a freshly computed gradient (a GEMM's dW) is adopted without a copy.
      accumulate_leaf(*impl, std::move(g));
      continue;
    }
    if (impl->retains_grad) accumulate_leaf(*impl, g);  // g still feeds fn below: it is copied
    // fn may add the gradients already waiting for its inputs into its own (pending.hpp); they are
    // looked up only if it asks.
    waiting.inputs = &fn->inputs;
    waiting.absorbed.clear();
    std::vector<Tensor<T, D>> input_grads;
    {
      const PendingInputGradsScope<T, D> scope(&waiting);
      try {
        input_grads = fn->backward(g);
      } catch (const ModifiedSavedTensorError& e) {  // Saved::get knows the tensor, not the op
        throw ModifiedSavedTensorError(std::string("backward of '") + fn->name + "': " + e.what());
      }
    }
    VTS_CHECK(input_grads.size() == fn->inputs.size(), "backward of '", fn->name, "' returned ",
              input_grads.size(), " gradients for ", fn->inputs.size(), " inputs");
    for (size_t i = 0; i < input_grads.size(); ++i) {
      const auto& input = fn->inputs[i];
      Tensor<T, D>& gi = input_grads[i];
      if (!input || !gi.defined()) continue;
      VTS_CHECK_SHAPE(gi.shape() == input->shape, "backward of '", fn->name, "': gradient for input ", i,
                      " has shape ", gi.shape().str(), " but the input has shape ", input->shape.str());
      if (std::find(waiting.absorbed.begin(), waiting.absorbed.end(), i) != waiting.absorbed.end()) {  // the sum
        pending.at(input.get()) = gi;
        continue;
      }
      auto [slot, inserted] = pending.try_emplace(input.get(), gi);
      if (inserted) continue;
      // A second gradient for the same tensor (a residual stream: x feeds a block and the add after
      // it). Summed into the pending buffer when nothing else holds it; `add` hands one g to both
      // of its inputs, so the buffer is often shared, and then the sum goes to a fresh one.
      if (exclusively_owned(slot->second)) {
        const Tensor<T, D> gc = gi.contiguous_nograd();
        accumulate(D{}, slot->second.data(), gc.data(), gc.numel());
      } else {
        slot->second = add_same_shape(slot->second, gi);
      }
    }
  }
  // Free saved activations and the edges; the nodes stay as tombstones so a second backward
  // through them reports the misuse instead of silently computing nothing.
  for (ImplPtr impl : order) {
    if (auto& fn = impl->grad_fn) {
      fn->backward = nullptr;
      fn->inputs.clear();
      fn->released = true;
    }
  }
}

}  // namespace detail

template <class T, class D>
void Tensor<T, D>::backward() const {
  VTS_CHECK_SHAPE(numel() == 1, "backward() without a seed gradient needs a one-element tensor, found shape ",
                  shape().str(), "; pass the seed: backward(grad_of_this)");
  detail::run_backward(*this, Tensor::ones(shape()));
}

template <class T, class D>
void Tensor<T, D>::backward(const Tensor& seed) const {
  detail::run_backward(*this, seed);
}

}  // namespace vts
