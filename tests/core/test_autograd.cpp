// Autograd semantics: accumulation, graph release, grad mode, seeds, detach, retain_grad, shared
// subexpressions, and the error messages users see when shapes do not fit.
#include "test_util.hpp"

using namespace vts;
using namespace vts_test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

TEST_CASE("gradcheck itself rejects a wrong backward", "[autograd]") {
  // An op whose recorded backward is off by a factor of two: the checker must notice, or every
  // other gradient test here proves nothing.
  auto wrong_backward = [](auto& in) {
    const Td& x = in[0];
    Td y = map(x, fn::MulScalar<double>{3.0});
    return record(y, "wrong", {&x}, [](const Td& g) { return std::vector<Td>{map(g, fn::MulScalar<double>{6.0})}; });
  };
  const GradcheckResult r = gradcheck<Cpu>(wrong_backward, {uniform({2, 2}, 1)});
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.message, Contains("analytic"));
  CHECK(r.max_abs_error > 0.5);
}

// gradcheck is the public API researchers run on their own composites: callable with a plain
// lambda, reporting a composite that drops out of the graph as a mismatch (not an exception from
// deep inside), and leaving the tensors it was given as it found them.
TEST_CASE("gradcheck takes a lambda, reports a detached composite, and restores its inputs", "[autograd]") {
  SECTION("a lambda, without naming the device") {
    const GradcheckResult r = gradcheck([](const std::vector<Td>& in) { return mul(in[0], in[0]); },
                                        {uniform({3}, 2)});
    CHECK(r.ok);
  }
  SECTION("an output computed outside the graph is a failed check with both values") {
    GradcheckResult r;
    REQUIRE_NOTHROW(r = gradcheck([](const std::vector<Td>& in) { return mul(in[0].detach(), 2.0); },
                                  {uniform({3}, 3)}));
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.message, Contains("analytic 0 vs numeric"));
  }
  SECTION("a NaN makes the largest error NaN, not 0") {
    const GradcheckResult r = gradcheck([](const std::vector<Td>& in) { return vts::log(in[0]); },
                                        {Td::from_vector({-0.5, 1.0})});
    CHECK_FALSE(r.ok);
    CHECK(std::isnan(r.max_abs_error));
  }
  SECTION("a parameter's flag and gradient are as before") {
    Td w = uniform({2}, 4), frozen = uniform({2}, 5);
    w.requires_grad_();
    sum(mul(w, 3.0)).backward();  // w.grad = {3, 3}, as a training step left it
    CHECK(gradcheck([](const std::vector<Td>& in) { return mul(in[0], in[1]); }, {w, frozen}).ok);
    check_values(w.grad().to_vector(), {3, 3});
    CHECK(w.requires_grad());
    CHECK_FALSE(frozen.requires_grad());
    CHECK_FALSE(frozen.grad().defined());
  }
}

TEST_CASE("gradients accumulate into leaves across backward calls", "[autograd]") {
  Td x = Td::from_vector({1, 2, 3});
  x.requires_grad_();
  sum(mul(x, x)).backward();  // 2x
  check_values(x.grad().to_vector(), {2, 4, 6});
  sum(mul(x, 3.0)).backward();  // + 3
  check_values(x.grad().to_vector(), {5, 7, 9});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  sum(x).backward();
  check_values(x.grad().to_vector(), {1, 1, 1});
}

TEST_CASE("a leaf's gradient never aliases the seed or another tensor's gradient", "[autograd]") {
  SECTION("the seed passed to backward") {
    Td x = Td::zeros({2, 3});
    x.requires_grad_();
    Td seed = Td::ones({6});
    x.reshape({6}).backward(seed);
    seed.fill_(5);  // the caller reuses its seed buffer
    check_values(x.grad().to_vector(), {1, 1, 1, 1, 1, 1});
    x.reshape({6}).backward(seed);
    check_values(x.grad().to_vector(), {6, 6, 6, 6, 6, 6});
    check_values(seed.to_vector(), {5, 5, 5, 5, 5, 5});
  }
  SECTION("a retained intermediate gradient") {
    Td x = Td::zeros({2, 3});
    x.requires_grad_();
    const Td w = Td::from_vector({1, 2, 3, 4, 5, 6});
    Td y = x.reshape({6});
    y.retain_grad();
    sum(mul(y, w)).backward();
    sum(mul(x.reshape({6}), w)).backward();  // accumulates into x.grad only
    check_values(y.grad().to_vector(), {1, 2, 3, 4, 5, 6});
    check_values(x.grad().to_vector(), {2, 4, 6, 8, 10, 12});
  }
}

