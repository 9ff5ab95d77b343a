// One training step of the hashing model through the op layer on Tensor<float, Cuda>: the ViT
// backbone with the all-token head, CSQ loss, backward and an AdamW step, run on the CPU and on
// the device from identical weights, inputs and dropout streams, then compared tensor by tensor:
// outputs, loss and every parameter gradient; the AdamW update is then checked against a CPU
// AdamW fed the device's gradients (1e-5).
// Then the training loop itself (Trainer::train_epoch, two epochs of a small striped dataset, with
// and without mixup): each step's reported loss against the CPU trainer's (1e-3), in order.
//
// Tolerance 1e-4 (‖out − ref‖ / ‖ref‖ per tensor), looser than the 1e-5 of the single-kernel
// tests: the step chains ~100 kernels whose float rounding differs from the CPU's in summation
// order (cuBLAS vs Eigen GEMMs, warp vs SIMD reductions) and in erf (CUDA's erff vs Eigen's
// rational approximation), and the errors add up through four blocks forward and back. GEMMs run
// with TF32 off: TF32's ≈ 1e-3 would hide every other error.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"
#include "vts/backend/cuda/gemm.hpp"
#include "vts/hash/heads.hpp"
#include "vts/hash/losses.hpp"
#if defined(VTS_TEST_WITH_DATA)
#include "stripes28.hpp"
#include "vts/data/loader.hpp"
#include "vts/hash/trainer.hpp"
#endif
#include "vts/nn/vit.hpp"
#include "vts/ops/cast.hpp"
#include "vts/ops/reduce.hpp"
#include "vts/optim/adam.hpp"

using namespace vts;
using namespace vts::cuda::test;

namespace {

constexpr double kTolStep = 1e-4;

// ViTTiny28 with 2 heads of 32: the step at head dim 32 next to ViTTiny28's own 16 (both take the
// fused attention kernels on CUDA since 2026-12-03; `cuda_ops` checks the unfused fallback).
struct ViTTiny28Heads32 {
  static constexpr const char* name = "tiny-d32";
  static constexpr int64_t image = 28, channels = 1, patch = 7, dim = 64, depth = 2, heads = 2, mlp = 256;
};

template <class Config, class D, class T = float>
using HashViT = hash::HashNetwork<nn::ViT<Config, T, D>, hash::AllTokenHead<1024, T, D>>;

// One random class per image as multi-hot rows, the dataset indices 0..B−1, and the CSQ settings:
// what both training-step checks feed the loss on each device.
struct LossInputs {
  std::vector<float> labels;
  std::vector<int64_t> indices;
  hash::loss::Config cfg;
};
LossInputs loss_inputs(Rng& rng, int64_t B, int64_t bits, int64_t classes) {
  LossInputs in;
  in.labels.assign(static_cast<size_t>(B * classes), 0.0f);
  for (int64_t i = 0; i < B; ++i) {
    const auto c = static_cast<int64_t>(rng.gen() % static_cast<uint64_t>(classes));
    in.labels[static_cast<size_t>(i * classes + c)] = 1.0f;
  }
  for (int64_t i = 0; i < B; ++i) in.indices.push_back(i);
  in.cfg.bits = bits;
  in.cfg.classes = classes;
  return in;
}

// The loss, dropout and optimizer side of one step on both devices, built from one seed: CSQ with
// the same centers, dropout generators that draw the same (seed, block) pairs — cpu::dropout_mask
// and cuda::dropout_mask turn them into the same masks, tested bit for bit in [dropout] — and
// AdamW (lr 1e-3, weight decay 0.05) over each network. Built in place: the contexts point at the
// generators.
template <class Config, class T>
struct StepParts {
  LossInputs in;
  Generator loss_gen_cpu, loss_gen_gpu, drop_cpu, drop_gpu;
  hash::loss::Csq<float, Cpu> csq_cpu;
  hash::loss::Csq<float, Cuda> csq_gpu;
  nn::Context ctx_cpu, ctx_gpu;
  optim::AdamW<float, Cpu> opt_cpu;
  optim::AdamW<T, Cuda> opt_gpu;

