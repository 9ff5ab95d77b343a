// CUDA graphs (vts/backend/cuda/graph.hpp) and the captured training step (vts/nn/captured.hpp):
// a replay computes what running the same code again computes, bit for bit — with the inputs
// present at the replay, with new dropout masks every replay, and through a whole ViT training step
// with the loss and Adam run eagerly between the forward and backward graphs; a capture that waits
// for the device fails with an error and leaves the stream usable; memory a capture allocated is
// not handed out elsewhere while its graph lives.
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"
#include "vts/backend/cuda/attention.hpp"
#include "vts/backend/cuda/graph.hpp"
#include "vts/backend/cuda/memory.hpp"
#include "vts/hash/heads.hpp"
#include "vts/hash/losses.hpp"
#include "vts/nn/captured.hpp"
#include "vts/nn/vit.hpp"
#include "vts/ops/cast.hpp"
#include "vts/ops/dropout.hpp"
#include "vts/ops/elementwise.hpp"
#include "vts/ops/matmul.hpp"
#include "vts/optim/adam.hpp"
#if defined(VTS_TEST_WITH_DATA)
#include "stripes28.hpp"
#include "vts/data/loader.hpp"
#include "vts/hash/trainer.hpp"
#endif

using namespace vts;
using namespace vts::cuda::test;

namespace {

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

using FTensor = Tensor<float, Cuda>;

// How many of two networks' parameters differ in any bit (each one named in the report).
template <class A, class B>
size_t differing_parameters(A& a, B& b) {
  const auto pa = nn::named_parameters(a), pb = nn::named_parameters(b);
  REQUIRE(pa.size() == pb.size());
  size_t differing = 0;
  for (size_t i = 0; i < pa.size(); ++i)
    if (!same_bits(pa[i].second.to_vector(), pb[i].second.to_vector())) {
      UNSCOPED_INFO("parameter " << pa[i].first << " differs");
      ++differing;
    }
  return differing;
}

}  // namespace

TEST_CASE("a replay computes with the inputs present at the replay", "[graph]") {
  if (!cuda::available()) return;
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  constexpr int64_t M = 37, K = 48, N = 20;
  FTensor x = FTensor::from_vector(rng.normal(M * K), Shape{M, K});
  const FTensor w = FTensor::from_vector(rng.normal(K * N), Shape{K, N});
  FTensor y;
  auto body = [&](const FTensor& in) {
    return map(matmul(in, w), fn::MulScalar<float>{0.5f}) + sum(in, {1}, true);
  };
  cuda::Graph g;
  REQUIRE(g.empty());
  {
    NoGradGuard no_grad;
    g.capture([&] { y = body(x); });
  }
  CHECK(!cuda::capturing());
  CHECK(!g.empty());
  CHECK(g.nodes() >= 3);  // the GEMM, the scale, the row sums and the add
  for (int r = 0; r < 3; ++r) {
    x.copy_(FTensor::from_vector(rng.normal(M * K), Shape{M, K}));
    g.replay();
    NoGradGuard no_grad;
    CHECK(same_bits(y.to_vector(), body(x).to_vector()));
  }
  CHECK(g.replays() == 3);
}

TEST_CASE("a capture that waits for the device fails and leaves the stream usable", "[graph]") {
  if (!cuda::available()) return;
  const FTensor x = FTensor::from_vector(std::vector<float>{1, 2, 3, 4}, Shape{4});
  cuda::Graph g;
  NoGradGuard no_grad;
  CHECK_THROWS_AS(g.capture([&] {
    const FTensor y = x + x;
    (void)y.to_vector();  // a read-back: the host would wait for work that is only being recorded
  }),
                  cuda::CudaError);
  CHECK(g.empty());
  CHECK(!cuda::capturing());
  CHECK_THROWS_WITH(g.replay(), Catch::Contains("nothing was captured"));
  CHECK((x + x).to_vector() == std::vector<float>{2, 4, 6, 8});
  // A capture that throws from the host side ends the capture too.
  CHECK_THROWS_WITH(g.capture([&] { throw Error("boom"); }), Catch::Contains("boom"));
  CHECK(!cuda::capturing());
  CHECK((x * x).to_vector() == std::vector<float>{1, 4, 9, 16});
}

