#pragma once
// The transformer's layers, each a struct of parameters with forward() and visit().
//   Linear        y = x·Wᵀ + b                          W [out, in], b [out]
//   LayerNorm     over the last axis, eps per layer      weight, bias [dim]
//   Mlp           fc1 → erf-GELU → dropout → fc2 → dropout
//   SelfAttention one packed q|k|v projection, fused attention, output projection
//   EncoderBlock  pre-norm: h = x + attn(norm1(x)), then h + mlp(norm2(h))
//   Repeat<N, B>  N blocks of the same type, applied in order
#include <array>
#include <string>
#include <type_traits>
#include <utility>

#include "vts/nn/init.hpp"
#include "vts/nn/module.hpp"
#include "vts/ops/attention.hpp"
#include "vts/ops/dropout.hpp"
#include "vts/ops/elementwise.hpp"
#include "vts/ops/layer_norm.hpp"
#include "vts/ops/matmul.hpp"

namespace vts::nn {

template <class T = float, class D = Cpu>
struct Linear {
  using tensor_type = Tensor<T, D>;
  tensor_type weight, bias;

  Linear() = default;
  Linear(int64_t in, int64_t out, Generator& gen, bool with_bias = true)
      : weight(tensor_type::empty(Shape{out, in})), bias(with_bias ? tensor_type::empty(Shape{out}) : tensor_type()) {
    init::linear_(weight, bias, gen);
    weight.requires_grad_();
    if (bias.defined()) bias.requires_grad_();
  }
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
  tensor_type forward(const tensor_type& x) const { return linear(x, weight, bias); }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    f(join(prefix, "weight"), weight);
    if (bias.defined()) f(join(prefix, "bias"), bias);
  }
};

template <class T = float, class D = Cpu>
struct LayerNorm {
  using tensor_type = Tensor<T, D>;
  tensor_type weight, bias;
  T eps = T(1e-6);

  LayerNorm() = default;
  explicit LayerNorm(int64_t dim, T eps_ = T(1e-6))
      : weight(tensor_type::ones(Shape{dim})), bias(tensor_type::zeros(Shape{dim})), eps(eps_) {
    weight.requires_grad_();
    bias.requires_grad_();
  }
  tensor_type forward(const tensor_type& x) const { return layer_norm(x, weight, bias, eps); }
  // {x + residual, forward(x + residual)} in one pass (add_layer_norm).
  AddLayerNorm<T, D> forward_after_add(const tensor_type& x, const tensor_type& residual) const {
    return add_layer_norm(x, residual, weight, bias, eps);
  }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    f(join(prefix, "weight"), weight);
    f(join(prefix, "bias"), bias);
  }
};

template <class T = float, class D = Cpu>
struct Mlp {
  using tensor_type = Tensor<T, D>;
  Linear<T, D> fc1, fc2;
  double dropout_p = 0.1;

  Mlp() = default;
  Mlp(int64_t dim, int64_t hidden, double dropout_p_, Generator& gen)
      : fc1(dim, hidden, gen), fc2(hidden, dim, gen), dropout_p(dropout_p_) {}
  tensor_type forward(const tensor_type& x, Context& ctx) const {
    tensor_type h = gelu_dropout(fc1.forward(x), dropout_p, ctx.training, *ctx.rng);  // one pass on CUDA
    return dropout(fc2.forward(h), dropout_p, ctx.training, *ctx.rng);
  }
  // residual + forward(x), the closing dropout and the residual add in one pass on CUDA.
  tensor_type forward_add(const tensor_type& residual, const tensor_type& x, Context& ctx) const {
    tensor_type h = gelu_dropout(fc1.forward(x), dropout_p, ctx.training, *ctx.rng);
    return add_dropout(residual, fc2.forward(h), dropout_p, ctx.training, *ctx.rng);
  }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    fc1.visit(join(prefix, "fc1"), f);
    fc2.visit(join(prefix, "fc2"), f);
  }
};

// Multi-head self-attention. Head h owns features [h·d, (h+1)·d) of q, k and v, which one linear
// layer produces side by side ([q | k | v], each dim wide), so the fused kernel reads heads in place.
template <class T = float, class D = Cpu>
struct SelfAttention {
  using tensor_type = Tensor<T, D>;
  Linear<T, D> qkv, proj;
  int64_t heads = 1;

  SelfAttention() = default;
  SelfAttention(int64_t dim, int64_t heads_, Generator& gen) : qkv(dim, 3 * dim, gen), proj(dim, dim, gen), heads(heads_) {
    VTS_CHECK(heads > 0, "attention: heads must be positive, got ", heads);  // before dim % heads
    VTS_CHECK(dim % heads == 0, "attention: dim ", dim, " is not divisible by ", heads, " heads");
  }
  tensor_type forward(const tensor_type& x) const {
    return proj.forward(self_attention_packed(qkv.forward(x), heads));
  }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    qkv.visit(join(prefix, "qkv"), f);
    proj.visit(join(prefix, "proj"), f);
  }
};

template <class T = float, class D = Cpu>
struct EncoderBlock {
  using tensor_type = Tensor<T, D>;
  LayerNorm<T, D> norm1, norm2;
  SelfAttention<T, D> attn;
  Mlp<T, D> mlp;

  EncoderBlock() = default;
  EncoderBlock(int64_t dim, int64_t heads, int64_t mlp_dim, double dropout_p, Generator& gen)
      : norm1(dim), norm2(dim), attn(dim, heads, gen), mlp(dim, mlp_dim, dropout_p, gen) {}
  tensor_type forward(const tensor_type& x, Context& ctx) const {
    // h = x + attn(norm1(x)) and norm2(h) in one pass over the residual stream.
    const auto [h, h_normed] = norm2.forward_after_add(x, attn.forward(norm1.forward(x)));
    return mlp.forward_add(h, h_normed, ctx);
  }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    norm1.visit(join(prefix, "norm1"), f);
    attn.visit(join(prefix, "attn"), f);
    norm2.visit(join(prefix, "norm2"), f);
    mlp.visit(join(prefix, "mlp"), f);
  }
};

// N blocks of one type applied in order; parameters are named prefix.0, prefix.1, ...
template <size_t N, class Block>
struct Repeat {
  using tensor_type = typename Block::tensor_type;
  std::array<Block, N> blocks;

  Repeat() = default;
  // make() returns one block. Constrained so that it is not a better match than the copy
  // constructor for a non-const Repeat (Repeat copy(blocks) would otherwise call blocks()).
  // The blocks are built in place, in order (a braced list evaluates left to right, so the
  // generator draws are those of a loop), and so need no default constructor.
  template <class Make>
    requires std::is_invocable_r_v<Block, Make&>
  explicit Repeat(Make&& make) : blocks(built(make, std::make_index_sequence<N>{})) {}
  template <class... Ctx>
  tensor_type forward(tensor_type x, Ctx&... ctx) const {
    for (const auto& b : blocks) x = b.forward(x, ctx...);
    return x;
  }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    for (size_t i = 0; i < N; ++i) blocks[i].visit(join(prefix, std::to_string(i)), f);
  }
  Block& operator[](size_t i) { return blocks[i]; }
  const Block& operator[](size_t i) const { return blocks[i]; }
  static constexpr size_t size() { return N; }

 private:
  template <class Make, size_t... I>
  static std::array<Block, N> built(Make& make, std::index_sequence<I...>) {
    return {{((void)I, make())...}};
  }
};

}  // namespace vts::nn
