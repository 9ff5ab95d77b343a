// Every op of docs/ops.md, one at a time, through the op layer on the device against the same op on
// the CPU: the output, then — seeded with the same random output gradient — every input's
// gradient. The kernel tests check the kernels and the training-step tests a whole composition;
// this is what lets docs/ops.md fill in an op's CUDA columns. Inputs are fresh random values in a
// range where the op is smooth (positive for log, sqrt and fractional powers; away from zero for
// divisors), so kinks are hit with probability zero. Tolerance 1e-5 relative (GEMMs with TF32 off);
// the view ops and sign/relu/max selections must agree exactly in value.
#include <cmath>
#include <vector>

#include "cuda_test_util.hpp"
#include "vts/backend/cuda/gemm.hpp"
#include "vts/ops/attention.hpp"
#include "vts/ops/cast.hpp"
#include "vts/ops/dropout.hpp"
#include "vts/ops/elementwise.hpp"
#include "vts/ops/indexing.hpp"
#include "vts/ops/layer_norm.hpp"
#include "vts/backend/cuda/profile.hpp"
#include "vts/backend/cuda/runtime.hpp"
#include "vts/ops/matmul.hpp"
#include "vts/ops/reduce.hpp"
#include "vts/ops/softmax.hpp"

using namespace vts;
using namespace vts::cuda::test;

namespace {

// One input of an op: its shape, the range its values are drawn from, and whether the op's
// gradient with respect to it is checked.
struct Input {
  Shape shape;
  float lo = -2.0f, hi = 2.0f;
  bool grad = true;
};

template <class D>
std::vector<Tensor<float, D>> make_inputs(const std::vector<Input>& specs, const std::vector<std::vector<float>>& values) {
  std::vector<Tensor<float, D>> xs;
  for (size_t i = 0; i < specs.size(); ++i) {
    auto t = Tensor<float, D>::from_vector(values[i], specs[i].shape);
    if (specs[i].grad) t.requires_grad_();
    xs.push_back(t);
  }
  return xs;
}

// Runs op (a generic callable taking the input vector) on the CPU and on device G from the same
// values and compares output and gradients.
template <class G, class Op>
void check_op(const char* name, Rng& rng, const std::vector<Input>& specs, Op op, double tol = 1e-5) {
  INFO("op " << name);
  std::vector<std::vector<float>> values;
  for (const Input& s : specs) values.push_back(rng.uniform(static_cast<size_t>(s.shape.numel()), s.lo, s.hi));
  auto xs_ref = make_inputs<Cpu>(specs, values);
  auto xs_dev = make_inputs<G>(specs, values);
  const Tensor<float, Cpu> y_ref = op(xs_ref);
  const Tensor<float, G> y_dev = op(xs_dev);
  REQUIRE(y_dev.shape() == y_ref.shape());
  CHECK(rel_err(y_dev.to_vector(), y_ref.to_vector()) <= tol);
  if (!y_ref.requires_grad()) return;
  REQUIRE(y_dev.requires_grad());
  const auto seed = rng.normal(static_cast<size_t>(y_ref.numel()));
  y_ref.backward(Tensor<float, Cpu>::from_vector(seed, y_ref.shape()));
  y_dev.backward(Tensor<float, G>::from_vector(seed, y_dev.shape()));
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!specs[i].grad) continue;
    INFO("gradient of input " << i);
    REQUIRE(xs_ref[i].grad().defined());
    REQUIRE(xs_dev[i].grad().defined());
    CHECK(rel_err(xs_dev[i].grad().to_vector(), xs_ref[i].grad().to_vector()) <= tol);
  }
}