TEST_CASE("memory a capture allocated stays the graph's while the graph lives", "[graph][memory]") {
  if (!cuda::available()) return;
  const size_t bytes = (size_t(3) << 20) + 12345;  // a size class no other test here uses
  const size_t cls = cuda::allocation_size_class(bytes);
  const size_t pooled_before = cuda::memory_stats().graph_pool_bytes;
  void* inside = nullptr;
  {
    cuda::Graph g;
    g.capture([&] {
      cuda::DeviceBuffer scratch(bytes);  // freed before the capture ends: back to the graph's pool
      inside = scratch.data();
      const uint32_t ones = 0x01010101u;
      cuda::fill_bytes(scratch.data(), static_cast<int64_t>(bytes / 4), &ones, 4);
    });
    CHECK(cuda::memory_stats().graph_pool_bytes == pooled_before + cls);
    cuda::DeviceBuffer outside(bytes);
    CHECK(outside.data() != inside);  // the replays still write `inside`
    g.replay();
    cuda::synchronize();
  }
  CHECK(cuda::memory_stats().graph_pool_bytes == pooled_before);
  cuda::DeviceBuffer again(bytes);  // the retired pool's block is now ordinary cache
  CHECK(again.data() == inside);
}

TEST_CASE("dropout in a graph draws new masks every replay, as the eager calls do", "[graph][dropout]") {
  if (!cuda::available()) return;
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  constexpr int64_t n = 4099;  // not a multiple of 4 or of a pack
  const FTensor x = FTensor::from_vector(rng.normal(n), Shape{n});
  const FTensor r = FTensor::from_vector(rng.normal(n), Shape{n});
  const auto xb = cast<bf16>(x);
  Generator captured(seed, 17), eager(seed, 17);
  NoGradGuard no_grad;
  FTensor y1, y2, y3;
  Tensor<bf16, Cuda> y4;
  cuda::Graph g;
  g.capture(
      [&] {
        y1 = dropout(x, 0.3, true, captured);
        y2 = gelu_dropout(x, 0.1, true, captured);
        y3 = add_dropout(r, x, 0.5, true, captured);
        y4 = dropout(xb, 0.2, true, captured);
      },
      &captured);
  CHECK(captured.offset() == 17);  // nothing ran: the generator stands where it stood
  for (int rep = 0; rep < 3; ++rep) {
    INFO("replay " << rep);
    g.replay();
    CHECK(same_bits(y1.to_vector(), dropout(x, 0.3, true, eager).to_vector()));
    CHECK(same_bits(y2.to_vector(), gelu_dropout(x, 0.1, true, eager).to_vector()));
    CHECK(same_bits(y3.to_vector(), add_dropout(r, x, 0.5, true, eager).to_vector()));
    CHECK(same_bits(y4.to_vector(), dropout(xb, 0.2, true, eager).to_vector()));
    CHECK(captured.offset() == eager.offset());
  }
  // Host draws between replays move both generators alike; the replay follows.
  (void)captured.next_double();
  (void)eager.next_double();
  g.replay();
  CHECK(same_bits(y1.to_vector(), dropout(x, 0.3, true, eager).to_vector()));
  CHECK(same_bits(y2.to_vector(), gelu_dropout(x, 0.1, true, eager).to_vector()));
  CHECK(same_bits(y3.to_vector(), add_dropout(r, x, 0.5, true, eager).to_vector()));
  CHECK(same_bits(y4.to_vector(), dropout(xb, 0.2, true, eager).to_vector()));

  cuda::Graph other;
  Generator stranger(1);
  CHECK_THROWS_WITH(other.capture([&] { (void)dropout(x, 0.3, true, stranger); }, &captured),
                    Catch::Contains("generator the capture was not"));
  CHECK(!cuda::capturing());
  CHECK(captured.offset() == eager.offset());
  captured.set_state(seed + 1, captured.offset());
  CHECK_THROWS_WITH(g.replay(), Catch::Contains("reseeded"));
}

