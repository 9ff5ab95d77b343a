// Gradient checks for the layer-sized ops: softmax family and losses, layer_norm, attention
// (plain and packed), dropout, concat and index_select (matmul and linear: test_grad_matmul.cpp).
// Shapes are kept small because gradcheck runs two forward passes per input element.
#include "test_util.hpp"

using namespace vts;
using namespace vts_test;
using Catch::Matchers::Contains;

// ---- softmax family and losses --------------------------------------------------------------------

TEST_CASE("grad: softmax and log_softmax on last and non-last axes", "[grad][softmax]") {
  const Td x = uniform({2, 3, 5}, 1, -3.0, 3.0);
  for (int axis : {-1, 0, 1}) {
    INFO("axis " << axis);
    check_grad([axis](auto& in) { return softmax(in[0], axis); }, {x});
    check_grad([axis](auto& in) { return log_softmax(in[0], axis); }, {x});
  }
  // Non-contiguous input and a composition whose gradient does not vanish on the row sums.
  check_grad([](auto& in) { return softmax(in[0].t(), -1); }, {uniform({5, 4}, 2)});
  check_grad([](auto& in) { return log_softmax(in[0].slice(1, 0, 8, 2), 0); }, {uniform({3, 8}, 3)});
  check_grad([](auto& in) { return mul(softmax(in[0]), log_softmax(in[0])); }, {uniform({3, 6}, 4)});
}

TEST_CASE("grad: cross_entropy", "[grad][loss]") {
  const std::vector<int64_t> targets{0, 4, 2, 2};
  check_grad([&](auto& in) { return cross_entropy(in[0], targets); }, {uniform({4, 5}, 11, -2, 2)});
  // Transposed logits; the loss scaled so the incoming gradient is not 1.
  check_grad([&](auto& in) { return mul(cross_entropy(in[0].t(), targets), 3.0); }, {uniform({5, 4}, 12, -2, 2)});
  check_grad([](auto& in) { return cross_entropy(in[0], std::vector<int64_t>{1}); }, {uniform({1, 3}, 13)});
}

TEST_CASE("grad: binary_cross_entropy with respect to the probabilities", "[grad][loss]") {
  // Targets are a captured constant: gradcheck perturbs every input it is given, and the op
  // defines no gradient for its targets. Soft and hard labels both appear.
  const Td targets = Td::from_vector({0, 1, 0.3, 1, 0, 0.8, 0.5, 1, 0, 0.1, 1, 0}, {3, 4});
  check_grad([&](auto& in) { return binary_cross_entropy(in[0], targets); }, {uniform({3, 4}, 21, 0.05, 0.95)});
  // Probabilities produced by a sigmoid of a transposed view: the usual way BCE is fed.
  check_grad([&](auto& in) { return binary_cross_entropy(sigmoid(in[0].t()), targets); },
             {uniform({4, 3}, 22, -3, 3)});
  // The targets are never differentiated even when they require grad.
  Td p = uniform({3, 4}, 23, 0.1, 0.9), t = targets.clone_nograd();
  p.requires_grad_();
  t.requires_grad_();
  binary_cross_entropy(p, t).backward();
  CHECK(p.grad().defined());
  CHECK_FALSE(t.grad().defined());
}

TEST_CASE("grad: csq_loss with respect to the codes", "[grad][loss]") {
  // Centers ±1 and mixed values (mixup rows); λ large so the quantization term's gradient shows.
  // Codes kept within ±2.5: past that tanh saturates and gradcheck's differences vanish.
  const Td centers = Td::from_vector({1, -1, 1, 1, -1, 0.5, -1, 1, 1, -0.2, -1, -1}, {3, 4});
  for (const double lambda : {1e-4, 0.8}) {
    INFO("lambda " << lambda);
    check_grad([&](auto& in) { return csq_loss(in[0], centers, lambda); }, {uniform({3, 4}, 24, -2.5, 2.5)});
    // A transposed view, and an upstream gradient other than 1.
    check_grad([&](auto& in) { return mul(csq_loss(in[0].t(), centers, lambda), 3.0); }, {uniform({4, 3}, 25, -2.5, 2.5)});
  }
}