TEST_CASE("backward frees the graph and a second pass through it throws", "[autograd]") {
  Td x = Td::from_vector({1, 2});
  x.requires_grad_();
  Td y = sum(vts::exp(x));
  y.backward();
  CHECK_THROWS_WITH(y.backward(), Contains("already freed"));
  // Also when the freed part is reached from a new op built on top of it.
  Td z = mul(y, 2.0);
  CHECK_THROWS_AS(z.backward(), Error);
  // A fresh forward pass works again.
  x.zero_grad();
  sum(vts::exp(x)).backward();
  check_values(x.grad().to_vector(), {std::exp(1.0), std::exp(2.0)});
}

TEST_CASE("NoGradGuard records nothing and restores the mode", "[autograd]") {
  Td x = uniform({2, 3}, 2);
  x.requires_grad_();
  {
    NoGradGuard guard;
    CHECK_FALSE(grad_enabled());
    CHECK_FALSE(mul(x, x).requires_grad());
    CHECK_FALSE(matmul(x, x.t()).requires_grad());
    CHECK_FALSE(softmax(x).requires_grad());
    CHECK_FALSE(x.t().requires_grad());
    CHECK_FALSE(x.reshape({6}).requires_grad());
    CHECK_FALSE(concat<double, Cpu>({x, x}, 0).requires_grad());
    Td y = sum(x);
    CHECK(y.grad_fn() == nullptr);
    CHECK_THROWS_WITH(y.backward(), Contains("does not require grad"));
    {
      NoGradGuard nested;
    }
    CHECK_FALSE(grad_enabled());  // the inner guard restored "off", not "on"
  }
  CHECK(grad_enabled());
  CHECK(mul(x, x).requires_grad());
  // Ops on tensors that do not require grad record nothing either.
  Td c = uniform({2, 3}, 3);
  CHECK_FALSE(add(c, c).requires_grad());
  CHECK(add(c, x).requires_grad());
}

TEST_CASE("backward seeds", "[autograd]") {
  Td x = uniform({2, 3}, 4);
  x.requires_grad_();
  SECTION("a non-scalar output needs a seed; the message names the shape") {
    Td y = mul(x, 2.0);
    CHECK_THROWS_WITH(y.backward(), Contains("[2, 3]") && Contains("seed"));
  }
  SECTION("a seed of the wrong shape names both shapes") {
    Td y = mul(x, 2.0);
    CHECK_THROWS_WITH(y.backward(Td::ones({3, 2})), Contains("[3, 2]") && Contains("[2, 3]"));
  }
  SECTION("an explicit seed weights the output") {
    Td y = mul(x, 2.0);
    y.backward(Td::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}));
    check_values(x.grad().to_vector(), {2, 4, 6, 8, 10, 12});
  }
  SECTION("a one-element non-scalar output needs no seed") {
    Td y = sum(x, {0, 1}, true);
    REQUIRE(y.shape() == Shape{1, 1});
    y.backward();
    check_values(x.grad().to_vector(), {1, 1, 1, 1, 1, 1});
  }
}

TEST_CASE("detach cuts the graph", "[autograd]") {
  Td x = Td::from_vector({1, 2, 3});
  x.requires_grad_();
  Td d = mul(x, 2.0).detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  // y = x * stopgrad(2x): dy/dx = 2x, not 4x.
  sum(mul(x, d)).backward();
  check_values(x.grad().to_vector(), {2, 4, 6});
  // detach shares the data.
  CHECK(x.detach().same_storage(x));
}

TEST_CASE("retain_grad keeps an intermediate gradient and others are not kept", "[autograd]") {
  Td x = Td::from_vector({1, 2, 3});
  x.requires_grad_();
  Td h = mul(x, x);
  Td k = mul(x, 3.0);
  h.retain_grad();
  sum(mul(add(h, k), Td::from_vector({1, 10, 100}))).backward();
  check_values(h.grad().to_vector(), {1, 10, 100});
  CHECK_FALSE(k.grad().defined());
  check_values(x.grad().to_vector(), {1 * (2 + 3), 10 * (4 + 3), 100 * (6 + 3)});
}

