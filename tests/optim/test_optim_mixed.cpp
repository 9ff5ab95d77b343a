// Mixed precision: optimizers over bf16 parameters keep fp32 masters and fp32 state. The masters
// must follow exactly the trajectory an fp32 optimizer takes from the same values and gradients,
// the bf16 parameters must be the masters' rounding, and updates below a bf16 ulp must add up.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "vts/ops/cast.hpp"
#include "vts/optim/optim.hpp"

namespace {

using vts::bf16;
using vts::Shape;
using vts::Tensor;
namespace optim = vts::optim;

std::vector<float> wave_f32(size_t n, int k) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<float>(std::sin(0.37 * double(i) + 1.7 * k) * (1.0 + 0.5 * std::cos(0.11 * double(i))));
  return v;
}

std::vector<bf16> to_bf16(const std::vector<float>& v) {
  std::vector<bf16> out;
  for (float x : v) out.emplace_back(x);
  return out;
}
std::vector<float> to_float(const std::vector<bf16>& v) {
  std::vector<float> out;
  for (bf16 x : v) out.push_back(static_cast<float>(x));
  return out;
}

// Runs `steps` updates of a bf16 optimizer and of an fp32 one built the same way, on parameters
// that start at the same (bf16-representable) values and receive the same bf16 gradients.
template <class MakeOpt>
void check_against_fp32(MakeOpt make, int steps) {
  const std::vector<Shape> shapes{Shape{37}, Shape{5, 16}, Shape{3}};  // a tail, whole packs, a short one
  std::vector<Tensor<bf16>> pb;
  std::vector<Tensor<float>> pf;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const auto init = to_bf16(wave_f32(size_t(shapes[i].numel()), 10 + int(i)));
    pb.push_back(Tensor<bf16>::from_vector(init, shapes[i]));
    pb.back().requires_grad_();
    pf.push_back(Tensor<float>::from_vector(to_float(init), shapes[i]));
    pf.back().requires_grad_();
  }
  auto ob = make(pb);
  auto of = make(pf);
  for (int s = 0; s < steps; ++s) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const auto g = to_bf16(wave_f32(size_t(shapes[i].numel()), s * 3 + int(i)));
      pb[i].set_grad(Tensor<bf16>::from_vector(g, shapes[i]));
      pf[i].set_grad(Tensor<float>::from_vector(to_float(g), shapes[i]));
    }
    ob.step();
    of.step();
  }
  for (size_t i = 0; i < shapes.size(); ++i) {
    INFO("parameter " << i);
    const auto master = ob.master(i).to_vector(), want = pf[i].to_vector();
    const auto live = pb[i].to_vector();
    for (size_t k = 0; k < want.size(); ++k) {
      // The CPU fp32 loop runs whole SIMD packs, the master loop one element at a time: the same
      // operations, but the compiler may contract them into FMAs differently (at -O1 under the
      // sanitizers a centered RMSprop buffer differed by just over 1e-6). A master that missed
      // an update, or one rounded through bf16, would be off by ≥ 4e-3.
      CHECK(std::abs(master[k] - want[k]) <= 1e-5f * (1.0f + std::abs(want[k])));
      REQUIRE(live[k].bits == bf16(master[k]).bits);
    }
    for (const auto& name : ob.buffer_names()) {
      const auto got = ob.buffer(i, name).to_vector(), ref = of.buffer(i, name).to_vector();
      for (size_t k = 0; k < ref.size(); ++k) CHECK(std::abs(got[k] - ref[k]) <= 1e-5f * (1.0f + std::abs(ref[k])));
    }
  }
}

}  // namespace

TEST_CASE("bf16 parameters follow the fp32 trajectory through their masters", "[optim][mixed]") {
  SECTION("AdamW") {
    check_against_fp32([](auto& ps) { return optim::AdamW<typename std::decay_t<decltype(ps[0])>::value_type>(ps, {.lr = 1e-2, .weight_decay = 0.05}); }, 4);
  }
  SECTION("Adam with amsgrad") {
    check_against_fp32([](auto& ps) { return optim::Adam<typename std::decay_t<decltype(ps[0])>::value_type>(ps, {.lr = 1e-2, .weight_decay = 1e-3, .amsgrad = true}); }, 4);
  }
  SECTION("RMSprop, centered, with momentum") {
    check_against_fp32([](auto& ps) { return optim::Rmsprop<typename std::decay_t<decltype(ps[0])>::value_type>(ps, {.lr = 1e-3, .momentum = 0.9, .centered = true}); }, 4);
  }
  SECTION("SGD with Nesterov momentum") {
    check_against_fp32([](auto& ps) { return optim::Sgd<typename std::decay_t<decltype(ps[0])>::value_type>(ps, {.lr = 0.1, .momentum = 0.9, .nesterov = true}); }, 4);
  }
}

