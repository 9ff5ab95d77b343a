// The six hashing losses through the op layer on the device against the same losses on the CPU:
// DSH, HashNet, GreedyHash, IDHN, CSQ and DPN, each in its default semantics and behind the
// reference-compatibility switch, single- and multi-label, K = 16, 32, 64. The CSQ training-step
// test covers one loss inside a whole step; these cover what `vts train --device cuda --loss L`
// computes for every L: the loss value, its gradient with respect to the outputs u, a loss's own
// parameter gradients (GreedyHash's classifier), and its state afterwards (the memory banks,
// DPN-A's re-estimated targets).
//
// Both losses are built from the same seed, then every state tensor of the CPU loss is copied into
// the device loss by name, so the random parts (centers past the Hadamard rows, DPN's targets, tie
// bits, the classifier) agree whatever each device's initialisation does. Two calls per loss, the
// second overlapping the first's dataset indices, so the banks hold rows of both; HashNet's second
// call is at epoch 25 (scale √2). Tolerance 1e-5 relative, GEMMs with TF32 off: the losses are
// short chains of maps, sums and small products whose rounding differs only in summation order and
// in the device's exp/log/tanh.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"
#include "vts/backend/cuda/gemm.hpp"
#include "vts/hash/losses.hpp"

using namespace vts;
using namespace vts::cuda::test;