template <class G>
void check_elementwise_ops(Rng& rng) {
  const Shape s{6, 5, 7};
  const Input x{s}, pos{s, 0.2f, 3.0f}, away{s, 0.5f, 2.0f};
  // Broadcasting: b is [5, 1] against a's [6, 5, 7].
  const Input row{Shape{5, 1}};
  check_op<G>("add", rng, {x, row}, [](const auto& v) { return add(v[0], v[1]); });
  check_op<G>("a + b (same shape)", rng, {x, x}, [](const auto& v) { return v[0] + v[1]; });
  check_op<G>("sub", rng, {x, row}, [](const auto& v) { return sub(v[0], v[1]); });
  check_op<G>("mul", rng, {x, row}, [](const auto& v) { return mul(v[0], v[1]); });
  check_op<G>("div", rng, {x, Input{Shape{5, 1}, 0.5f, 2.0f}}, [](const auto& v) { return div(v[0], v[1]); });
  check_op<G>("maximum", rng, {x, x}, [](const auto& v) { return maximum(v[0], v[1]); });
  check_op<G>("add scalar, sub scalar", rng, {x}, [](const auto& v) { return (v[0] + 0.75f) - 0.25f; });
  check_op<G>("mul scalar, div scalar", rng, {x}, [](const auto& v) { return (v[0] * 1.5f) / 3.0f; });
  check_op<G>("rsub", rng, {x}, [](const auto& v) { return rsub(v[0], 2.0f); });
  check_op<G>("rdiv", rng, {away}, [](const auto& v) { return rdiv(v[0], 2.0f); });
  check_op<G>("pow 3", rng, {x}, [](const auto& v) { return pow(v[0], 3.0f); });
  check_op<G>("pow 0.5", rng, {pos}, [](const auto& v) { return pow(v[0], 0.5f); });
  check_op<G>("neg", rng, {x}, [](const auto& v) { return -v[0]; });
  check_op<G>("exp", rng, {x}, [](const auto& v) { return exp(v[0]); });
  check_op<G>("log", rng, {pos}, [](const auto& v) { return log(v[0]); });
  check_op<G>("sqrt", rng, {pos}, [](const auto& v) { return sqrt(v[0]); });
  check_op<G>("abs", rng, {x}, [](const auto& v) { return abs(v[0]); });
  check_op<G>("sign", rng, {x}, [](const auto& v) { return sign(v[0]); }, 0.0);
  check_op<G>("sign_ste", rng, {x}, [](const auto& v) { return sign_ste(v[0]); });
  check_op<G>("tanh", rng, {x}, [](const auto& v) { return tanh(v[0]); });
  check_op<G>("sigmoid", rng, {x}, [](const auto& v) { return sigmoid(v[0]); });
  check_op<G>("softplus", rng, {x}, [](const auto& v) { return softplus(v[0]); });
  check_op<G>("relu", rng, {x}, [](const auto& v) { return relu(v[0]); });
  check_op<G>("gelu", rng, {x}, [](const auto& v) { return gelu(v[0]); });
  check_op<G>("softsign", rng, {x}, [](const auto& v) { return softsign(v[0]); });
  check_op<G>("clamp", rng, {x}, [](const auto& v) { return clamp(v[0], -0.5f, 1.0f); });
  check_op<G>("clamp_min", rng, {x}, [](const auto& v) { return clamp_min(v[0], 0.25f); });
  // Through bf16 and back: both roundings are exact operations, so the values agree exactly.
  check_op<G>("cast bf16 -> float", rng, {x}, [](const auto& v) { return cast<float>(cast<bf16>(v[0])); }, 0.0);
}

