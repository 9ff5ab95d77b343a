#pragma once
// What a backward function may know about its inputs' other gradients. A tensor used twice (the
// residual stream: x feeds a block and the add after it) gets a gradient from each consumer, and
// the engine sums them — one more pass over the tensor, and on a GPU one more launch. While the
// engine runs a node's backward function, pending_grad(i) shows the gradient already waiting for
// input i. A function that can add it into the gradient it computes for that input in the same
// pass (LayerNorm's dx kernel does) calls absorb_pending_grad(i), and the engine then keeps the
// returned gradient as the sum instead of adding the two. The values are those of the separate sum.
#include <algorithm>
#include <memory>
#include <unordered_map>
#include <vector>

#include "vts/core/error.hpp"

// Declared, not included: tensor.hpp includes the engine, which includes this file, so including
// tensor.hpp here first would leave the engine without this file's names when a program's first
// include is this file (or an op header that starts with it). tensor.hpp comes at the end instead.
namespace vts {
template <class T, class D>
class Tensor;
namespace detail {
template <class T, class D>
struct TensorImpl;
}  // namespace detail
}  // namespace vts

namespace vts::detail {

// A gradient tensor nobody else holds may be written in place (or become a leaf's .grad as is);
// otherwise it may alias another op's gradient (add passes its input gradient through).
template <class T, class D>
bool exclusively_owned(const Tensor<T, D>& t) {
  return t.impl_ptr().use_count() == 1 && t.impl()->storage.use_count() == 1 && t.is_contiguous();
}

// The engine's view for the node being run: its inputs and the engine's pending gradients, looked
// up only when a backward function asks; `absorbed` lists the inputs whose gradient it absorbed.
template <class T, class D>
struct PendingInputGrads {
  const std::vector<std::shared_ptr<TensorImpl<T, D>>>* inputs = nullptr;
  std::unordered_map<TensorImpl<T, D>*, Tensor<T, D>>* pending = nullptr;
  std::vector<size_t> absorbed;
};

template <class T, class D>
PendingInputGrads<T, D>*& current_pending_input_grads() {
  thread_local PendingInputGrads<T, D>* current = nullptr;
  return current;
}

// Set by the engine around one backward function call (restores what was there before).
template <class T, class D>
class PendingInputGradsScope {
 public:
  explicit PendingInputGradsScope(PendingInputGrads<T, D>* p) : previous_(current_pending_input_grads<T, D>()) {
    current_pending_input_grads<T, D>() = p;
  }
  ~PendingInputGradsScope() { current_pending_input_grads<T, D>() = previous_; }
  PendingInputGradsScope(const PendingInputGradsScope&) = delete;
  PendingInputGradsScope& operator=(const PendingInputGradsScope&) = delete;

 private:
  PendingInputGrads<T, D>* previous_;
};

// Inside a backward function: the gradient already waiting for input i, or nullptr (none, or not
// called by the engine). It belongs to the engine; write into it only if exclusively_owned.
template <class T, class D>
Tensor<T, D>* pending_grad(size_t i) {
  const PendingInputGrads<T, D>* p = current_pending_input_grads<T, D>();
  if (p == nullptr || i >= p->inputs->size() || !(*p->inputs)[i]) return nullptr;
  const auto it = p->pending->find((*p->inputs)[i].get());
  return it == p->pending->end() ? nullptr : &it->second;
}

// Inside a backward function: the gradient it returns for input i includes pending_grad(i).
template <class T, class D>
void absorb_pending_grad(size_t i) {
  const bool waiting = pending_grad<T, D>(i) != nullptr;
  VTS_CHECK(waiting, "absorb_pending_grad: input ", i, " has no pending gradient to absorb");
  current_pending_input_grads<T, D>()->absorbed.push_back(i);
}

}  // namespace vts::detail

#include "vts/core/tensor.hpp"  // last: see the declarations at the top
