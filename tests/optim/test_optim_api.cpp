// Optimizer behaviour beyond the golden numbers: the parameter list's rules, skipped parameters,
// state export/import, thread-count independence, and schedules driving the learning rate.
#include <catch2/catch.hpp>

#include <cstring>
#include <map>
#include <vector>

#include "../common/thread_count.hpp"
#include "optim_test_util.hpp"
#include "vts/backend/cpu/parallel.hpp"
#include "vts/ops/elementwise.hpp"
#include "vts/ops/reduce.hpp"
#include "vts/optim/optim.hpp"

namespace {

using vts::Shape;
using vts::Tensor;
namespace optim = vts::optim;

Tensor<double> leaf(std::vector<double> v, Shape s) {
  Tensor<double> t = Tensor<double>::from_vector(v, s);
  t.requires_grad_();
  return t;
}

// Deterministic, irregular values (no RNG needed): element i of stream k.
std::vector<double> wave(size_t n, int k) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::sin(0.37 * double(i) + 1.7 * k) * (1.0 + 0.5 * std::cos(0.11 * double(i * (k + 1))));
  return v;
}

template <class Optim>
void feed_and_step(Optim& opt, std::vector<Tensor<double>>& params, int k) {
  opt.zero_grad();
  for (size_t i = 0; i < params.size(); ++i)
    params[i].set_grad(Tensor<double>::from_vector(wave(size_t(params[i].numel()), k + int(i)), params[i].shape()));
  opt.step();
}

bool bitwise_equal(const Tensor<double>& a, const Tensor<double>& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  return va.size() == vb.size() && std::memcmp(va.data(), vb.data(), va.size() * sizeof(double)) == 0;
}

}  // namespace

TEST_CASE("ParamList rejects op outputs and strided views", "[optim][params]") {
  Tensor<double> w = leaf(wave(6, 0), Shape{2, 3});
  Tensor<double> y = vts::mul(w, 2.0);
  CHECK_THROWS_WITH(optim::ParamList<double>({y}), Catch::Contains("output of an op"));
  Tensor<double> view;
  {
    vts::NoGradGuard no_grad;  // a view taken outside the graph is a leaf, but strided
    view = w.transpose(0, 1);
  }
  CHECK_THROWS_WITH(optim::ParamList<double>({view}), Catch::Contains("not contiguous"));
  CHECK_THROWS_WITH(optim::ParamList<double>({Tensor<double>()}), Catch::Contains("undefined"));
  optim::ParamList<double> list{w, leaf({1, 2}, Shape{2})};
  CHECK(list.size() == 2);
  CHECK(list.numel() == 8);
}

// Tied weights: one tensor used twice in the forward pass and listed twice (as a model's visit()
// names it under both layers). The list keeps it once, at its first place, so one step() moves it
// once by the gradient of both uses — not twice, and not refused.
TEST_CASE("ParamList keeps a tensor listed twice once: tied weights take one step", "[optim][params]") {
  Tensor<double> w = leaf(wave(6, 3), Shape{2, 3}), b = leaf(wave(3, 4), Shape{3});
  const auto w_before = w.to_vector();
  optim::ParamList<double> list({w, b, w});
  REQUIRE(list.size() == 2);
  CHECK(list[0].impl() == w.impl());
  CHECK(list[1].impl() == b.impl());
  CHECK(list.numel() == 9);

  // loss = Σ w·x + Σ w·w (two uses of w): d loss / d w = x + 2w, summed by the engine into one grad.
  const Tensor<double> x = Tensor<double>::from_vector(wave(6, 5), Shape{2, 3});
  vts::add(vts::sum(vts::mul(w, x)), vts::add(vts::sum(vts::mul(w, w)), vts::sum(b))).backward();
  const auto g = w.grad().to_vector(), xs = x.to_vector();
  for (size_t i = 0; i < g.size(); ++i) REQUIRE(g[i] == Approx(xs[i] + 2 * w_before[i]).epsilon(1e-12));
  optim::Sgd<double> sgd(list, {.lr = 0.1});
  sgd.step();
  const auto w_after = w.to_vector();
  for (size_t i = 0; i < w_after.size(); ++i) CHECK(w_after[i] == Approx(w_before[i] - 0.1 * g[i]).epsilon(1e-12));
}