// ---- layer_norm ------------------------------------------------------------------------------------

TEST_CASE("grad: layer_norm", "[grad][layer_norm]") {
  auto ln = [](auto& in) { return layer_norm(in[0], in[1], in[2], 1e-5); };
  check_grad(ln, {uniform({3, 6}, 71, -2, 2), uniform({6}, 72, 0.5, 1.5), uniform({6}, 73)});
  check_grad(ln, {uniform({2, 3, 5}, 74, -2, 2), uniform({5}, 75, 0.5, 1.5), uniform({5}, 76)});
  check_grad([](auto& in) { return layer_norm(in[0].t(), in[1], in[2], 1e-5); },
             {uniform({6, 3}, 77, -2, 2), uniform({6}, 78, 0.5, 1.5), uniform({6}, 79)});
  // A larger eps matters for the gradient too, not only for the forward.
  check_grad([](auto& in) { return layer_norm(in[0], in[1], in[2], 0.5); },
             {uniform({4, 4}, 80, -1, 1), uniform({4}, 81, 0.5, 1.5), uniform({4}, 82)});
  // More rows than threads: the per-thread partial sums of dweight and dbias are combined.
  check_grad(ln, {uniform({17, 3}, 83, -2, 2), uniform({3}, 84, 0.5, 1.5), uniform({3}, 85)});
}

// The backward writes only the gradients asked for (null outputs in the kernel): x alone with the
// affine parameters frozen, and the parameters alone with a constant input (a LayerNorm right after
// the constant images, or a frozen backbone's).
TEST_CASE("grad: layer_norm with constant input or constant parameters", "[grad][layer_norm]") {
  const Td w = uniform({5}, 86, 0.5, 1.5), b = uniform({5}, 87), x = uniform({2, 3, 5}, 88, -2, 2);
  check_grad([&](auto& in) { return layer_norm(in[0], w, b, 1e-5); }, {uniform({2, 3, 5}, 89, -2, 2)});
  check_grad([&](auto& in) { return layer_norm(x, in[0], in[1], 1e-5); }, {uniform({5}, 90, 0.5, 1.5), uniform({5}, 91)});
  check_grad([&](auto& in) { return layer_norm(x, in[0], b, 1e-5); }, {uniform({5}, 92, 0.5, 1.5)});
  check_grad([&](auto& in) { return layer_norm(x, w, in[0], 1e-5); }, {uniform({5}, 93)});
}

TEST_CASE("grad: add_layer_norm, through both of its outputs", "[grad][layer_norm]") {
  // A loss that uses the normalised output and the sum (as the block's residual stream does), so the
  // gradient reaching x and residual is the sum of both paths.
  auto both = [](auto& in) {
    const auto r = add_layer_norm(in[0], in[1], in[2], in[3], 1e-5);
    return add(mul(r.normed, 2.0), mul(r.sum, r.sum));
  };
  check_grad(both, {uniform({3, 6}, 171, -2, 2), uniform({3, 6}, 172, -2, 2), uniform({6}, 173, 0.5, 1.5),
                    uniform({6}, 174)});
  // Non-contiguous x; residual without a gradient; only the normalised output used.
  const Td fixed_residual = uniform({4, 5}, 175);
  check_grad([&](auto& in) { return add_layer_norm(in[0].t(), fixed_residual, in[1], in[2], 1e-5).normed; },
             {uniform({5, 4}, 176, -2, 2), uniform({5}, 177, 0.5, 1.5), uniform({5}, 178)});
}