TEST_CASE("a tensor used twice receives the sum of both gradients", "[autograd]") {
  SECTION("diamond: y = a·b with a and b both computed from x") {
    Td x = Td::from_vector({0.5, -1.0, 2.0});
    x.requires_grad_();
    Td a = vts::exp(x);
    Td b = mul(x, 3.0);
    sum(mul(a, b)).backward();  // d/dx (3x·eˣ) = 3eˣ(1 + x)
    const auto xv = x.to_vector();
    std::vector<double> want;
    for (double v : xv) want.push_back(3 * std::exp(v) * (1 + v));
    check_values(x.grad().to_vector(), want, 1e-12);
  }
  SECTION("the same intermediate feeding two consumers") {
    Td x = Td::from_vector({1.0, 2.0});
    x.requires_grad_();
    Td h = mul(x, x);             // used twice below
    Td y = add(mul(h, 2.0), h);   // 3x²
    sum(y).backward();
    check_values(x.grad().to_vector(), {6, 12});
  }
  SECTION("x + x") {
    Td x = Td::from_vector({1.0, 2.0});
    x.requires_grad_();
    sum(add(x, x)).backward();
    check_values(x.grad().to_vector(), {2, 2});
  }
}

TEST_CASE("a backward function may absorb the gradient already waiting for its input", "[autograd]") {
  // h = x·3 feeds two consumers: y = h + f(h). add's backward runs first and leaves g_y waiting
  // for h; then f's backward sees it (pending_grad), returns its own gradient plus it, and says so
  // (absorb_pending_grad): the engine must keep that as h's gradient, not add g_y a second time.
  int saw_pending = 0, absorbed = 0;
  auto f = [&](const Td& in, bool absorb) {
    Td y = map(in, fn::MulScalar<double>{2.0});
    return record(y, "twice", {&in}, [&, absorb](const Td& g) {
      Td own = map(g, fn::MulScalar<double>{2.0});
      Td* waiting = detail::pending_grad<double, Cpu>(0);
      if (waiting != nullptr) ++saw_pending;
      if (absorb && waiting != nullptr) {
        ++absorbed;
        detail::absorb_pending_grad<double, Cpu>(0);
        return std::vector<Td>{add(*waiting, own)};
      }
      return std::vector<Td>{own};
    });
  };
  for (const bool absorb : {false, true}) {
    INFO("absorb " << absorb);
    Td x = Td::from_vector({1.0, -2.0, 0.5});
    x.requires_grad_();
    Td h = mul(x, 3.0);
    Td y = add(h, f(h, absorb));
    sum(mul(y, Td::from_vector({1.0, 10.0, 100.0}))).backward();
    check_values(x.grad().to_vector(), {9.0, 90.0, 900.0}, 1e-12);  // dy/dx = 3 · (1 + 2)
  }
  CHECK(saw_pending == 2);
  CHECK(absorbed == 1);
  // Outside the engine, or where no gradient waits, there is nothing to absorb.
  CHECK((detail::pending_grad<double, Cpu>(0) == nullptr));
  CHECK_THROWS_AS((detail::absorb_pending_grad<double, Cpu>(0)), vts::Error);
  Td x = Td::from_vector({1.0, 2.0});
  x.requires_grad_();
  saw_pending = 0;
  sum(f(x, true)).backward();
  CHECK(saw_pending == 0);
  check_values(x.grad().to_vector(), {2.0, 2.0});
}

TEST_CASE("gradients reach only inputs that require them", "[autograd]") {
  Td a = uniform({2, 3}, 5), b = uniform({3, 2}, 6);
  a.requires_grad_();
  sum(matmul(a, b)).backward();
  CHECK(a.grad().defined());
  CHECK_FALSE(b.grad().defined());
  CHECK(a.is_leaf());
  CHECK_THROWS_AS(mul(a, 2.0).requires_grad_(false), Error);
}

// ---- shape errors name both shapes ------------------------------------------------------------------