namespace {

using Cfg = hash::loss::Config;

// Every state tensor of a loss, by name, as floats.
template <class Loss>
std::map<std::string, std::pair<std::vector<float>, Shape>> state_of(Loss& loss) {
  std::map<std::string, std::pair<std::vector<float>, Shape>> out;
  loss.state([&](const auto& name, auto& t) { out[std::string(name)] = {t.to_vector(), t.shape()}; });
  return out;
}

// Writes `values` into the state tensors of `loss` of the same names, in place.
template <class Loss>
void set_state(Loss& loss, const std::map<std::string, std::pair<std::vector<float>, Shape>>& values) {
  using Tensor = typename Loss::tensor_type;
  NoGradGuard no_grad;
  loss.state([&](const auto& name, auto& t) {
    const auto it = values.find(std::string(name));
    REQUIRE(it != values.end());
    REQUIRE(it->second.second == t.shape());
    t.detach().copy_(Tensor::from_vector(it->second.first, t.shape()));
  });
}

// One-hot rows (single-label) or multi-hot rows with at least one class each (multi-label).
std::vector<float> random_labels(Rng& rng, int64_t B, int64_t C, bool multi) {
  std::vector<float> y(static_cast<size_t>(B * C), 0.0f);
  for (int64_t i = 0; i < B; ++i) {
    const auto first = static_cast<int64_t>(rng.gen() % static_cast<uint64_t>(C));
    y[static_cast<size_t>(i * C + first)] = 1.0f;
    if (!multi) continue;
    for (int64_t c = 0; c < C; ++c)
      if (rng.gen() % 4 == 0) y[static_cast<size_t>(i * C + c)] = 1.0f;
  }
  return y;
}

std::string describe(const Cfg& cfg) {
  return "bits " + std::to_string(cfg.bits) + ", classes " + std::to_string(cfg.classes) +
         (cfg.multi_label ? ", multi-label" : ", single-label") + (cfg.reference_compat ? ", reference_compat" : "");
}

// The loss L on device G against L on the CPU, as described at the top of the file.
template <template <class, class> class L, class G>
void check_loss(const Cfg& cfg, uint64_t seed, bool dpn_adaptive = false) {
  using Ref = L<float, Cpu>;
  using Dev = L<float, G>;
  INFO(Ref::name << ": " << describe(cfg) << (dpn_adaptive ? ", adaptive targets" : "") << ", seed " << seed);
  Generator gen_cpu(seed), gen_dev(seed);
  Ref ref(cfg, gen_cpu);
  Dev dev(cfg, gen_dev);
  if constexpr (requires { ref.adaptive_targets; }) {
    ref.adaptive_targets = dpn_adaptive;
    dev.adaptive_targets = dpn_adaptive;
  }
  set_state(dev, state_of(ref));

  Rng rng(seed);
  const int64_t B = 8, K = cfg.bits, C = cfg.classes;
  for (int call = 0; call < 2; ++call) {
    INFO("call " << call);
    std::vector<int64_t> indices;
    for (int64_t i = 0; i < B; ++i) indices.push_back(call * B / 2 + i);  // 0..7, then 4..11
    const auto u = rng.normal(static_cast<size_t>(B * K));
    const auto y = random_labels(rng, B, C, cfg.multi_label);
    const int epoch = call == 0 ? 0 : 25;
    auto u_ref = Tensor<float, Cpu>::from_vector(u, Shape{B, K}).requires_grad_();
    auto u_dev = Tensor<float, G>::from_vector(u, Shape{B, K}).requires_grad_();
    const auto loss_ref = ref(u_ref, Tensor<float, Cpu>::from_vector(y, Shape{B, C}), indices, epoch);
    const auto loss_dev = dev(u_dev, Tensor<float, G>::from_vector(y, Shape{B, C}), indices, epoch);
    INFO("loss cpu " << loss_ref.item() << " device " << loss_dev.item());
    CHECK(std::isfinite(loss_dev.item()));
    CHECK(rel_err(std::vector<float>{loss_dev.item()}, std::vector<float>{loss_ref.item()}) < 1e-5);
    REQUIRE(loss_ref.requires_grad());
    REQUIRE(loss_dev.requires_grad());
    loss_ref.backward();
    loss_dev.backward();
    REQUIRE(u_dev.grad().defined());
    CHECK(rel_err(u_dev.grad().to_vector(), u_ref.grad().to_vector()) < 1e-5);
    auto params_ref = ref.parameters();
    auto params_dev = dev.parameters();
    REQUIRE(params_ref.size() == params_dev.size());
    for (size_t p = 0; p < params_ref.size(); ++p) {
      INFO("parameter " << p);
      REQUIRE(params_dev[p].grad().defined());
      CHECK(rel_err(params_dev[p].grad().to_vector(), params_ref[p].grad().to_vector()) < 1e-5);
    }
  }
  if constexpr (requires { ref.end_epoch(); }) {
    ref.end_epoch();
    dev.end_epoch();
  }
  const auto state_ref = state_of(ref), state_dev = state_of(dev);
  REQUIRE(state_ref.size() == state_dev.size());
  for (const auto& [name, value] : state_ref) {
    INFO("state " << name);
    REQUIRE(state_dev.count(name) == 1);
    CHECK(state_dev.at(name).second == value.second);
    CHECK(rel_err(state_dev.at(name).first, value.first) < 1e-6);
  }
}

Cfg config(int64_t bits, int64_t classes, bool multi_label, bool reference_compat) {
  Cfg cfg;
  cfg.bits = bits;
  cfg.classes = classes;
  cfg.train_size = 16;  // dataset indices 0..11 are used
  cfg.multi_label = multi_label;
  cfg.reference_compat = reference_compat;
  return cfg;
}

template <class G>
void check_all_losses(uint64_t seed) {
  const std::vector<Cfg> configs = {config(16, 10, false, false), config(32, 21, true, false),
                                    config(64, 10, false, true), config(64, 21, true, true)};
  uint64_t s = seed;
  for (const Cfg& cfg : configs) {
    check_loss<hash::loss::Dsh, G>(cfg, ++s);
    check_loss<hash::loss::HashNet, G>(cfg, ++s);
    check_loss<hash::loss::GreedyHash, G>(cfg, ++s);
    check_loss<hash::loss::Idhn, G>(cfg, ++s);
    check_loss<hash::loss::Csq, G>(cfg, ++s);
    check_loss<hash::loss::Dpn, G>(cfg, ++s);
    check_loss<hash::loss::Dpn, G>(cfg, ++s, /*dpn_adaptive=*/true);
  }
}

}  // namespace

TEST_CASE("the six hashing losses: values, gradients and state match the CPU", "[losses]") {
  Tf32Off strict;
  check_all_losses<Cuda>(fresh_seed());
}