template <class G>
void check_reductions_and_views(Rng& rng) {
  const Input x{Shape{4, 6, 5}};
  check_op<G>("sum axes {1} keepdim", rng, {x}, [](const auto& v) { return sum(v[0], {1}, true); });
  check_op<G>("sum axes {0, 2}", rng, {x}, [](const auto& v) { return sum(v[0], {0, 2}); });
  // The whole-tensor reductions draw positive inputs: a sum of ±2 values that happens to land
  // near zero measures the two summation orders' rounding, not the op (it failed one run in ~15).
  const Input positive{x.shape, 0.5f, 2.0f};
  check_op<G>("sum all", rng, {positive}, [](const auto& v) { return sum(v[0]); });
  check_op<G>("mean axes {2}", rng, {x}, [](const auto& v) { return mean(v[0], {2}); });
  check_op<G>("mean all", rng, {positive}, [](const auto& v) { return mean(v[0]); });
  check_op<G>("max axis 1", rng, {x}, [](const auto& v) { return max(v[0], 1); });
  check_op<G>("max axis -1 keepdim", rng, {x}, [](const auto& v) { return max(v[0], -1, true); });
  check_op<G>("max all", rng, {x}, [](const auto& v) { return max(v[0]); });
  // Views, each made contiguous by a multiply so the device's strided reads are exercised.
  check_op<G>("reshape", rng, {x}, [](const auto& v) { return v[0].reshape(Shape{6, 20}) * 2.0f; }, 0.0);
  check_op<G>("flatten", rng, {x}, [](const auto& v) { return v[0].flatten(1) * 2.0f; }, 0.0);
  check_op<G>("permute", rng, {x}, [](const auto& v) { return v[0].permute({2, 0, 1}) * 2.0f; }, 0.0);
  check_op<G>("transpose", rng, {x}, [](const auto& v) { return v[0].transpose(0, 2) * 2.0f; }, 0.0);
  check_op<G>("t", rng, {x}, [](const auto& v) { return v[0].t() * 2.0f; }, 0.0);
  check_op<G>("slice with step", rng, {x}, [](const auto& v) { return v[0].slice(1, 1, 6, 2) * 2.0f; }, 0.0);
  check_op<G>("select", rng, {x}, [](const auto& v) { return v[0].select(2, 3) * 2.0f; }, 0.0);
  check_op<G>("expand", rng, {Input{Shape{4, 1, 5}}},
              [](const auto& v) { return v[0].expand(Shape{4, 3, 5}) * 2.0f; }, 0.0);
  check_op<G>("unsqueeze", rng, {x}, [](const auto& v) { return v[0].unsqueeze(1) * 2.0f; }, 0.0);
  check_op<G>("squeeze", rng, {Input{Shape{4, 1, 5}}}, [](const auto& v) { return v[0].squeeze(1) * 2.0f; }, 0.0);
  check_op<G>("contiguous of a transpose", rng, {x}, [](const auto& v) { return v[0].transpose(0, 1).contiguous(); },
              0.0);
}