TEST_CASE("zero_grad drops gradients, and step leaves parameters without a gradient untouched", "[optim][params]") {
  Tensor<double> a = leaf(wave(5, 1), Shape{5}), b = leaf(wave(3, 2), Shape{3});
  const auto b_before = b.to_vector();
  optim::Adam<double> opt({a, b}, {.lr = 0.1});
  // A real backward pass that reaches only `a`.
  vts::sum(vts::mul(a, a)).backward();
  REQUIRE(a.grad().defined());
  REQUIRE_FALSE(b.grad().defined());
  opt.step();
  CHECK(b.to_vector() == b_before);
  CHECK(opt.step_count(0) == 1);
  CHECK(opt.step_count(1) == 0);
  CHECK_FALSE(opt.buffer(1, "exp_avg").defined());
  for (const auto& [name, t] : opt.state()) CHECK(name.rfind("1.", 0) != 0);  // no state for b
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
  // With every gradient gone, a step changes nothing but the step() counter.
  const auto a_before = a.to_vector();
  opt.step();
  CHECK(a.to_vector() == a_before);
  CHECK(opt.steps() == 2);
  CHECK(opt.step_count(0) == 1);
}

TEST_CASE("Adam first step moves each coordinate by lr·sign(g) (bias correction)", "[optim][adam]") {
  // m̂ = g and v̂ = g² after one step, so the move is lr·g/(|g| + eps): a closed form.
  Tensor<double> p = leaf({1.0, -2.0, 0.5, 3.0}, Shape{4});
  optim::Adam<double> opt({p}, {.lr = 0.01, .eps = 0.0});
  p.set_grad(Tensor<double>::from_vector({0.3, -4.0, 1e-3, -7.5}, Shape{4}));
  opt.step();
  const auto v = p.to_vector();
  CHECK(v[0] == Approx(0.99).epsilon(1e-14));
  CHECK(v[1] == Approx(-1.99).epsilon(1e-14));
  CHECK(v[2] == Approx(0.49).epsilon(1e-14));
  CHECK(v[3] == Approx(3.01).epsilon(1e-14));
}

TEST_CASE("state() then load_state() into a fresh optimizer continues bit-identically", "[optim][state]") {
  auto check_resume = [](auto make) {
    std::vector<Tensor<double>> run{leaf(wave(7, 3), Shape{7}), leaf(wave(12, 4), Shape{3, 4})};
    auto straight = make(run);
    for (int k = 0; k < 3; ++k) feed_and_step(straight, run, k);
    // Checkpoint: parameter values and optimizer state, copied out.
    std::vector<Tensor<double>> resumed;
    for (const auto& p : run) {
      resumed.push_back(p.clone_nograd());
      resumed.back().requires_grad_();
    }
    const auto saved = straight.state();
    auto restarted = make(resumed);
    restarted.load_state(saved);
    CHECK(restarted.steps() == 3);
    for (int k = 3; k < 6; ++k) {
      feed_and_step(straight, run, k);
      feed_and_step(restarted, resumed, k);
    }
    for (size_t i = 0; i < run.size(); ++i) CHECK(bitwise_equal(run[i], resumed[i]));
    // The exported tensors are copies: changing one does not reach the optimizer.
    auto exported = restarted.state();
    for (auto& [name, t] : exported)
      if (name != "step") t.fill_(123.0);
    const auto again = restarted.state();
    bool untouched = true;
    for (const auto& [name, t] : again)
      if (name != "step" && t.to_vector()[0] == 123.0) untouched = false;
    CHECK(untouched);
  };
  SECTION("Sgd with Nesterov momentum") {
    check_resume([](const auto& ps) {
      return optim::Sgd<double>(ps, {.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3, .nesterov = true});
    });
  }
  SECTION("Rmsprop centered with momentum") {
    check_resume([](const auto& ps) {
      return optim::Rmsprop<double>(ps, {.lr = 0.01, .momentum = 0.3, .centered = true});
    });
  }
  SECTION("Adam amsgrad") {
    check_resume([](const auto& ps) { return optim::Adam<double>(ps, {.lr = 0.01, .amsgrad = true}); });
  }
  SECTION("AdamW") {
    check_resume([](const auto& ps) { return optim::AdamW<double>(ps, {.lr = 0.01}); });
  }
}