namespace {

struct TinyD32 {  // fused attention (head dim 32)
  static constexpr const char* name = "tiny-d32";
  static constexpr int64_t image = 28, channels = 1, patch = 7, dim = 64, depth = 2, heads = 2, mlp = 256;
};
struct TinyD16 {  // ViTTiny28's head dim: the d = 16 attention kernels
  static constexpr const char* name = "tiny-d16";
  static constexpr int64_t image = 28, channels = 1, patch = 7, dim = 64, depth = 2, heads = 4, mlp = 128;
};
struct TinyD64 {  // one head of 64: the ViT-B head dim, which the Hopper attention kernels take
  static constexpr const char* name = "tiny-d64";
  static constexpr int64_t image = 28, channels = 1, patch = 7, dim = 64, depth = 2, heads = 1, mlp = 128;
};

template <class Config, class T>
using Net = hash::HashNetwork<nn::ViT<Config, T, Cuda>, hash::AllTokenHead<1024, T, Cuda>>;

// Trains two copies of one network for `steps` steps on the same batches: op by op, and through
// CapturedNetwork (the first step eager, as the trainer warms up). Losses and every parameter must
// agree bit for bit after every step.
template <class Config, class T>
void check_captured_training(uint64_t seed) {
  INFO("config " << Config::name << (std::is_same_v<T, bf16> ? " bf16" : " fp32") << " seed " << seed);
  Rng rng(seed);
  constexpr int64_t B = 6, bits = 32, classes = 5;
  constexpr int steps = 4;
  Generator init_a(seed), init_b(seed);
  Net<Config, T> eager_net(bits, init_a), graph_net(bits, init_b);
  hash::loss::Config cfg;
  cfg.bits = bits;
  cfg.classes = classes;
  cfg.train_size = B;
  Generator centers_a(seed + 1), centers_b(seed + 1);
  hash::loss::Csq<float, Cuda> loss_a(cfg, centers_a), loss_b(cfg, centers_b);
  Generator drop_a(seed + 2), drop_b(seed + 2);
  nn::Context ctx_a{true, &drop_a}, ctx_b{true, &drop_b};
  optim::Adam<T, Cuda> opt_a(nn::parameters(eager_net), {.lr = 1e-3, .weight_decay = 1e-4});
  optim::Adam<T, Cuda> opt_b(nn::parameters(graph_net), {.lr = 1e-3, .weight_decay = 1e-4});
  nn::CapturedNetwork<Net<Config, T>, FTensor> captured(graph_net);
  const Shape image_shape{B, Config::channels, Config::image, Config::image};
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < B; ++i) indices.push_back(i);

  for (int s = 0; s < steps; ++s) {
    INFO("step " << s);
    std::vector<float> labels(static_cast<size_t>(B * classes), 0.0f);
    for (int64_t i = 0; i < B; ++i) labels[static_cast<size_t>(i * classes) + rng.gen() % classes] = 1.0f;
    const FTensor y = FTensor::from_vector(labels, Shape{B, classes});
    const auto x = cast<T>(FTensor::from_vector(rng.normal(static_cast<size_t>(image_shape.numel())), image_shape));

    opt_a.zero_grad();
    const FTensor la =
        loss_a(cast<float>(eager_net.forward(x, ctx_a)), y, indices, 0, std::span<const float>(labels));
    la.backward();
    opt_a.step();

    opt_b.zero_grad();
    FTensor lb;
    if (s == 0) {
      lb = loss_b(cast<float>(graph_net.forward(x, ctx_b)), y, indices, 0, std::span<const float>(labels));
      lb.backward();
    } else {
      const FTensor u = captured.forward(x, ctx_b);
      // The capture gave the eager steps' cached activations back before taking its own pool, and
      // nothing since has freed a block outside the pool: the device does not hold them twice.
      if (s == 1) CHECK(cuda::memory_stats().cached_bytes == 0);
      lb = loss_b(u, y, indices, 0, std::span<const float>(labels));
      lb.backward();
      captured.backward(u);
    }
    opt_b.step();

    CHECK(same_bits(la.to_vector(), lb.to_vector()));
    CHECK(drop_a.offset() == drop_b.offset());
    CHECK(differing_parameters(eager_net, graph_net) == 0);
  }
  CHECK(captured.captured());
  CHECK(captured.nodes() > 20);
  const FTensor wrong = FTensor::empty(Shape{B + 1, Config::channels, Config::image, Config::image});
  CHECK(!captured.accepts(cast<T>(wrong)));
}

}  // namespace