TEST_CASE("add_layer_norm gives the bits of x + residual followed by layer_norm, values and gradients",
          "[layer_norm]") {
  const Shape shape{3, 17, 64};
  uint64_t seed = 179;
  auto make = [&](const Shape& s) { return to_float(uniform(s, seed++, -2, 2)).requires_grad_(); };
  Tf x = make(shape), residual = make(shape), w = make(Shape{64}), b = make(Shape{64});
  const Tf seed_sum = to_float(uniform(shape, seed++)), seed_normed = to_float(uniform(shape, seed++));
  auto run = [&](bool fused) {
    for (Tf* t : {&x, &residual, &w, &b}) t->zero_grad();
    Tf sum, normed;
    if (fused) {
      auto r = add_layer_norm(x, residual, w, b, 1e-6f);
      sum = r.sum;
      normed = r.normed;
    } else {
      sum = x + residual;
      normed = layer_norm(sum, w, b, 1e-6f);
    }
    vts::sum(add(mul(sum, seed_sum), mul(normed, seed_normed))).backward();
    std::vector<std::vector<float>> out{sum.to_vector(), normed.to_vector()};
    for (const Tf* t : {&x, &residual, &w, &b}) out.push_back(t->grad().to_vector());
    return out;
  };
  const auto fused = run(true), separate = run(false);
  REQUIRE(fused.size() == separate.size());
  for (size_t i = 0; i < fused.size(); ++i) {
    INFO("output " << i << " (sum, normed, dx, dresidual, dweight, dbias)");
    CHECK(fused[i] == separate[i]);
  }
  CHECK_THROWS_WITH(add_layer_norm(x, Tf::zeros(Shape{3, 17, 32}), w, b, 1e-6f),
                    Contains("residual [3, 17, 32]") && Contains("same shape"));
}

// ---- attention --------------------------------------------------------------------------------------

TEST_CASE("grad: attention", "[grad][attention]") {
  auto att = [](auto& in) { return attention(in[0], in[1], in[2]); };
  SECTION("small") {
    check_grad(att, {uniform({2, 2, 5, 3}, 91), uniform({2, 2, 5, 3}, 92), uniform({2, 2, 5, 3}, 93)});
  }
  SECTION("N = 70 spans a full and a partial 64-row block") {
    const Shape s{1, 1, 70, 3};
    check_grad(att, {uniform(s, 94, -2, 2), uniform(s, 95, -2, 2), uniform(s, 96)});
  }
  SECTION("non-contiguous q, k, v views") {
    // q: heads interleaved per token ([B, N, H, d] permuted) — unit inner stride, read in place.
    // k: d and N swapped — inner stride N, copied. v: every other token of a longer sequence.
    check_grad(
        [](auto& in) {
          return attention(in[0].permute({0, 2, 1, 3}), in[1].transpose(2, 3), in[2].slice(2, 0, 13, 2));
        },
        {uniform({1, 7, 2, 4}, 97, -2, 2), uniform({1, 2, 4, 7}, 98, -2, 2), uniform({1, 2, 13, 4}, 99)});
  }
  SECTION("a gradient arriving with a non-unit inner stride") {
    // The transpose after attention hands its backward a gradient whose last axis is strided.
    check_grad([](auto& in) { return attention(in[0], in[1], in[2]).transpose(2, 3); },
               {uniform({1, 2, 6, 3}, 103), uniform({1, 2, 6, 3}, 104), uniform({1, 2, 6, 3}, 105)});
  }
  SECTION("N = 70 through views") {
    check_grad([](auto& in) { return attention(in[0].permute({0, 2, 1, 3}), in[1].permute({0, 2, 1, 3}), in[2]); },
               {uniform({1, 70, 1, 2}, 100, -2, 2), uniform({1, 70, 1, 2}, 101, -2, 2), uniform({1, 1, 70, 2}, 102)});
  }
}