template <class G>
void check_layer_ops(Rng& rng) {
  check_op<G>("matmul [3, 7, 9] x [9, 5]", rng, {Input{Shape{3, 7, 9}}, Input{Shape{9, 5}}},
              [](const auto& v) { return matmul(v[0], v[1]); });
  check_op<G>("matmul batched [2, 3, 7, 9] x [2, 3, 9, 5]", rng,
              {Input{Shape{2, 3, 7, 9}}, Input{Shape{2, 3, 9, 5}}}, [](const auto& v) { return matmul(v[0], v[1]); });
  check_op<G>("linear with bias", rng, {Input{Shape{4, 6, 12}}, Input{Shape{8, 12}}, Input{Shape{8}}},
              [](const auto& v) { return linear(v[0], v[1], v[2]); });
  check_op<G>("softmax", rng, {Input{Shape{5, 9}, -4.0f, 4.0f}}, [](const auto& v) { return softmax(v[0], -1); });
  check_op<G>("softmax axis 0", rng, {Input{Shape{5, 9}, -4.0f, 4.0f}}, [](const auto& v) { return softmax(v[0], 0); });
  check_op<G>("log_softmax", rng, {Input{Shape{5, 9}, -4.0f, 4.0f}},
              [](const auto& v) { return log_softmax(v[0], -1); });
  check_op<G>("cross_entropy", rng, {Input{Shape{6, 10}, -3.0f, 3.0f}},
              [](const auto& v) { return cross_entropy(v[0], std::vector<int64_t>{3, 0, 9, 3, 5, 1}); });
  check_op<G>("binary_cross_entropy", rng, {Input{Shape{6, 8}, 0.05f, 0.95f}, Input{Shape{6, 8}, 0.0f, 1.0f, false}},
              [](const auto& v) { return binary_cross_entropy(v[0], v[1]); });
  check_op<G>("csq_loss", rng, {Input{Shape{6, 16}, -4.0f, 4.0f}, Input{Shape{6, 16}, -1.0f, 1.0f, false}},
              [](const auto& v) { return csq_loss(v[0], v[1], 0.3f); });
  check_op<G>("layer_norm", rng, {Input{Shape{3, 7, 64}}, Input{Shape{64}}, Input{Shape{64}}},
              [](const auto& v) { return layer_norm(v[0], v[1], v[2], 1e-6f); });
  // Both outputs feed the checked value, so the gradient through the sum and through the norm meet.
  check_op<G>("add_layer_norm", rng,
              {Input{Shape{3, 7, 64}}, Input{Shape{3, 7, 64}}, Input{Shape{64}}, Input{Shape{64}}},
              [](const auto& v) {
                const auto r = add_layer_norm(v[0], v[1], v[2], v[3], 1e-6f);
                return r.normed * 2.0f + r.sum * r.sum;
              });
  // x used twice, the residual stream: LayerNorm's backward adds the gradient waiting for x into
  // its dx (autograd/pending.hpp) — out of place when the waiting buffer is the one it was handed
  // (add passes g through), in place behind a linear layer, whose backward has let go of it.
  check_op<G>("x + layer_norm(x)", rng, {Input{Shape{3, 7, 64}}, Input{Shape{64}}, Input{Shape{64}}},
              [](const auto& v) { return v[0] + layer_norm(v[0], v[1], v[2], 1e-6f); });
  check_op<G>("x + linear(layer_norm(x)), twice", rng,
              {Input{Shape{3, 7, 64}}, Input{Shape{64}}, Input{Shape{64}}, Input{Shape{64, 64}}, Input{Shape{64}}},
              [](const auto& v) {
                auto h = v[0] + linear(layer_norm(v[0], v[1], v[2], 1e-6f), v[3], v[4]);
                return h + linear(layer_norm(h, v[1], v[2], 1e-6f), v[3], v[4]);
              });
  check_op<G>("attention d 32 (fused)", rng,
              {Input{Shape{2, 3, 17, 32}}, Input{Shape{2, 3, 17, 32}}, Input{Shape{2, 3, 17, 32}}},
              [](const auto& v) { return attention(v[0], v[1], v[2]); });
  check_op<G>("attention d 16 (fused)", rng,
              {Input{Shape{2, 3, 17, 16}}, Input{Shape{2, 3, 17, 16}}, Input{Shape{2, 3, 17, 16}}},
              [](const auto& v) { return attention(v[0], v[1], v[2]); });
  // No fused kernel has head dim 8: matmul → softmax → matmul, the fallback path.
  check_op<G>("attention d 8 (unfused)", rng,
              {Input{Shape{2, 3, 17, 8}}, Input{Shape{2, 3, 17, 8}}, Input{Shape{2, 3, 17, 8}}},
              [](const auto& v) { return attention(v[0], v[1], v[2]); });
  check_op<G>("self_attention_packed", rng, {Input{Shape{2, 17, 3 * 64}}},
              [](const auto& v) { return self_attention_packed(v[0], 2); });
  {
    // The same op in fp32 from the composite ops on the device (cuda::set_attention_f32_composite:
    // matmul, softmax, matmul; full fp32 GEMMs here), and the four-dimensional form.
    const ScopedSetting<bool> composite(cuda::attention_f32_composite, cuda::set_attention_f32_composite, true);
    check_op<G>("self_attention_packed, composite fp32", rng, {Input{Shape{2, 17, 3 * 64}}},
                [](const auto& v) { return self_attention_packed(v[0], 2); });
    check_op<G>("attention d 32, composite fp32", rng,
                {Input{Shape{2, 3, 17, 32}}, Input{Shape{2, 3, 17, 32}}, Input{Shape{2, 3, 17, 32}}},
                [](const auto& v) { return attention(v[0], v[1], v[2]); });
  }
  // The same seed on both devices draws the same masks (Philox, tested bit for bit in [dropout]).
  check_op<G>("dropout", rng, {Input{Shape{4, 9, 16}}}, [](const auto& v) {
    Generator gen(1234);
    return dropout(v[0], 0.25, true, gen);
  });
  // A strided input (mask, then multiply) and a gradient that arrives broadcast (the fused
  // path's backward makes it contiguous before regenerating the mask over it).
  check_op<G>("dropout of a transposed view", rng, {Input{Shape{9, 4, 16}}}, [](const auto& v) {
    Generator gen(99);
    return dropout(v[0].transpose(0, 1), 0.5, true, gen);
  });
  check_op<G>("dropout, gradient through a broadcast", rng, {Input{Shape{4, 9, 16}}}, [](const auto& v) {
    Generator gen(7);
    return sum(dropout(v[0], 0.25, true, gen), {1}, true) * 3.0f;
  });
  check_op<G>("concat axis 1", rng, {Input{Shape{3, 2, 5}}, Input{Shape{3, 4, 5}}},
              [](const auto& v) { return concat(std::vector{v[0], v[1]}, 1); });
  check_op<G>("index_select with repeats", rng, {Input{Shape{7, 6}}},
              [](const auto& v) { return index_select(v[0], std::vector<int64_t>{4, 0, 4, 6}); });
  check_op<G>("index_copy_ into a bank", rng, {Input{Shape{7, 6}, -2.0f, 2.0f, false}, Input{Shape{3, 6}, -2.0f, 2.0f, false}},
              [](const auto& v) {
                auto bank = v[0].clone_nograd();
                index_copy_(bank, std::vector<int64_t>{5, 1, 2}, v[1]);
                return bank;
              },
              0.0);
}

}  // namespace