TEST_CASE("a training step through CapturedNetwork matches the eager step bit for bit", "[graph][training]") {
  if (!cuda::available()) return;
  const uint64_t seed = fresh_seed();
  check_captured_training<TinyD32, float>(seed);
  check_captured_training<TinyD32, bf16>(seed + 1);
  check_captured_training<TinyD16, float>(seed + 2);
  // The split bf16 attention backward allocates its dQ workspace from the caching allocator, so in
  // a capture from the graph's pool: the candidate default (docs/cuda.md), checked the same way.
  const ScopedSetting<bool> split(cuda::attention_bf16_backward_split, cuda::set_attention_bf16_backward_split,
                                  true);
  check_captured_training<TinyD32, bf16>(seed + 3);
  // The MLP's GELU + dropout keeping its mask as bits: a buffer of the forward's, read by the backward.
  const ScopedSetting<bool> keep(cuda::gelu_dropout_keep_mask, cuda::set_gelu_dropout_keep_mask, true);
  check_captured_training<TinyD32, float>(seed + 4);
}

// In the [wgmma] family (test_attention.cpp says why): the Hopper attention kernels where the
// device takes them (d = 64, compute capability 9.0; vts-emu reports 9.0) in a captured bf16 step;
// the backward's workspace, too, comes from the graph's pool.
TEST_CASE("a training step with the Hopper attention kernels through CapturedNetwork matches the eager step", "[wgmma]") {
  if (!cuda::available()) return;
  const ScopedSetting<bool> fwd(cuda::attention_bf16_forward_wgmma, cuda::set_attention_bf16_forward_wgmma, true);
  const ScopedSetting<bool> bwd(cuda::attention_bf16_backward_wgmma, cuda::set_attention_bf16_backward_wgmma, true);
  if (!cuda::attention_bf16_wgmma_supported(nn::ViT<TinyD64, bf16, Cuda>::tokens, TinyD64::dim / TinyD64::heads))
    return;
  check_captured_training<TinyD64, bf16>(fresh_seed());
}

#if defined(VTS_TEST_WITH_DATA)
namespace {

// Trainer::train_epoch with and without set_cuda_graphs, from the same seeds: batches of 10 from 24
// images, so each epoch has two full batches (the first one of all op by op, then captured, then
// replayed) and a partial one (always op by op, between replays). Every reported loss, the
// dropout generator and every weight must agree bit for bit.
// The trainer tests' loss: 16 bits, 3 classes, the 24 images of Stripes28; and their optimizer.
constexpr int64_t kTrainerBits = 16;
hash::loss::Config trainer_loss_config() {
  hash::loss::Config cfg;
  cfg.bits = kTrainerBits;
  cfg.classes = 3;
  cfg.train_size = 24;
  return cfg;
}
const hash::OptimizerOptions kTrainerOptimizer{.name = "adamw", .lr = 3e-3, .weight_decay = 0.05,
                                               .schedule = "cosine"};

// Two trainers of one network from the same seeds, the second with CUDA graphs, and a loader each
// (batches of 10 from Stripes28's 24 images: two full batches and a partial one an epoch).
// train() runs an epoch on both and keeps every reported loss; check_same() compares what the two
// must share bit for bit.
template <class Network>
struct TrainerPair {
  using Loss = hash::loss::Csq<float, Cuda>;
  using Trainer = hash::Trainer<Network, Loss>;
  static Trainer make_trainer(uint64_t seed) {
    Generator init(seed), centers(seed + 1);
    return Trainer(Network(kTrainerBits, init), Loss(trainer_loss_config(), centers), kTrainerOptimizer, seed);
  }
  static data::Loader make_loader(uint64_t seed) {
    return data::Loader(std::make_shared<Stripes28>(),
                        {.batch_size = 10, .shuffle = true, .num_workers = 0, .seed = seed});
  }
  explicit TrainerPair(uint64_t seed)
      : eager(make_trainer(seed)), graphed(make_trainer(seed)), loader_a(make_loader(seed)), loader_b(make_loader(seed)) {
    graphed.set_cuda_graphs(true);
  }
  // `b`: the graphed side's trainer (a moved-to one), by default `graphed`.
  void train(int64_t epoch, int64_t epochs, Trainer* b = nullptr) {
    const double mean_a = eager.train_epoch(loader_a, epoch, epochs, [&](const auto& r) { losses_a.push_back(r.loss); });
    const double mean_b = (b ? *b : graphed).train_epoch(loader_b, epoch, epochs,
                                                         [&](const auto& r) { losses_b.push_back(r.loss); });
    CHECK(mean_a == mean_b);
  }
  void check_same(Trainer* b = nullptr) {
    Trainer& other = b ? *b : graphed;
    CHECK(eager.graph_steps() == 0);
    CHECK(losses_a == losses_b);
    CHECK(eager.dropout_rng().offset() == other.dropout_rng().offset());
    CHECK(differing_parameters(eager.network(), other.network()) == 0);
  }