TEST_CASE("self_attention_packed matches attention on split heads, and its gradient checks", "[grad][attention]") {
  const int64_t B = 2, N = 5, H = 2, d = 3;
  const Td qkv = uniform({B, N, 3 * H * d}, 111, -2, 2);
  // Reference: split the packed features into q, k, v heads with views, run attention, merge.
  auto split = [&](const Td& x, int which) {
    return x.slice(2, which * H * d, (which + 1) * H * d).reshape({B, N, H, d}).permute({0, 2, 1, 3});
  };
  const Td ref = attention(split(qkv, 0), split(qkv, 1), split(qkv, 2)).permute({0, 2, 1, 3}).reshape({B, N, H * d});
  const Td got = self_attention_packed(qkv, H);
  REQUIRE(got.shape() == Shape{B, N, H * d});
  check_values(got.to_vector(), ref.to_vector(), 1e-12);

  check_grad([](auto& in) { return self_attention_packed(in[0], 2); }, {qkv});
  check_grad([](auto& in) { return self_attention_packed(in[0], 1); }, {uniform({1, 70, 3 * 2}, 112, -2, 2)});
  // A non-contiguous packed input (sequence and batch swapped).
  check_grad([](auto& in) { return self_attention_packed(in[0].transpose(0, 1), 3); }, {uniform({4, 2, 3 * 3 * 2}, 113)});
}

// A head count of 0 (an unset config field, say) used to reach `% (3 * heads)` and kill the
// process with SIGFPE; negative ones were reported as a negative tensor dimension.
TEST_CASE("self_attention_packed and nn::SelfAttention refuse a head count that is not positive",
          "[attention][errors]") {
  const Td qkv = Td::zeros({1, 4, 48});
  CHECK_THROWS_WITH(self_attention_packed(qkv, 0), Contains("heads must be positive") && Contains("[1, 4, 48]"));
  CHECK_THROWS_WITH(self_attention_packed(qkv, -2), Contains("heads must be positive"));
  Generator gen(1);
  CHECK_THROWS_WITH((nn::SelfAttention<double>(16, 0, gen)), Contains("heads must be positive"));
}

// On CUDA, head dims the fused kernels lack (ViTTiny28's 16) take matmul → softmax → matmul; the
// CPU can check that path against the fused op.
TEST_CASE("unfused packed attention (the CUDA fallback) matches self_attention_packed, and its gradient checks",
          "[grad][attention]") {
  const int64_t B = 2, N = 5, H = 2, d = 3;
  const Td qkv = uniform({B, N, 3 * H * d}, 114, -2, 2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  check_values(vts::detail::self_attention_packed_unfused(qkv, H, scale).to_vector(),
               self_attention_packed(qkv, H).to_vector(), 1e-12);
  check_grad([scale](auto& in) { return vts::detail::self_attention_packed_unfused(in[0], 2, scale); }, {qkv});
}

// ---- dropout -----------------------------------------------------------------------------------------

TEST_CASE("grad: dropout with a fixed mask", "[grad][dropout]") {
  // A fresh generator with the same seed inside f gives the same mask in every evaluation.
  auto drop = [](auto& in) {
    Generator gen(77);
    return dropout(in[0], 0.4, true, gen);
  };
  const Td x = uniform({6, 7}, 121, 0.5, 1.5);  // no zeros, so a zero output means a dropped element
  const std::vector<Td> args{x};
  const auto y = drop(args).to_vector();
  int dropped = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (y[i] == 0) {
      ++dropped;
    } else {
      CHECK(y[i] == Approx(x.to_vector()[i] / 0.6));
    }
  }
  CHECK(dropped > 0);
  CHECK(dropped < static_cast<int>(y.size()));
  check_grad(drop, {x});
  check_grad([](auto& in) {
    Generator gen(5);
    return dropout(in[0].t(), 0.5, true, gen);
  }, {uniform({5, 3}, 122)});
  // Evaluation mode is the identity and records nothing new.
  Td e = uniform({3, 3}, 123);
  CHECK(dropout(e, 0.5, false).same_storage(e));
}

