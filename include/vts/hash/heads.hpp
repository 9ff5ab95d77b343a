#pragma once
// Hash heads on top of the backbone's final-LayerNorm tokens [B, N, dim] (hashing-spec §7.1).
//   AllTokenHead<Hidden>: flatten all N tokens (token-major) → dropout 0.5 → Linear(N·dim → Hidden)
//     → ReLU → Linear(Hidden → bits). The paper's default head.
//   ClsTokenHead: Linear(dim → bits) on token 0 (the Table 3 ablation).
//   ClassifierHead: Linear(dim → classes) on token 0, for pretraining the backbone (paper §2.3).
// Initialisation follows the reference code: the first head layer is Kaiming-uniform in fan-out
// mode (gain √2) with a N(0, 1) bias; the last layer of the all-token head keeps the PyTorch
// Linear default.
#include <string>

#include "vts/nn/layers.hpp"

namespace vts::hash {

namespace detail {
template <class T, class D>
void reference_head_init(nn::Linear<T, D>& layer, Generator& gen) {
  NoGradGuard guard;
  nn::init::kaiming_uniform_(layer.weight, std::sqrt(2.0), nn::init::FanMode::fan_out, gen);
  nn::init::normal_(layer.bias, 0.0, 1.0, gen);
}
// The code length, checked before the head's last layer is sized by it: 0 bits would make a
// [out, 0] layer and empty codes without a word, a negative count a shape error about [-1, n].
inline int64_t positive_bits(int64_t bits) {
  VTS_CHECK(bits > 0, "hash head: the code length (bits) must be positive, got ", bits);
  return bits;
}
}  // namespace detail

template <int64_t Hidden = 1024, class T = float, class D = Cpu>
struct AllTokenHead {
  static_assert(Hidden > 0, "AllTokenHead: the hidden width must be positive");
  using tensor_type = Tensor<T, D>;
  static constexpr const char* name = "all";
  nn::Linear<T, D> fc1, fc2;
  double dropout_p = 0.5;

  AllTokenHead() = default;
  AllTokenHead(int64_t tokens, int64_t dim, int64_t bits, Generator& gen)
      : fc1(tokens * dim, Hidden, gen), fc2(Hidden, detail::positive_bits(bits), gen) {
    detail::reference_head_init(fc1, gen);
  }
  int64_t bits() const { return fc2.out_features(); }
  tensor_type forward(const tensor_type& tokens, nn::Context& ctx) const {
    tensor_type flat = tokens.reshape(Shape{tokens.size(0), -1});
    return fc2.forward(relu(fc1.forward(dropout(flat, dropout_p, ctx.training, *ctx.rng))));
  }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    fc1.visit(nn::join(prefix, "fc1"), f);
    fc2.visit(nn::join(prefix, "fc2"), f);
  }
};

template <class T = float, class D = Cpu>
struct ClsTokenHead {
  using tensor_type = Tensor<T, D>;
  static constexpr const char* name = "cls";
  nn::Linear<T, D> fc;

  ClsTokenHead() = default;
  ClsTokenHead(int64_t /*tokens*/, int64_t dim, int64_t bits, Generator& gen)
      : fc(dim, detail::positive_bits(bits), gen) {
    detail::reference_head_init(fc, gen);
  }
  int64_t bits() const { return fc.out_features(); }
  tensor_type forward(const tensor_type& tokens, nn::Context&) const { return fc.forward(tokens.select(1, 0)); }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    fc.visit(nn::join(prefix, "fc"), f);
  }
};

template <class T = float, class D = Cpu>
struct ClassifierHead {
  using tensor_type = Tensor<T, D>;
  nn::Linear<T, D> fc;

  ClassifierHead() = default;
  ClassifierHead(int64_t dim, int64_t classes, Generator& gen) : fc(dim, classes, gen) {}
  tensor_type forward(const tensor_type& tokens) const { return fc.forward(tokens.select(1, 0)); }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    fc.visit(nn::join(prefix, "fc"), f);
  }
};

// Backbone + hash head: images → raw outputs u [B, bits]; codes are sign(u).
template <class Backbone, class Head>
struct HashNetwork {
  using tensor_type = typename Backbone::tensor_type;
  Backbone backbone;
  Head head;

  HashNetwork() = default;
  HashNetwork(int64_t bits, Generator& gen)
      : backbone(gen), head(Backbone::tokens, Backbone::dim, bits, gen) {}
  tensor_type forward(const tensor_type& images, nn::Context& ctx) const {
    return head.forward(backbone.forward(images, ctx), ctx);
  }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    backbone.visit(nn::join(prefix, "backbone"), f);
    head.visit(nn::join(prefix, "hash_head"), f);
  }
};

}  // namespace vts::hash