  Trainer eager, graphed;
  data::Loader loader_a, loader_b;
  std::vector<double> losses_a, losses_b;
};

template <class T>
void check_graph_trainer(uint64_t seed, double mixup) {
  INFO("seed " << seed << " mixup " << mixup << (std::is_same_v<T, bf16> ? " bf16" : " fp32"));
  TrainerPair<Net<TinyD32, T>> pair(seed);
  pair.eager.set_mixup(mixup);
  pair.graphed.set_mixup(mixup);
  constexpr int64_t kEpochs = 3;
  // The last epoch on a moved trainer: its graphs pointed at the old one's network and generator,
  // so it must capture again (its first full batch op by op, the next captured) and train on as before.
  std::optional<typename TrainerPair<Net<TinyD32, T>>::Trainer> moved;
  for (int64_t e = 0; e < kEpochs; ++e) {
    if (e == kEpochs - 1) moved.emplace(std::move(pair.graphed));
    pair.train(e, kEpochs, moved ? &*moved : nullptr);
  }
  REQUIRE(pair.losses_a.size() == 9);
  CHECK(moved->graph_steps() == 4);  // all full batches but the first of each trainer (6 - 2)
  pair.check_same(&*moved);
}

}  // namespace

TEST_CASE("the training loop with CUDA graphs trains as the loop without", "[graph][training]") {
  if (!cuda::available()) return;
  const uint64_t seed = fresh_seed();
  check_graph_trainer<float>(seed, 0.0);
  check_graph_trainer<float>(seed + 1, 0.4);
  check_graph_trainer<bf16>(seed + 2, 0.0);
}

// What `vts train --device cuda` does when stopped inside an epoch and resumed: the graphed trainer
// stops before the epoch's partial batch (its two full batches replayed, the last loss still to be
// read), and a moved trainer, which must capture again as a resumed process does, goes on from
// there. The stopped epoch's mean and every loss, generator draw and weight equal the eager
// trainer's, which never stopped.
TEST_CASE("a graphed trainer stopped inside an epoch and continued there trains as one never stopped",
          "[graph][training]") {
  if (!cuda::available()) return;
  using Pair = TrainerPair<Net<TinyD32, float>>;
  Pair pair(fresh_seed());
  constexpr int64_t kEpochs = 3;
  pair.train(0, kEpochs);
  const double mean_a =
      pair.eager.train_epoch(pair.loader_a, 1, kEpochs, [&](const auto& r) { pair.losses_a.push_back(r.loss); });
  auto report_b = [&](const hash::StepReport& r) { pair.losses_b.push_back(r.loss); };
  hash::EpochProgress progress;
  int64_t asked = 0;
  CHECK_FALSE(pair.graphed.train_epoch_until(pair.loader_b, 1, kEpochs, progress, [&] { return asked++ == 2; },
                                             report_b));
  CHECK(progress.steps == 2);
  CHECK(pair.losses_b.size() == 5);  // the stop read the deferred loss of the second batch
  Pair::Trainer moved(std::move(pair.graphed));
  CHECK(moved.train_epoch_until(pair.loader_b, 1, kEpochs, progress, {}, report_b));
  CHECK(progress.steps == 3);
  CHECK(progress.loss_sum / 3.0 == mean_a);
  pair.train(2, kEpochs, &moved);
  CHECK(moved.graph_steps() == 4);  // all full batches but the first of each trainer (6 - 2)
  pair.check_same(&moved);
}