TEST_CASE("updates smaller than a bf16 ulp accumulate in the master", "[optim][mixed]") {
  // Around 1.0 a bf16 ulp is 2^-7 = 0.0078; each SGD step below moves the weight by 0.001. Without
  // a master every step would round back to 1.0 and the weight would never move.
  Tensor<bf16> w = Tensor<bf16>::from_vector(std::vector<bf16>(4, bf16(1.0f)), Shape{4});
  w.requires_grad_();
  optim::Sgd<bf16> opt({w}, {.lr = 1e-3});
  for (int s = 0; s < 10; ++s) {
    w.set_grad(Tensor<bf16>::from_vector(std::vector<bf16>(4, bf16(1.0f)), Shape{4}));
    opt.step();
  }
  for (float m : opt.master(0).to_vector()) CHECK(std::abs(m - 0.99f) < 1e-6f);
  for (bf16 v : w.to_vector()) CHECK(static_cast<float>(v) == static_cast<float>(bf16(0.99f)));
  CHECK(static_cast<float>(bf16(0.99f)) < 1.0f);
}

TEST_CASE("a bf16 optimizer's state keeps its masters and resumes exactly", "[optim][mixed]") {
  auto make_param = [] {
    Tensor<bf16> p = Tensor<bf16>::from_vector(to_bf16(wave_f32(24, 1)), Shape{4, 6});
    p.requires_grad_();
    return p;
  };
  auto feed = [](Tensor<bf16>& p, int k) {
    p.set_grad(Tensor<bf16>::from_vector(to_bf16(wave_f32(24, k)), Shape{4, 6}));
  };
  Tensor<bf16> a = make_param();
  optim::AdamW<bf16> oa({a}, {.lr = 1e-2});
  for (int s = 0; s < 3; ++s) {
    feed(a, s);
    oa.step();
  }
  const auto state = oa.state();
  bool has_master = false;
  for (const auto& [name, t] : state) has_master = has_master || name == "0.master";
  CHECK(has_master);

  // A second model restored from the first's weights and state continues identically.
  Tensor<bf16> b = Tensor<bf16>::from_vector(a.to_vector(), Shape{4, 6});
  b.requires_grad_();
  optim::AdamW<bf16> ob({b}, {.lr = 1e-2});
  ob.load_state(state);
  for (int s = 3; s < 6; ++s) {
    feed(a, s);
    feed(b, s);
    oa.step();
    ob.step();
  }
  const auto ma = oa.master(0).to_vector(), mb = ob.master(0).to_vector();
  for (size_t k = 0; k < ma.size(); ++k) REQUIRE(ma[k] == mb[k]);

  // A master of the wrong shape is refused with both shapes named; an fp32 optimizer has no masters.
  optim::NamedTensors<float> bad{{"step", Tensor<float>::scalar(1.0f)},
                                 {"0.step", Tensor<float>::scalar(1.0f)},
                                 {"0.master", Tensor<float>::zeros(Shape{3})}};
  CHECK_THROWS_WITH(ob.load_state(bad), Catch::Matchers::Contains("[3]") && Catch::Matchers::Contains("[4, 6]"));
  Tensor<float> f = Tensor<float>::zeros(Shape{3});
  f.requires_grad_();
  optim::AdamW<float> of({f});
  CHECK_THROWS_WITH(of.load_state(bad), Catch::Matchers::Contains("'master'"));

  // reset_masters: the next update starts again from the parameter's (new) value.
  b.copy_(Tensor<bf16>::from_vector(std::vector<bf16>(24, bf16(2.0f)), Shape{4, 6}));
  ob.reset_masters();
  feed(b, 9);
  ob.step();
  for (float m : ob.master(0).to_vector()) CHECK(std::abs(m - 2.0f) < 0.05f);
}