TEST_CASE("shape mismatch errors name both shapes", "[autograd][errors]") {
  const Td a = Td::zeros({2, 3}), b = Td::zeros({4}), m = Td::zeros({4, 5});
  SECTION("add") { CHECK_THROWS_WITH(add(a, b), Contains("[2, 3]") && Contains("[4]")); }
  SECTION("mul (broadcast)") { CHECK_THROWS_AS(mul(Td::zeros({2, 3}), Td::zeros({3, 2})), ShapeError); }
  SECTION("broadcasting ops name themselves") {
    CHECK_THROWS_WITH(a + b, StartsWith("add: ") && Contains("[2, 3]") && Contains("[4]"));
    CHECK_THROWS_WITH(a - b, StartsWith("sub: "));
    CHECK_THROWS_WITH(a * b, StartsWith("mul: "));
    CHECK_THROWS_WITH(a / b, StartsWith("div: "));
    CHECK_THROWS_WITH(maximum(a, b), StartsWith("maximum: "));
  }
  SECTION("matmul") { CHECK_THROWS_WITH(matmul(a, m), Contains("[2, 3]") && Contains("[4, 5]")); }
  SECTION("matmul batch dimensions") {
    // Not only the batch dims ([2] and [3]): the operands as the caller passed them.
    CHECK_THROWS_WITH(matmul(Td::zeros({2, 3, 4}), Td::zeros({3, 4, 5})),
                      StartsWith("matmul") && Contains("[2, 3, 4]") && Contains("[3, 4, 5]"));
  }
  SECTION("linear input") {
    CHECK_THROWS_WITH(linear(a, m), Contains("[2, 3]") && Contains("[4, 5]"));
  }
  SECTION("linear bias") {
    CHECK_THROWS_WITH(linear(a, Td::zeros({4, 3}), Td::zeros({5})), Contains("[5]") && Contains("[4]"));
  }
  SECTION("layer_norm") {
    CHECK_THROWS_WITH(layer_norm(a, Td::ones({4}), Td::zeros({3}), 1e-5),
                      Contains("[2, 3]") && Contains("[4]") && Contains("[3]"));
  }
  SECTION("0-d input to a row-wise op names the op") {
    const Td scalar = Td::scalar(1.0);
    CHECK_THROWS_WITH(softmax(scalar), StartsWith("softmax: ") && Contains("0-d"));
    CHECK_THROWS_WITH(log_softmax(scalar), StartsWith("log_softmax: ") && Contains("0-d"));
    CHECK_THROWS_WITH(layer_norm(scalar, Td::ones({1}), Td::zeros({1}), 1e-5), StartsWith("layer_norm: "));
    CHECK_THROWS_WITH(add_layer_norm(scalar, scalar, Td::ones({1}), Td::zeros({1}), 1e-5),
                      StartsWith("add_layer_norm: "));
  }
  SECTION("concat") {
    CHECK_THROWS_WITH((concat<double, Cpu>({a, Td::zeros({2, 4})}, 0)), Contains("[2, 3]") && Contains("[2, 4]"));
    CHECK_NOTHROW(concat<double, Cpu>({a, Td::zeros({2, 4})}, 1));
  }
  SECTION("reshape") { CHECK_THROWS_WITH(a.reshape({4}), Contains("[2, 3]") && Contains("[4]")); }
  SECTION("attention") {
    CHECK_THROWS_WITH(attention(Td::zeros({1, 1, 3, 2}), Td::zeros({1, 1, 4, 2}), Td::zeros({1, 1, 3, 2})),
                      Contains("[1, 1, 3, 2]") && Contains("[1, 1, 4, 2]"));
  }
  SECTION("binary_cross_entropy") {
    CHECK_THROWS_WITH(binary_cross_entropy(a, Td::zeros({3, 2})), Contains("[2, 3]") && Contains("[3, 2]"));
  }
  SECTION("errors are ShapeError, a vts::Error") {
    CHECK_THROWS_AS(add(a, b), ShapeError);
    CHECK_THROWS_AS(a.reshape({4}), Error);
  }
}

TEST_CASE("index errors say which index and which range", "[autograd][errors]") {
  const Td x = Td::zeros({3, 2});
  CHECK_THROWS_WITH(index_select(x, std::vector<int64_t>{0, 3}), Contains("3") && Contains("[0, 3)"));
  CHECK_THROWS_WITH(cross_entropy(x, std::vector<int64_t>{0, 5, 1}), Contains("5") && Contains("[0, 2)"));
  CHECK_THROWS_WITH(x.select(0, 3), Contains("[3, 2]"));
  CHECK_THROWS_WITH(x.permute({0, 0}), Contains("repeated"));
  CHECK_THROWS_AS(dropout(x, 1.0, true), Error);
}

