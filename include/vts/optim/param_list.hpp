#pragma once
// ParamList: the tensors an optimizer updates. Each entry is a leaf tensor (a parameter, not the
// result of an op) with contiguous storage, so an update is one flat loop over its elements.
// Order matters: it is the index under which the optimizer files each parameter's state, so a
// checkpoint only restores correctly into a list built in the same order.
#include <cstddef>
#include <initializer_list>
#include <unordered_set>
#include <vector>

#include "vts/core/tensor.hpp"

namespace vts::optim {

template <class T, class D = Cpu>
class ParamList {
 public:
  using tensor_type = Tensor<T, D>;

  ParamList() = default;
  ParamList(std::vector<tensor_type> params) {  // NOLINT: implicit on purpose (models hand out vectors)
    for (auto& p : params) add(p);
  }
  ParamList(std::initializer_list<tensor_type> params) {
    for (const auto& p : params) add(p);
  }

  // Appends a parameter. Rejects what an in-place update cannot handle correctly: op results
  // (their values are recomputed every forward pass) and strided views (the update loop is flat).
  // A tensor already in the list is kept once, where it first came: tied weights (one tensor used
  // by two layers, so a model's visit() names it twice) take one step a step() with the gradient
  // of both uses, as PyTorch's parameters(), which yields each tensor once, gives them.
  void add(const tensor_type& p) {
    VTS_CHECK(p.defined(), "ParamList: parameter ", params_.size(), " is an undefined tensor");
    VTS_CHECK(p.is_leaf(), "ParamList: parameter ", params_.size(), " with shape ", p.shape().str(),
              " is the output of an op, not a leaf; optimizers update leaves only");
    VTS_CHECK(p.is_contiguous(), "ParamList: parameter ", params_.size(), " with shape ", p.shape().str(),
              " is not contiguous; optimizers update whole contiguous tensors");
    if (seen_.insert(p.impl()).second) params_.push_back(p);
  }
  void add(const ParamList& other) {
    for (const auto& p : other) add(p);
  }

  size_t size() const { return params_.size(); }
  bool empty() const { return params_.empty(); }
  const tensor_type& operator[](size_t i) const { return params_[i]; }
  auto begin() const { return params_.begin(); }
  auto end() const { return params_.end(); }
  const std::vector<tensor_type>& tensors() const { return params_; }

  // Total number of scalars across all parameters.
  int64_t numel() const {
    int64_t n = 0;
    for (const auto& p : params_) n += p.numel();
    return n;
  }

  // Drops every accumulated gradient. Dropping (rather than filling with zeros) is what
  // PyTorch ≥ 2.0 does by default and what lets step() skip parameters that took no part in the
  // last backward pass; the next backward assigns a fresh gradient instead of adding into one.
  void zero_grad() const {
    for (tensor_type p : params_) p.zero_grad();  // a copied handle still reaches the shared grad slot
  }

  // Calls f(index, parameter, gradient) for each parameter whose gradient is defined; the
  // gradient is handed over contiguous (copied only if the engine left a strided one).
  template <class F>
  void for_each_with_grad(F&& f) const {
    for (size_t i = 0; i < params_.size(); ++i) {
      Tensor<T, D> g = params_[i].grad();
      if (!g.defined()) continue;
      VTS_CHECK_SHAPE(g.shape() == params_[i].shape(), "ParamList: gradient of parameter ", i, " has shape ",
                      g.shape().str(), " but the parameter has shape ", params_[i].shape().str());
      f(i, params_[i], g.contiguous_nograd());
    }
  }

 private:
  std::vector<tensor_type> params_;
  std::unordered_set<const void*> seen_;
};

}  // namespace vts::optim