// adopt_state (what the checkpoint reader calls, with tensors it made for the optimizer) keeps the
// tensors it is given instead of copying them, except one it could not update in place: strided.
TEST_CASE("adopt_state keeps the given contiguous tensors as buffers and continues bit-identically",
          "[optim][state]") {
  std::vector<Tensor<double>> run{leaf(wave(7, 3), Shape{7}), leaf(wave(12, 4), Shape{3, 4})};
  optim::Adam<double> straight(run, {.lr = 0.01});
  for (int k = 0; k < 3; ++k) feed_and_step(straight, run, k);
  std::vector<Tensor<double>> resumed;
  for (const auto& p : run) {
    resumed.push_back(p.clone_nograd());
    resumed.back().requires_grad_();
  }
  auto given = straight.state();  // copies, made for the new optimizer
  const double* kept = nullptr;
  const double* strided = nullptr;
  for (auto& [name, t] : given) {
    if (name == "0.exp_avg") kept = t.data();
    if (name == "1.exp_avg") {
      t = t.t().clone_nograd().t();  // the same values as a transposed view
      REQUIRE_FALSE(t.is_contiguous());
      strided = t.data();
    }
  }
  REQUIRE((kept && strided));
  optim::Adam<double> restarted(resumed, {.lr = 0.01});
  restarted.adopt_state(std::move(given));
  CHECK(restarted.buffer(0, "exp_avg").data() == kept);
  CHECK(restarted.buffer(1, "exp_avg").data() != strided);
  CHECK(restarted.buffer(1, "exp_avg").is_contiguous());
  CHECK(restarted.steps() == 3);
  for (int k = 3; k < 6; ++k) {
    feed_and_step(straight, run, k);
    feed_and_step(restarted, resumed, k);
  }
  for (size_t i = 0; i < run.size(); ++i) CHECK(bitwise_equal(run[i], resumed[i]));
}

TEST_CASE("state names follow PyTorch and load_state rejects what does not fit", "[optim][state]") {
  Tensor<double> a = leaf(wave(4, 5), Shape{4}), b = leaf(wave(6, 6), Shape{2, 3});
  optim::Adam<double> adam({a, b}, {.lr = 0.01});
  a.set_grad(Tensor<double>::ones(Shape{4}));
  b.set_grad(Tensor<double>::ones(Shape{2, 3}));
  adam.step();
  adam.step();
  std::map<std::string, Tensor<double>> by_name;
  for (const auto& [name, t] : adam.state()) by_name[name] = t;
  CHECK(by_name.size() == 7);  // step + 2 × (step, exp_avg, exp_avg_sq)
  CHECK(by_name.at("step").item() == 2.0);
  CHECK(by_name.at("1.step").item() == 2.0);
  CHECK(by_name.at("1.exp_avg").shape() == Shape{2, 3});
  CHECK(by_name.at("0.exp_avg_sq").shape() == Shape{4});

  optim::Sgd<double> sgd({a, b}, {.lr = 0.1, .momentum = 0.9});
  CHECK_THROWS_WITH(sgd.load_state(adam.state()), Catch::Contains("'exp_avg'"));

  optim::Adam<double> other({a, b}, {.lr = 0.01});
  using NT = optim::NamedTensors<double>;
  CHECK_THROWS_WITH(other.load_state(NT{{"0.exp_avg", Tensor<double>::zeros(Shape{5})}, {"0.step", Tensor<double>::scalar(1)}}),
                    Catch::Contains("has shape [5]"));
  CHECK_THROWS_WITH(other.load_state(NT{{"2.step", Tensor<double>::scalar(1)}}), Catch::Contains("parameter 2"));
  CHECK_THROWS_WITH(other.load_state(NT{{"0.exp_avg", Tensor<double>::zeros(Shape{4})}}), Catch::Contains("no '0.step'"));
  CHECK_THROWS_WITH(other.load_state(NT{{"0.step", Tensor<double>::scalar(1.5)}}), Catch::Contains("whole number"));
  CHECK_THROWS_WITH(other.load_state(NT{{"exp_avg", Tensor<double>::scalar(1)}}), Catch::Contains("is not 'step'"));
  // A rejected load leaves the optimizer as it was.
  CHECK(other.steps() == 0);
  CHECK_FALSE(other.buffer(0, "exp_avg").defined());
  CHECK_THROWS_WITH(other.buffer(0, "momentum_buffer"), Catch::Contains("keeps: exp_avg, exp_avg_sq"));

  // Rmsprop's buffers depend on its options; a centered state does not load into a plain one.
  optim::Rmsprop<double> centered({a}, {.centered = true});
  a.set_grad(Tensor<double>::ones(Shape{4}));
  centered.step();
  optim::Rmsprop<double> plain({a}, {});
  CHECK_THROWS_WITH(plain.load_state(centered.state()), Catch::Contains("'grad_avg'"));
}