TEST_CASE("binary_cross_entropy refuses a p outside [0, 1], as PyTorch does", "[autograd][errors][loss]") {
  const Td t = Td::zeros({2, 2});
  const auto with_p = [](std::vector<double> v) { return Td::from_vector(v, {2, 2}); };
  CHECK_THROWS_WITH(binary_cross_entropy(with_p({0.5, -0.25, 0.5, 0.5}), t),
                    Contains("expected every probability in [0, 1], found -0.25 at element 1 of 4"));
  CHECK_THROWS_WITH(binary_cross_entropy(with_p({0.5, 0.5, 0.5, 1.5}), t), Contains("found 1.5 at element 3 of 4"));
  CHECK_THROWS_WITH(binary_cross_entropy(with_p({0.5, 0.5, std::nan(""), 0.5}), t), Contains("found nan at element 2"));
  // A transposed view is checked in its own order: element 1 of p.t() is p[1][0].
  CHECK_THROWS_WITH(binary_cross_entropy(with_p({0.5, 0.5, 2.0, 0.5}).t(), t), Contains("found 2 at element 1 of 4"));
  // The ends of the range are probabilities: two exact answers (0) and two wrong ones (each log
  // clamped at -100), mean 50.
  CHECK(binary_cross_entropy(with_p({0.0, 1.0, 0.0, 1.0}), Td::from_vector({0, 1, 1, 0}, {2, 2})).item() ==
        Approx(50.0));
}

TEST_CASE("cast converts element types and carries the gradient across the dtype boundary", "[autograd][cast]") {
  SECTION("float -> double -> loss: the float leaf gets d(loss)/dx") {
    Tf x = Tf::from_vector({0.5f, -1.25f, 3.0f});
    x.requires_grad_();
    const Td y = cast<double>(mul(x, 2.0f));
    CHECK(y.requires_grad());
    sum(mul(y, y)).backward();  // d/dx (2x)^2 = 8x
    const auto g = x.grad().to_vector();
    REQUIRE(g.size() == 3);
    CHECK(g[0] == 4.0f);
    CHECK(g[1] == -10.0f);
    CHECK(g[2] == 24.0f);
  }
  SECTION("a leaf reached both directly and through a double -> float -> double round trip") {
    // y = f(x)·x with f the float rounding. The direct edge brings g·f(x); the round trip brings
    // g·x, itself rounded to float on the way back: both terms are float(x).
    const Td x = uniform({3, 2}, 5);
    Td leaf = x.detach();
    leaf.requires_grad_();
    sum(mul(cast<double>(cast<float>(leaf)), leaf)).backward();
    const auto g = leaf.grad().to_vector(), v = x.to_vector();
    for (size_t i = 0; i < v.size(); ++i) CHECK(g[i] == 2.0 * static_cast<double>(static_cast<float>(v[i])));
  }
  SECTION("bf16 rounds to nearest even and the gradient comes back as bf16") {
    using Tb = Tensor<bf16>;
    const std::vector<float> values{1.0f, 1.00390625f, 1.01171875f, -3.5f, 1e-3f};
    const Tf xf = Tf::from_vector(values);
    const Tb xb = cast<bf16>(xf);
    const auto rounded = xb.to_vector();
    for (size_t i = 0; i < values.size(); ++i) CHECK(rounded[i].bits == bf16(values[i]).bits);
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even neighbour, 1.
    CHECK(static_cast<float>(rounded[1]) == 1.0f);
    Tb leaf = xb.detach();
    leaf.requires_grad_();
    const Tf up = cast<float>(leaf);
    sum(mul(up, 3.0f)).backward();
    for (const bf16 g : leaf.grad().to_vector()) CHECK(static_cast<float>(g) == 3.0f);
  }
  SECTION("same type: the tensor itself") {
    Tf x = Tf::from_vector({1.0f});
    CHECK(cast<float>(x).impl() == x.impl());
  }
  SECTION("a second backward through one cast source reports the freed graph") {
    Tf x = Tf::from_vector({1.0f, 2.0f});
    x.requires_grad_();
    const Tf h = mul(x, 2.0f);
    const Td a = cast<double>(h), b = cast<double>(h);
    CHECK_THROWS_WITH(sum(add(a, b)).backward(), Contains("already freed"));
  }
}

