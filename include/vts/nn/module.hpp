#pragma once
// What every layer shares: the forward context and parameter visiting.
//
// A layer is a plain struct holding its parameters as tensors. It provides
//   forward(x, ctx)                  — the computation (training flag and dropout RNG in ctx)
//   visit(prefix, f)                 — calls f(name, tensor&) for each parameter, names joined
//                                      with '.', in a fixed order (optimizers, checkpoints)
// Layers compose as members or through templates (Repeat<N, Block>, ViT<Config>); there is no
// base class and no virtual call.
#include <string>

#include "vts/core/rng.hpp"
#include "vts/core/tensor.hpp"

namespace vts::nn {

struct Context {
  bool training = false;
  // Dropout masks. The default generator is shared by every thread: a thread that trains beside
  // others and should give the same bits as alone needs a Generator of its own here.
  Generator* rng = &default_generator();
};

inline std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// Collects a layer's parameters (for optimizers).
template <class Layer>
auto parameters(Layer& layer) {
  using TensorType = typename Layer::tensor_type;
  std::vector<TensorType> out;
  layer.visit("", [&](const std::string&, TensorType& t) { out.push_back(t); });
  return out;
}

template <class Layer>
auto named_parameters(Layer& layer) {
  using TensorType = typename Layer::tensor_type;
  std::vector<std::pair<std::string, TensorType>> out;
  layer.visit("", [&](const std::string& name, TensorType& t) { out.emplace_back(name, t); });
  return out;
}

template <class Layer>
int64_t parameter_count(Layer& layer) {
  int64_t n = 0;
  for (auto& p : parameters(layer)) n += p.numel();
  return n;
}

}  // namespace vts::nn