// gelu_dropout and add_dropout are one kernel each way on CUDA ([dropout] in tests/cuda compares
// those with the composites); elsewhere they are the composites, checked here as the public ops.
TEST_CASE("grad: gelu_dropout and add_dropout with a fixed mask", "[grad][dropout]") {
  check_grad([](auto& in) {
    Generator gen(78);
    return gelu_dropout(in[0], 0.3, true, gen);
  }, {uniform({5, 6}, 124, -2, 2)});
  check_grad([](auto& in) {
    Generator gen(79);
    return gelu_dropout(in[0].t(), 0.5, true, gen);
  }, {uniform({4, 3}, 125, -2, 2)});
  check_grad([](auto& in) {
    Generator gen(80);
    return add_dropout(in[0], in[1], 0.4, true, gen);
  }, {uniform({5, 6}, 126), uniform({5, 6}, 127)});
  // A broadcast residual (the sum_to of add's backward) and evaluation mode (the identity).
  check_grad([](auto& in) {
    Generator gen(81);
    return add_dropout(in[0], in[1], 0.4, true, gen);
  }, {uniform({6}, 128), uniform({5, 6}, 129)});
  check_grad([](auto& in) { return mul(add_dropout(in[0], gelu_dropout(in[1], 0.5, false), 0.5, false), in[1]); },
             {uniform({3, 4}, 130), uniform({3, 4}, 131)});
}

TEST_CASE("dropout mask: element i is lane i % 4 of Philox block first + i / 4, for any length and thread count",
          "[dropout][rng]") {
  // The mask kernel runs 16 Philox counters at a time; lengths around that width and around the
  // threads' chunk size (4,096 blocks) check the lane-parallel rounds and every tail against the
  // scalar generator, which the CUDA kernel reproduces as well.
  const uint64_t seed = 0x1234ABCD5678EF01ull;
  const uint32_t threshold = static_cast<uint32_t>(0.3 * 16777216.0);
  for (const int64_t n : {1, 3, 4, 63, 64, 65, 67, 4 * 4096 + 5, 3 * 4 * 4096 + 4 * 17 + 2}) {
    for (const uint64_t first : {uint64_t{0}, uint64_t{0xFFFFFFF0ull}, uint64_t{123456789012345ull}}) {
      std::vector<float> mask(static_cast<size_t>(n), -1.0f);
      vts::cpu::dropout_mask(Cpu{}, seed, first, n, threshold, 2.5f, mask.data());
      int64_t wrong = 0;
      for (int64_t i = 0; i < n; ++i) {
        const auto block = vts::Philox::generate(seed, 0, first + static_cast<uint64_t>(i / 4));
        const float want = (block[static_cast<size_t>(i % 4)] >> 8) >= threshold ? 2.5f : 0.0f;
        wrong += mask[static_cast<size_t>(i)] != want;
      }
      INFO("n = " << n << ", first block = " << first);
      CHECK(wrong == 0);
    }
  }
}