namespace {

// The test network with a read-back after its forward: op by op that only waits, but a capture of
// it fails (nothing may wait for the device while work is being recorded) after its dropout draws.
struct WaitingNet : Net<TinyD32, float> {
  using Base = Net<TinyD32, float>;
  using Base::Base;
  tensor_type forward(const tensor_type& x, nn::Context& ctx) {
    tensor_type out = Base::forward(x, ctx);
    (void)out.to_vector();
    return out;
  }
};

}  // namespace

// The trainer turns the graphs off when the capture fails and trains on op by op from the state the
// step started in: the same losses, generator and weights as a trainer that never had graphs.
TEST_CASE("a failed capture turns the trainer's graphs off and training goes on op by op", "[graph][training]") {
  if (!cuda::available()) return;
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  TrainerPair<WaitingNet> pair(seed);
  for (int64_t e = 0; e < 2; ++e) pair.train(e, 2);
  CHECK(!pair.graphed.cuda_graphs());
  CHECK(pair.graphed.graph_steps() == 0);
  // The trainer's words, then the runtime's for the read-back it refused (vts-emu uses the same):
  // the refusal itself, or a later call's report that the capture had been invalidated by it.
  CHECK_THAT(pair.graphed.cuda_graphs_off_reason(),
             Catch::StartsWith("the step's capture failed: ") &&
                 (Catch::Contains("when stream is capturing") || Catch::Contains("previous error during capture")));
  REQUIRE(pair.losses_a.size() == 6);
  pair.check_same();
  CHECK(!cuda::capturing());
  // Turning them on again clears the reason (and the next full batch tries to capture again).
  pair.graphed.set_cuda_graphs(true);
  CHECK(pair.graphed.cuda_graphs_off_reason().empty());
}

// An evaluation that fits only once the graphs' pool is given back: the trainer gives it back,
// encodes what a trainer without graphs encodes, and trains on op by op with the same results.
// The device's memory is made to end at what is allocated already, which only vts-emu can do.
TEST_CASE("an evaluation out of memory beside the graphs' pool turns the graphs off and encodes again",
          "[graph][training][memory]") {
  if (!cuda::available()) return;
  if (!emulated()) {
    WARN("skipped: needs vts-emu's memory limit (VTS_EMU_MEMORY_BYTES)");
    return;
  }
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  TrainerPair<Net<TinyD32, float>> pair(seed);
  constexpr int64_t kEpochs = 3;
  pair.train(0, kEpochs);
  REQUIRE(pair.graphed.graph_steps() == 1);
  const auto images = std::make_shared<Stripes28>();
  const std::vector<float> expected = pair.eager.encode(images, 10, 0);
  std::vector<float> encoded;
  {
    // Nothing beyond what the trainers hold now: the graphed trainer's encode finds no free memory
    // until its graphs' pool (which held a whole training step) returns to the driver.
    cuda::empty_cache();
    const cuda::MemoryStats held = cuda::memory_stats();
    const ScopedEnv limit("VTS_EMU_MEMORY_BYTES", std::to_string(held.allocated_bytes + held.graph_pool_bytes));
    encoded = pair.graphed.encode(images, 10, 0);
  }
  CHECK(!pair.graphed.cuda_graphs());
  CHECK_THAT(pair.graphed.cuda_graphs_off_reason(),
             Catch::StartsWith("the evaluation ran out of memory beside the graphs' memory: ") &&
                 Catch::Contains("out of memory"));
  CHECK(same_bits(encoded, expected));
  pair.train(1, kEpochs);
  pair.train(2, kEpochs);
  CHECK(pair.graphed.graph_steps() == 1);
  REQUIRE(pair.losses_a.size() == 9);
  pair.check_same();
}

TEST_CASE("CUDA graphs refuse a loss with parameters of its own", "[graph]") {
  if (!cuda::available()) return;
  Generator init(1), lg(2);
  using Network = Net<TinyD32, float>;
  using Loss = hash::loss::GreedyHash<float, Cuda>;
  hash::Trainer<Network, Loss> t(Network(kTrainerBits, init), Loss(trainer_loss_config(), lg), {}, 1);
  CHECK_THROWS_WITH(t.set_cuda_graphs(true), Catch::Contains("parameters of its own"));
  CHECK(!t.cuda_graphs());
}
#endif