// The same against finite differences: double → float → double, with float ops between and the
// leaf also used directly. Float rounding (about 6e-8 of each value) limits the differences, so the
// step is 3e-3 and the tolerance 1e-4 + 1e-3 relative; a wrong backward is off by O(1).
TEST_CASE("grad: cast, finite differences across a float round trip", "[grad][autograd][cast]") {
  GradcheckOptions loose;
  loose.eps = 3e-3;
  loose.atol = 1e-4;
  loose.rtol = 1e-3;
  check_grad([](auto& in) { return cast<double>(vts::tanh(mul(cast<float>(in[0]), 1.5f))); },
             {uniform({2, 3}, 341, -1.5, 1.5)}, loose);
  check_grad([](auto& in) { return mul(cast<double>(vts::exp(cast<float>(in[0]).t())), in[1]); },
             {uniform({3, 2}, 342), uniform({2, 3}, 343)}, loose);
  // A float leaf can't be gradchecked (gradcheck runs in double); the float side is checked as a
  // composite between two casts instead, with an upstream double op on each side.
  check_grad([](auto& in) {
    const Tf h = cast<float>(mul(in[0], in[1]));
    return vts::sqrt(add(cast<double>(mul(h, h)), 1.0));
  }, {uniform({4}, 344), uniform({4}, 345)}, loose);
}

// In-place writes are not recorded, so a write between the forward and the backward pass to a
// tensor an op kept would change the gradient without a word (the old behaviour: z = sum(x·y);
// y.fill_(5); z.backward() gave dz/dx = 5). Each library write counts a version of the storage and
// the op's backward refuses a tensor whose version moved, naming the op.
TEST_CASE("a tensor saved for backward and written in place afterwards makes backward throw", "[autograd][errors]") {
  auto x = Tf::from_vector({1, 2, 3}).requires_grad_();

  SECTION("fill_ on a saved input, through any view of its storage") {
    Tf y = Tf::from_vector({4, 5, 6});
    Tf z = sum(mul(x, y));
    y.reshape(Shape{3, 1}).fill_(5.0f);
    CHECK_THROWS_AS(z.backward(), ModifiedSavedTensorError);
    CHECK_THROWS_WITH(z.backward(), Contains("backward of 'mul'") && Contains("shape [3]") &&
                                        Contains("written in place"));
  }
  SECTION("copy_ into a saved output") {
    Tf y = exp(x);  // exp keeps its output
    Tf z = sum(y);
    y.detach().copy_(Tf::zeros({3}));
    CHECK_THROWS_AS(z.backward(), ModifiedSavedTensorError);
  }
  SECTION("index_copy_ into a saved bank") {
    Tf bank = Tf::zeros({4, 3});
    Tf z = sum(matmul(x.reshape(Shape{1, 3}), bank.t()));
    index_copy_(bank, {2}, Tf::ones({1, 3}));
    CHECK_THROWS_AS(z.backward(), ModifiedSavedTensorError);
  }
  SECTION("an optimizer step between the forward and the backward") {
    Tf w = Tf::ones({2, 3}).requires_grad_();
    Tf z = sum(linear(x, w));  // dx needs w
    w.set_grad(Tf::ones({2, 3}));
    optim::Sgd<float> opt({w}, {.lr = 0.1});
    opt.step();
    CHECK_THROWS_AS(z.backward(), ModifiedSavedTensorError);
  }
  SECTION("writes that do not change the gradient are allowed") {
    Tf y = Tf::from_vector({4, 5, 6});
    Tf z = sum(add(x, y));  // add keeps nothing
    y.fill_(0.0f);
    Tf w = Tf::ones({2, 3});
    Tf z2 = sum(linear(x.detach(), w.requires_grad_()));  // dw needs x, not w
    w.detach().fill_(2.0f);
    z.backward();
    z2.backward();
    CHECK(x.grad().to_vector() == std::vector<float>{1, 1, 1});
    CHECK(w.grad().to_vector() == std::vector<float>{1, 2, 3, 1, 2, 3});
  }
  SECTION("writes before the forward pass are allowed") {
    Tf y = Tf::from_vector({4, 5, 6});
    y.fill_(2.0f);
    sum(mul(x, y)).backward();
    CHECK(x.grad().to_vector() == std::vector<float>{2, 2, 2});
  }
}