  StepParts(Rng& rng, uint64_t seed, int64_t B, int64_t bits, int64_t classes, HashViT<Config, Cpu>& net_cpu,
            HashViT<Config, Cuda, T>& net_gpu)
      : in(loss_inputs(rng, B, bits, classes)),
        loss_gen_cpu(seed + 1),
        loss_gen_gpu(seed + 1),
        drop_cpu(seed + 2),
        drop_gpu(seed + 2),
        csq_cpu(in.cfg, loss_gen_cpu),
        csq_gpu(in.cfg, loss_gen_gpu),
        ctx_cpu{true, &drop_cpu},
        ctx_gpu{true, &drop_gpu},
        opt_cpu(nn::parameters(net_cpu), adamw()),
        opt_gpu(nn::parameters(net_gpu), adamw()) {}
  static optim::AdamWOptions adamw() { return {.lr = 1e-3, .weight_decay = 0.05}; }
};

std::vector<float> as_float(const std::vector<bf16>& v) {
  std::vector<float> out;
  out.reserve(v.size());
  for (bf16 x : v) out.push_back(static_cast<float>(x));
  return out;
}

// The hash head's ReLU is the step's one kink: a pre-activation nearer 0 than the two devices'
// rounding (≈ 5e-7 of its rms here) can take the other branch on one of them, and then every
// gradient below the head moves by ~3e-3 while u and the loss still agree (one seed in ~300 did
// this). So before the weights are copied, any unit with a pre-activation within 1e-5 of the rms
// of 0 has its fc1 bias moved away from it on the CPU network; the step is then well conditioned.
// The pre-activations are those of the step's forward: the same images and dropout generator.
template <class Config>
void keep_head_relu_off_its_kink(HashViT<Config, Cpu>& net, const Tensor<float, Cpu>& x, uint64_t dropout_seed) {
  NoGradGuard no_grad;
  auto& fc1 = net.head.fc1;
  const int64_t hidden = fc1.out_features();
  for (int attempt = 0; attempt < 8; ++attempt) {
    Generator gen(dropout_seed);
    nn::Context ctx{true, &gen};
    const auto tokens = net.backbone.forward(x, ctx);
    const auto flat = tokens.reshape(Shape{tokens.size(0), -1});
    const std::vector<float> z = fc1.forward(dropout(flat, net.head.dropout_p, true, gen)).to_vector();
    double sq = 0;
    for (float v : z) sq += double(v) * v;
    const double margin = 1e-5 * std::sqrt(sq / static_cast<double>(z.size()));
    std::vector<float> bias = fc1.bias.to_vector();
    bool moved = false;
    for (size_t i = 0; i < z.size(); ++i)
      if (std::abs(z[i]) < margin) {
        bias[i % static_cast<size_t>(hidden)] += static_cast<float>((z[i] >= 0 ? 4 : -4) * margin);
        moved = true;
      }
    if (!moved) return;
    UNSCOPED_INFO("moved the head's fc1 bias off the ReLU's kink (attempt " << attempt << ")");
    fc1.bias.detach().copy_(Tensor<float, Cpu>::from_vector(bias, fc1.bias.shape()));
  }
  FAIL("the head's pre-activations stay within 1e-5 of the rms of 0 after 8 moves of the bias");
}

template <class Config>
void check_training_step(uint64_t seed) {
  INFO("config " << Config::name << " seed " << seed);
  Rng rng(seed);
  constexpr int64_t B = 8, bits = 64, classes = 10;

  Generator init_cpu(seed), init_gpu(seed ^ 0xABCDull);  // the device weights are overwritten below
  HashViT<Config, Cpu> net_cpu(bits, init_cpu);
  HashViT<Config, Cuda> net_gpu(bits, init_gpu);
  const auto pixels = rng.normal(static_cast<size_t>(B * Config::channels * Config::image * Config::image));
  const Shape image_shape{B, Config::channels, Config::image, Config::image};
  const auto x_cpu = Tensor<float, Cpu>::from_vector(pixels, image_shape);
  keep_head_relu_off_its_kink(net_cpu, x_cpu, seed + 2);  // StepParts' dropout generators: seed + 2
  auto params_cpu = nn::named_parameters(net_cpu);
  auto params_gpu = nn::named_parameters(net_gpu);
  REQUIRE(params_cpu.size() == params_gpu.size());
  {
    NoGradGuard no_grad;
    for (size_t i = 0; i < params_cpu.size(); ++i) {
      REQUIRE(params_cpu[i].first == params_gpu[i].first);
      const auto& c = params_cpu[i].second;
      params_gpu[i].second.detach().copy_(Tensor<float, Cuda>::from_vector(c.to_vector(), c.shape()));
    }
  }

  StepParts<Config, float> parts(rng, seed, B, bits, classes, net_cpu, net_gpu);
  const auto& [labels, indices, cfg] = parts.in;

  const auto x_gpu = Tensor<float, Cuda>::from_vector(pixels, image_shape);
  const auto u_cpu = net_cpu.forward(x_cpu, parts.ctx_cpu);
  const auto u_gpu = net_gpu.forward(x_gpu, parts.ctx_gpu);
  CHECK(parts.drop_cpu.offset() == parts.drop_gpu.offset());
  REQUIRE(u_gpu.shape() == u_cpu.shape());
  CHECK(rel_err(u_gpu.to_vector(), u_cpu.to_vector()) < kTolStep);

  const auto l_cpu = parts.csq_cpu(u_cpu, Tensor<float, Cpu>::from_vector(labels, Shape{B, classes}), indices, 0);
  const auto l_gpu = parts.csq_gpu(u_gpu, Tensor<float, Cuda>::from_vector(labels, Shape{B, classes}), indices, 0);
  const float loss_cpu = l_cpu.item(), loss_gpu = l_gpu.item();
  INFO("loss cpu " << loss_cpu << " cuda " << loss_gpu);
  CHECK(std::isfinite(loss_gpu));
  CHECK(rel_err(std::vector<float>{loss_gpu}, std::vector<float>{loss_cpu}) < kTolStep);

  parts.opt_cpu.zero_grad();
  parts.opt_gpu.zero_grad();
  l_cpu.backward();
  l_gpu.backward();
  for (size_t i = 0; i < params_cpu.size(); ++i) {
    INFO("gradient of " << params_cpu[i].first);
    const auto g_cpu = params_cpu[i].second.grad();
    const auto g_gpu = params_gpu[i].second.grad();
    REQUIRE(g_cpu.defined());
    REQUIRE(g_gpu.defined());
    CHECK(rel_err(g_gpu.to_vector(), g_cpu.to_vector()) < kTolStep);
  }

  // The key bias gets no gradient in exact arithmetic: softmax ignores a constant added to every
  // score of a row, and q·(k + b) adds q·b to the whole row. Its computed gradient is rounding
  // noise on both devices; checked for being noise here.
  for (size_t i = 0; i < params_cpu.size(); ++i) {
    if (!params_cpu[i].first.ends_with("attn.qkv.bias")) continue;
    INFO("gradient of " << params_cpu[i].first);
    const int64_t dim = params_cpu[i].second.numel() / 3;
    for (const auto& g : {params_cpu[i].second.grad().to_vector(), params_gpu[i].second.grad().to_vector()}) {
      double k_norm = 0.0, q_norm = 0.0;
      for (int64_t j = 0; j < dim; ++j) {
        q_norm += double(g[size_t(j)]) * g[size_t(j)];
        k_norm += double(g[size_t(dim + j)]) * g[size_t(dim + j)];
      }
      CHECK(std::sqrt(k_norm) < 1e-3 * std::sqrt(q_norm));
    }
  }

  // The update is checked from the device's own gradients: a CPU AdamW fed them must give the
  // device's parameters. Comparing with the CPU's update instead amplifies rounding noise: AdamW's
  // first step moves each element by lr·g/(|g| + eps), so an element whose gradient is near eps
  // (the key-bias slice above; H200, 2026-11-28: qkv.bias at 1.2e-4) or merely small (a LayerNorm
  // bias on vts-emu, 2026-12-03: 7.4e-4 with gradients that agreed at 1e-4) turns a 1e-4
  // difference in g into one of the same order in the update, of either sign.
  std::vector<Tensor<float, Cpu>> before;
  for (const auto& [name, p] : params_gpu) {
    before.push_back(Tensor<float, Cpu>::from_vector(p.to_vector(), p.shape()));
    before.back().requires_grad_();
    before.back().set_grad(Tensor<float, Cpu>::from_vector(p.grad().to_vector(), p.shape()));
  }
  optim::AdamW<float, Cpu> opt_ref(before, StepParts<Config, float>::adamw());
  parts.opt_gpu.step();
  opt_ref.step();
  for (size_t i = 0; i < params_gpu.size(); ++i) {
    INFO("updated " << params_gpu[i].first);
    CHECK(rel_err(params_gpu[i].second.to_vector(), before[i].to_vector()) < kTolF32);
  }
}

// The bf16 training step: a bf16 network on the device (weights, activations and gradients in
// bf16), its output cast to fp32 for the CSQ loss, AdamW on fp32 masters. Compared with the fp32
// step on the CPU from the bf16-rounded weights: outputs and loss at 2e-2; parameter gradients
// each within 0.25 and their median within 0.12. bf16 keeps 8 bits of mantissa (≈ 4e-3 relative
// per rounding). Measured on an H200 (2026-11-28, three runs, fresh seeds): most gradients' errors
// were above 0.05, the largest 0.08, 0.079 and 0.105 (a LayerNorm bias: a small gradient), about
// as large in the hash head as at the patch embedding. They do not come from the loss (CSQ's dL/du
// moves 0.3× as much as u does, measured on the CPU); the likely source, not isolated, is the
// backward passes' differences of nearly equal bf16-rounded terms: softmax's dP − rowsum(dP·P)
// under near-uniform attention at initialisation, LayerNorm's g − mean(g) − x̂·mean(g·x̂). A wrong
// index or a missing term shows as O(1). Each run prints its largest error. The update is then
// checked exactly: a CPU AdamW<bf16> (the same master logic, tested against fp32 in tests/optim)
// fed the device's own bf16 gradients must produce the same masters (1e-5) and bit-identical bf16
// parameters.
template <class Config>
void check_bf16_training_step(uint64_t seed) {
  INFO("config " << Config::name << " seed " << seed);
  Rng rng(seed);
  constexpr int64_t B = 8, bits = 64, classes = 10;
  Generator init_cpu(seed), init_gpu(seed ^ 0xABCDull);
  HashViT<Config, Cpu> net_cpu(bits, init_cpu);
  HashViT<Config, Cuda, bf16> net_gpu(bits, init_gpu);
  auto params_cpu = nn::named_parameters(net_cpu);
  auto params_gpu = nn::named_parameters(net_gpu);
  REQUIRE(params_cpu.size() == params_gpu.size());
  std::vector<Tensor<bf16, Cpu>> before;  // the device's bf16 weights, on the host
  {
    NoGradGuard no_grad;
    for (size_t i = 0; i < params_cpu.size(); ++i) {
      REQUIRE(params_cpu[i].first == params_gpu[i].first);
      auto& c = params_cpu[i].second;
      const auto rounded = to_bf16(c.to_vector());
      c.detach().copy_(Tensor<float, Cpu>::from_vector(as_float(rounded), c.shape()));
      params_gpu[i].second.detach().copy_(Tensor<bf16, Cuda>::from_vector(rounded, c.shape()));
      before.push_back(Tensor<bf16, Cpu>::from_vector(rounded, c.shape()));
      before.back().requires_grad_();
    }
  }
  const auto pixels = round_bf16(rng.normal(static_cast<size_t>(B * Config::channels * Config::image * Config::image)));
  const Shape image_shape{B, Config::channels, Config::image, Config::image};
  StepParts<Config, bf16> parts(rng, seed, B, bits, classes, net_cpu, net_gpu);
  const auto& [labels, indices, cfg] = parts.in;

  const auto u_cpu = net_cpu.forward(Tensor<float, Cpu>::from_vector(pixels, image_shape), parts.ctx_cpu);
  const auto u_gpu = cast<float>(net_gpu.forward(Tensor<bf16, Cuda>::from_vector(to_bf16(pixels), image_shape), parts.ctx_gpu));
  CHECK(parts.drop_cpu.offset() == parts.drop_gpu.offset());
  REQUIRE(u_gpu.shape() == u_cpu.shape());
  CHECK(rel_err(u_gpu.to_vector(), u_cpu.to_vector()) < 2e-2);
  const auto l_cpu = parts.csq_cpu(u_cpu, Tensor<float, Cpu>::from_vector(labels, Shape{B, classes}), indices, 0);
  const auto l_gpu = parts.csq_gpu(u_gpu, Tensor<float, Cuda>::from_vector(labels, Shape{B, classes}), indices, 0);
  INFO("loss cpu " << l_cpu.item() << " cuda " << l_gpu.item());
  CHECK(rel_err(std::vector<float>{l_gpu.item()}, std::vector<float>{l_cpu.item()}) < 2e-2);

  parts.opt_cpu.zero_grad();
  parts.opt_gpu.zero_grad();
  l_cpu.backward();
  l_gpu.backward();  // through the cast into the bf16 graph
  std::vector<double> errors;
  double worst = -1.0;
  std::string worst_name;
  for (size_t i = 0; i < params_cpu.size(); ++i) {
    INFO("gradient of " << params_cpu[i].first);
    const auto g_gpu = params_gpu[i].second.grad();
    REQUIRE(g_gpu.defined());
    const auto g = g_gpu.to_vector();
    const double err = rel_err(as_float(g), params_cpu[i].second.grad().to_vector());
    CHECK(err < 0.25);
    if (err > worst) worst = err, worst_name = params_cpu[i].first;
    errors.push_back(err);
    before[i].set_grad(Tensor<bf16, Cpu>::from_vector(g, g_gpu.shape()));
  }
  std::sort(errors.begin(), errors.end());
  const double median = errors[errors.size() / 2];
  CHECK(median < 0.12);
  std::printf("bf16 step %s: output %.2e, gradient errors median %.3f, largest %.3f (%s)\n", Config::name,
              rel_err(u_gpu.to_vector(), u_cpu.to_vector()), median, worst, worst_name.c_str());

  optim::AdamW<bf16, Cpu> opt_ref(before, StepParts<Config, bf16>::adamw());
  parts.opt_gpu.step();
  opt_ref.step();
  for (size_t i = 0; i < params_cpu.size(); ++i) {
    INFO("updated " << params_cpu[i].first);
    const auto master = parts.opt_gpu.master(i).to_vector();
    CHECK(rel_err(master, opt_ref.master(i).to_vector()) < kTolF32);
    const auto live = params_gpu[i].second.to_vector();
    for (size_t k = 0; k < live.size(); ++k) REQUIRE(live[k].bits == bf16(master[k]).bits);
  }
}

#if defined(VTS_TEST_WITH_DATA)
// Trainer::train_epoch on both devices from the same weights and seeds: every step's reported loss
// (on CUDA read one step late, after the next step is queued; CSQ's centers from the batch's host
// labels; labels staged like the images), in order, and each epoch's mean.
void check_training_loop(uint64_t seed, double mixup) {
  INFO("seed " << seed << " mixup " << mixup);
  using Config = ViTTiny28Heads32;
  constexpr int64_t bits = 16;
  Generator init_cpu(seed), init_gpu(seed ^ 0xABCDull);
  HashViT<Config, Cpu> net_cpu(bits, init_cpu);
  HashViT<Config, Cuda> net_gpu(bits, init_gpu);
  {
    NoGradGuard no_grad;
    auto params_cpu = nn::named_parameters(net_cpu);
    auto params_gpu = nn::named_parameters(net_gpu);
    REQUIRE(params_cpu.size() == params_gpu.size());
    for (size_t i = 0; i < params_cpu.size(); ++i) {
      const auto& c = params_cpu[i].second;
      params_gpu[i].second.detach().copy_(Tensor<float, Cuda>::from_vector(c.to_vector(), c.shape()));
    }
  }
  hash::loss::Config cfg;
  cfg.bits = bits;
  cfg.classes = 3;
  cfg.train_size = 24;
  Generator loss_cpu(seed + 1), loss_gpu(seed + 1);
  // lr 3e-4, not 3e-3: in about 2 % of seeds (vts-emu, 2026-12-05: 2 of ~100 runs; seeds
  // 5916258536302712591 and 16800398286517458560, both with mixup) the devices' losses agree to 1e-6
  // for some steps and then jump apart by 2–3e-3 at one step and stay there, and after it every
  // parameter differs: a discontinuity taken on different sides by rounding. Candidates: CSQ's
  // quantization gradient, which holds sign(tanh u) (mixup's soft centers pull u towards 0 where
  // the two classes' centers disagree), and the head's ReLU (the step test above). AdamW turns the
  // different gradient into different full-size updates; the jump scales with lr.
  const hash::OptimizerOptions opt{.name = "adamw", .lr = 3e-4, .weight_decay = 0.05};
  hash::Trainer<HashViT<Config, Cpu>, hash::loss::Csq<float, Cpu>> cpu(
      std::move(net_cpu), hash::loss::Csq<float, Cpu>(cfg, loss_cpu), opt, seed);
  hash::Trainer<HashViT<Config, Cuda>, hash::loss::Csq<float, Cuda>> gpu(
      std::move(net_gpu), hash::loss::Csq<float, Cuda>(cfg, loss_gpu), opt, seed);
  cpu.set_mixup(mixup);
  gpu.set_mixup(mixup);
  const data::LoaderOptions lo{.batch_size = 8, .shuffle = true, .num_workers = 0, .seed = seed};
  data::Loader loader_cpu(std::make_shared<Stripes28>(), lo), loader_gpu(std::make_shared<Stripes28>(), lo);
  constexpr int64_t kEpochs = 2;
  std::vector<hash::StepReport> reports_cpu, reports_gpu;
  for (int64_t e = 0; e < kEpochs; ++e) {
    const double mean_cpu = cpu.train_epoch(loader_cpu, e, kEpochs, [&](const auto& r) { reports_cpu.push_back(r); });
    const double mean_gpu = gpu.train_epoch(loader_gpu, e, kEpochs, [&](const auto& r) { reports_gpu.push_back(r); });
    // The bar of the step losses below (relative 1e-3, absolute 1e-3 of the first loss): seed
    // 18045466059756028565 with mixup drifted 0.10485 against 0.10510 by the second epoch.
    REQUIRE_FALSE(reports_cpu.empty());
    CHECK(mean_gpu == Approx(mean_cpu).epsilon(1e-3).margin(1e-3 * reports_cpu.front().loss));
  }
  REQUIRE(reports_gpu.size() == reports_cpu.size());
  REQUIRE(reports_cpu.size() == 6);
  for (size_t i = 0; i < reports_cpu.size(); ++i) {
    INFO("report " << i << ": cpu step " << reports_cpu[i].step << " loss " << reports_cpu[i].loss << ", cuda step "
                   << reports_gpu[i].step << " loss " << reports_gpu[i].loss);
    CHECK(reports_gpu[i].epoch == reports_cpu[i].epoch);
    CHECK(reports_gpu[i].step == reports_cpu[i].step);
    CHECK(reports_gpu[i].lr == reports_cpu[i].lr);
    // Relative 1e-3, and 1e-3 of the first loss absolute: some seeds drive the loss two or three
    // orders down within the six steps, where the devices' drift is larger than 1e-3 of the small
    // value (seed 15208427275796464350: 0.003791 against 0.003813 at step 2): the devices' rounding
    // differences (summation orders; TF32 is off here) grow over the AdamW steps. A report of another step's loss still fails: the early steps change the loss by
    // far more than that (the spread check below asks for over 1 %).
    CHECK(reports_gpu[i].loss == Approx(reports_cpu[i].loss).epsilon(1e-3).margin(1e-3 * reports_cpu[0].loss));
    CHECK(reports_gpu[i].images_per_s > 0);
  }
  // The steps must tell apart: a loop that reported another step's loss would fail above.
  double spread = 0;
  for (size_t i = 1; i < reports_cpu.size(); ++i)
    spread = std::max(spread, std::abs(reports_cpu[i].loss - reports_cpu[0].loss) / reports_cpu[0].loss);
  CHECK(spread > 1e-2);
}

// hash::pretrain_classifier (the classifier stage, paper §2.3) on both devices from the same
// backbone weights and seeds (the classifier head is drawn on the host from the seed, so it starts
// equal too): every step's reported loss in order — on CUDA read one step late — and the result.
void check_pretraining(uint64_t seed) {
  INFO("seed " << seed);
  using Config = ViTTiny28Heads32;
  Generator init_cpu(seed), init_gpu(seed ^ 0xABCDull);
  nn::ViT<Config, float, Cpu> cpu(init_cpu);
  nn::ViT<Config, float, Cuda> gpu(init_gpu);
  {
    NoGradGuard no_grad;
    auto pc = nn::parameters(cpu);
    auto pg = nn::parameters(gpu);
    REQUIRE(pc.size() == pg.size());
    for (size_t i = 0; i < pc.size(); ++i)
      pg[i].detach().copy_(Tensor<float, Cuda>::from_vector(pc[i].to_vector(), pc[i].shape()));
  }
  const hash::OptimizerOptions opt{.name = "adamw", .lr = 3e-3, .weight_decay = 0.05};
  const data::LoaderOptions lo{.batch_size = 8, .shuffle = true, .num_workers = 0, .seed = seed};
  data::Loader loader_cpu(std::make_shared<Stripes28>(), lo), loader_gpu(std::make_shared<Stripes28>(), lo);
  std::vector<hash::StepReport> rc, rg;
  const double mean_cpu =
      hash::pretrain_classifier(cpu, loader_cpu, 2, opt, seed, [&](const auto& r) { rc.push_back(r); });
  const double mean_gpu =
      hash::pretrain_classifier(gpu, loader_gpu, 2, opt, seed, [&](const auto& r) { rg.push_back(r); });
  REQUIRE(rc.size() == 6);
  REQUIRE(rg.size() == rc.size());
  const double margin = 1e-3 * rc.front().loss;  // as the training loop's bar, above
  for (size_t i = 0; i < rc.size(); ++i) {
    INFO("report " << i << ": cpu " << rc[i].loss << ", cuda " << rg[i].loss);
    CHECK(rg[i].epoch == rc[i].epoch);
    CHECK(rg[i].step == rc[i].step);
    CHECK(rg[i].lr == rc[i].lr);
    CHECK(rg[i].loss == Approx(rc[i].loss).epsilon(1e-3).margin(margin));
  }
  CHECK(mean_gpu == Approx(mean_cpu).epsilon(1e-3).margin(margin));
}
#endif

}  // namespace