TEST_CASE("a large parameter updates the same with 1 and 2 threads", "[optim][threads]") {
  // Above the threading grain, so the update really splits; each element is independent, so the
  // results must agree bit for bit.
  const size_t n = (size_t(1) << 17) + 13;
  auto run = [&](int threads) {
    const vts_test_common::ThreadCount scope(threads);
    std::vector<Tensor<double>> ps{leaf(wave(n, 7), Shape{int64_t(n)})};
    optim::AdamW<double> opt(ps, {.lr = 0.01, .amsgrad = true});
    for (int k = 0; k < 3; ++k) feed_and_step(opt, ps, k);
    return ps[0];
  };
  const Tensor<double> one = run(1), two = run(2);
  CHECK(bitwise_equal(one, two));
}

TEST_CASE("schedules set the optimizer's learning rate", "[optim][schedule]") {
  Tensor<double> p = leaf({1.0}, Shape{1});
  optim::Sgd<double> opt({p}, {.lr = 1.0});
  const optim::StepLR step(1e-3, 30, 0.1);
  CHECK(optim::set_lr(opt, step, 0) == 1e-3);
  CHECK(opt.lr() == 1e-3);
  CHECK(optim::set_lr(opt, step, 29) == 1e-3);
  CHECK(optim::set_lr(opt, step, 30) == Approx(1e-4).epsilon(1e-15));
  CHECK(optim::set_lr(opt, step, 95) == Approx(1e-6).epsilon(1e-15));
  // The new rate is the one the next step uses: θ ← θ − lr·g.
  p.set_grad(Tensor<double>::ones(Shape{1}));
  opt.step();
  CHECK(p.item() == Approx(1.0 - 1e-6).epsilon(1e-15));

  const optim::FixedLR fixed(2.5e-5);
  CHECK(fixed(0) == 2.5e-5);
  CHECK(fixed(1000000) == 2.5e-5);

  const optim::WarmupCosineLR cosine(1e-3, 10, 110, 1e-5);
  CHECK(cosine(0) == 0.0);
  CHECK(cosine(5) == Approx(5e-4).epsilon(1e-14));
  CHECK(cosine(10) == Approx(1e-3).epsilon(1e-14));
  CHECK(cosine(60) == Approx(1e-5 + (1e-3 - 1e-5) * 0.5).epsilon(1e-14));
  CHECK(cosine(110) == Approx(1e-5).epsilon(1e-12));
  CHECK(cosine(500) == Approx(1e-5).epsilon(1e-12));  // stays at the floor past the end
  double previous = cosine(10);
  for (int64_t t = 11; t <= 110; ++t) {
    CHECK(cosine(t) <= previous);
    previous = cosine(t);
  }

  CHECK_THROWS(optim::StepLR(1e-3, 0));
  CHECK_THROWS(optim::WarmupCosineLR(1e-3, 20, 10));
  CHECK_THROWS(step(-1));
  CHECK_THROWS(opt.set_lr(-1.0));
}

TEST_CASE("optimizer options are validated", "[optim]") {
  Tensor<double> p = leaf({1.0}, Shape{1});
  CHECK_THROWS_WITH(optim::Sgd<double>({p}, {.lr = 0.1, .nesterov = true}), Catch::Contains("Nesterov"));
  CHECK_THROWS_WITH(optim::Sgd<double>({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}),
                    Catch::Contains("dampening 0"));
  CHECK_THROWS_WITH(optim::Adam<double>({p}, {.beta1 = 1.0}), Catch::Contains("beta1"));
  CHECK_THROWS_WITH(optim::AdamW<double>({p}, {.weight_decay = -1.0}), Catch::Contains("weight_decay"));
  CHECK_THROWS_WITH(optim::Rmsprop<double>({p}, {.momentum = -0.5}), Catch::Contains("momentum"));
  CHECK(optim::AdamW<double>({p}).options().weight_decay == 1e-2);  // PyTorch's AdamW default
  CHECK(optim::Adam<double>({p}).options().weight_decay == 0.0);
}