TEST_CASE("dropout: the fused CPU forward (mask and product in one pass) equals x times the mask, and a strided "
          "input draws the mask in logical order", "[dropout][rng]") {
  // Contiguous inputs take cpu::dropout_forward; a transposed view takes dropout_mask + map. Both
  // must give out = x ∘ mask with mask[i] from Philox block (first + i / 4), i in logical order.
  for (const int64_t n : {1, 5, 64, 67, 4 * 4096 + 5}) {
    vts::Tensor<float> x = vts::Tensor<float>::empty({n});
    vts::Generator init(11);
    vts::nn::init::normal_(x, 0.0, 1.0, init);
    vts::Generator a(99), b(99);
    const vts::Tensor<float> fused = dropout(x, 0.3, true, a);
    std::vector<float> mask(static_cast<size_t>(n));
    const uint64_t first = b.reserve(static_cast<uint64_t>(n));
    vts::cpu::dropout_mask(Cpu{}, b.seed(), first, n, static_cast<uint32_t>(0.3 * 16777216.0), float(1.0 / 0.7), mask.data());
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; ++i) wrong += fused.data()[i] != x.data()[i] * mask[static_cast<size_t>(i)];
    INFO("n = " << n);
    CHECK(wrong == 0);
    CHECK(a.offset() == b.offset());
  }
  vts::Tensor<float> m = vts::Tensor<float>::empty({37, 29});
  vts::Generator init(12);
  vts::nn::init::normal_(m, 0.0, 1.0, init);
  const vts::Tensor<float> view = m.t();  // [29, 37], not contiguous
  REQUIRE_FALSE(view.is_contiguous());
  vts::Generator a(5), b(5);
  const vts::Tensor<float> strided = dropout(view, 0.5, true, a);
  const vts::Tensor<float> dense = dropout(view.contiguous(), 0.5, true, b);
  CHECK(strided.to_vector() == dense.to_vector());
}

// ---- concat and index_select ------------------------------------------------------------------------

TEST_CASE("grad: concat", "[grad][indexing]") {
  check_grad([](auto& in) { return concat<double, Cpu>({in[0], in[1], in[2]}, 0); },
             {uniform({2, 3}, 131), uniform({1, 3}, 132), uniform({4, 3}, 133)});
  check_grad([](auto& in) { return concat<double, Cpu>({in[0], in[1].t()}, 1); },
             {uniform({3, 2}, 134), uniform({4, 3}, 135)});
  check_grad([](auto& in) { return concat<double, Cpu>({in[0], in[1], in[0]}, -1); },  // a part used twice
             {uniform({2, 2, 1}, 136), uniform({2, 2, 3}, 137)});
}

TEST_CASE("concat with a constant part routes gradients only to the parts that need them", "[indexing]") {
  Td x = Td::from_vector({1, 2, 3, 4}, {2, 2});
  const Td c = Td::from_vector({5, 6}, {2, 1});
  x.requires_grad_();
  const Td y = concat<double, Cpu>({c, x}, 1);
  check_values(y.to_vector(), {5, 1, 2, 6, 3, 4});
  sum(mul(y, Td::from_vector({10, 20, 30, 40, 50, 60}, {2, 3}))).backward();
  check_values(x.grad().to_vector(), {20, 30, 50, 60});
  CHECK_FALSE(c.grad().defined());
}

TEST_CASE("index_copy_ writes rows in place, the last repeat winning", "[indexing]") {
  Td bank = Td::zeros({4, 2});
  const Td src = Td::from_vector({1, 1, 2, 2, 3, 3}, {3, 2});
  index_copy_(bank, {3, 1, 3}, src);
  check_values(bank.to_vector(), {0, 0, 2, 2, 0, 0, 3, 3});
  CHECK_THROWS_WITH(index_copy_(bank, {4}, Td::zeros({1, 2})), Contains("[0, 4)"));
  CHECK_THROWS_AS(index_copy_(bank, {0}, Td::zeros({1, 3})), ShapeError);
}

TEST_CASE("grad: index_select with repeated rows", "[grad][indexing]") {
  const std::vector<int64_t> rows{4, 0, 4, 2, 4};
  check_grad([&](auto& in) { return index_select(in[0], rows); }, {uniform({5, 3}, 141)});
  check_grad([&](auto& in) { return index_select(in[0], rows); }, {uniform({5, 2, 2}, 142)});
  check_grad([&](auto& in) { return index_select(in[0].t(), std::vector<int64_t>{1, 1}); }, {uniform({3, 2}, 143)});
  // Repeated rows accumulate: row 4 appears three times.
  Td x = uniform({5, 3}, 144);
  x.requires_grad_();
  sum(index_select(x, rows)).backward();
  check_values(x.grad().to_vector(), {1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 3, 3, 3});
}