TEST_CASE("training step: ViTTiny28 + all-token head + CSQ + AdamW matches the CPU", "[training]") {
  Tf32Off strict;
  const uint64_t seed = fresh_seed();
  check_training_step<nn::ViTTiny28>(seed);           // head dim 16
  check_training_step<ViTTiny28Heads32>(seed + 100);  // head dim 32
}

TEST_CASE("bf16 training step: bf16 network, fp32 loss, AdamW on fp32 masters", "[training]") {
  const uint64_t seed = fresh_seed();
  check_bf16_training_step<nn::ViTTiny28>(seed);           // head dim 16
  check_bf16_training_step<ViTTiny28Heads32>(seed + 100);  // head dim 32
}

// bf16 through the op layer: attention and LayerNorm save fp32 state (lse, mean, 1/std) and
// LayerNorm's parameter gradients come out of fp32 kernels. Compared with the fp32 CPU ops on the
// bf16-rounded inputs, at the bf16 tolerance.
TEST_CASE("bf16 attention + LayerNorm through the op layer match fp32 on the CPU", "[training]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  constexpr int64_t B = 4, N = 50, H = 2, d = 64, dim = H * d;
  const auto qkv = round_bf16(rng.normal(static_cast<size_t>(B * N * 3 * dim)));
  const auto w = round_bf16(rng.uniform(static_cast<size_t>(dim), 0.5f, 1.5f));
  const auto b = round_bf16(rng.normal(static_cast<size_t>(dim), 0.1f));
  const auto r = round_bf16(rng.normal(static_cast<size_t>(B * N * dim)));

  auto run = [&](auto tag) {
    using Tn = decltype(tag);
    using T = typename Tn::value_type;
    auto cast = [](const std::vector<float>& v) { return std::vector<T>(v.begin(), v.end()); };
    Tn x = Tn::from_vector(cast(qkv), Shape{B, N, 3 * dim}), wt = Tn::from_vector(cast(w)),
       bt = Tn::from_vector(cast(b)), rt = Tn::from_vector(cast(r), Shape{B, N, dim});
    x.requires_grad_();
    wt.requires_grad_();
    bt.requires_grad_();
    const Tn y = layer_norm(self_attention_packed(x, H), wt, bt, T(1e-6f));
    sum(mul(y, rt)).backward();
    std::vector<std::vector<float>> out;
    for (const Tn& t : {y, x.grad(), wt.grad(), bt.grad()}) {
      std::vector<float> v;
      for (T e : t.to_vector()) v.push_back(static_cast<float>(e));
      out.push_back(v);
    }
    return out;
  };
  const auto ref = run(Tensor<float, Cpu>());
  const auto got = run(Tensor<bf16, Cuda>());
  const char* names[] = {"output", "d qkv", "d weight", "d bias"};
  for (size_t i = 0; i < ref.size(); ++i) {
    INFO(names[i]);
    CHECK(rel_err(got[i], ref[i]) < kTolBf16);
  }
}

#if defined(VTS_TEST_WITH_DATA)
TEST_CASE("the training loop on CUDA reports the CPU's losses step by step", "[training]") {
  Tf32Off strict;
  const uint64_t seed = fresh_seed();
  check_training_loop(seed, 0.0);
  check_training_loop(seed + 7, 0.4);  // mixed label rows: CSQ's centers from soft host labels
}

TEST_CASE("classifier pretraining on CUDA reports the CPU's losses step by step", "[training]") {
  Tf32Off strict;
  check_pretraining(fresh_seed());
}
#endif