TEST_CASE("the residual stream's gradients are summed inside LayerNorm's backward", "[ops]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  auto param = [&](Shape s) {
    auto t = Tensor<float, Cuda>::from_vector(rng.normal(static_cast<size_t>(s.numel()), 0.2f), s);
    t.requires_grad_();
    return t;
  };
  // Parameters of their own per block, as in the model (a shared one would collect a gradient from
  // each block, summed into the leaf: that is accumulation, not the residual stream).
  auto x = param(Shape{4, 9, 32});
  Tensor<float, Cuda> h = x;
  for (int block = 0; block < 3; ++block)
    h = h + linear(layer_norm(h, param(Shape{32}), param(Shape{32}), 1e-6f), param(Shape{32, 32}), param(Shape{32}));
  const auto r = Tensor<float, Cuda>::from_vector(rng.normal(static_cast<size_t>(h.numel())), h.shape());
  const auto loss = sum(h * r);
  cuda::synchronize();
  cuda::profile_start();
  loss.backward();
  const auto ops = cuda::profile_stop();
  std::string names;
  for (const auto& e : ops) names += e.name + " ×" + std::to_string(e.calls) + "; ";
  INFO("backward ops: " << names);
  // Three blocks: x and each block's output reach a LayerNorm and an add. Not one separate sum, and
  // no copy (the sums go in place, and x's gradient is adopted as its .grad).
  for (const auto& e : ops) {
    CHECK(e.name != "accumulate_kernel");
    CHECK(e.name != "memcpy D2D");
  }
  REQUIRE(x.grad().defined());
}

TEST_CASE("cuda::set_attention_f32_composite moves fp32 attention from the fused kernels to GEMMs", "[ops]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const Shape shape{2, 17, 3 * 64};
  auto x = Tensor<float, Cuda>::from_vector(rng.normal(static_cast<size_t>(shape.numel())), shape);
  x.requires_grad_();
  // Which ops a forward and backward of self_attention_packed queue, by name.
  auto ops_of_one_step = [&] {
    cuda::synchronize();
    cuda::profile_start();
    sum(self_attention_packed(x, 2)).backward();
    std::string names;
    for (const auto& e : cuda::profile_stop()) names += e.name + "; ";
    return names;
  };
  const std::string fused = ops_of_one_step();
  INFO("fused: " << fused);
  CHECK(fused.find("attention_fwd_f32_kernel") != std::string::npos);
  CHECK(fused.find("gemm") == std::string::npos);
  const ScopedSetting<bool> composite(cuda::attention_f32_composite, cuda::set_attention_f32_composite, true);
  const std::string composed = ops_of_one_step();
  INFO("composite: " << composed);
  CHECK(composed.find("attention") == std::string::npos);
  CHECK(composed.find("gemm") != std::string::npos);
}

TEST_CASE("every op of docs/ops.md: values and gradients match the CPU", "[ops]") {
  Tf32Off strict;
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  check_elementwise_ops<Cuda>(rng);
  check_reductions_and_views<Cuda>(rng);
  check_layer_ops<Cuda>(rng);
}
