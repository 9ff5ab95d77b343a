// Two hashing models (a tiny ViT, a hash head, CSQ) trained at once by two hash::Trainers on two
// std::threads, while two more threads encode with one network they share: each ends with the bits
// it has when run alone, because each trainer draws from its own generators (docs/ops.md,
// "Threads"). scripts/tsan-check builds this file under ThreadSanitizer. The threads record their
// results; Catch2 checks them after the joins (its assertions are not thread-safe).
#include <catch2/catch.hpp>

#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include "stripes.hpp"
#include "vts/hash/encode.hpp"
#include "vts/hash/trainer.hpp"
#include "vts/nn/vit.hpp"

namespace {

using vts_test::Stripes;
using vts_test::Tiny8;
using Net = vts::hash::HashNetwork<vts::nn::ViT<Tiny8>, vts::hash::AllTokenHead<16>>;
using Loss = vts::hash::loss::Csq<>;
constexpr int64_t kCodeBits = 16;

struct TrainingRun {
  std::vector<double> epoch_losses;
  std::vector<std::vector<float>> weights;
  std::vector<float> codes;  // encode() of the training set after the last epoch
};

// Dropout on (p = 0.1 in the ViT's MLPs), AdamW, a shuffled loader with one worker thread.
TrainingRun train(uint64_t seed, const std::shared_ptr<const vts::data::Dataset>& data) {
  vts::Generator gen(seed);
  Net net(kCodeBits, gen);
  vts::hash::loss::Config cfg;
  cfg.bits = kCodeBits;
  cfg.classes = 3;
  cfg.train_size = data->size();
  Loss loss(cfg, gen);
  vts::hash::Trainer<Net, Loss> trainer(std::move(net), std::move(loss),
                                        {.name = "adamw", .lr = 3e-3, .weight_decay = 0.05}, seed);
  vts::data::Loader loader(data, {.batch_size = 8, .shuffle = true, .num_workers = 1, .seed = seed});
  TrainingRun run;
  for (int64_t e = 0; e < 3; ++e) run.epoch_losses.push_back(trainer.train_epoch(loader, e, 3));
  for (const auto& p : vts::nn::parameters(trainer.network())) run.weights.push_back(p.to_vector());
  run.codes = trainer.encode(data, 16, 1);
  return run;
}

}  // namespace

TEST_CASE("threads: two hash trainers at once, beside two encoding threads, match each run alone", "[threads]") {
  const auto data = std::make_shared<Stripes>();
  const TrainingRun alone_a = train(1, data), alone_b = train(2, data);
  REQUIRE(alone_a.weights != alone_b.weights);

  vts::Generator init(3);
  const Net frozen(kCodeBits, init);
  const std::vector<float> frozen_codes = vts::hash::encode(frozen, data, {.batch_size = 16, .workers = 1});

  TrainingRun together_a, together_b;
  constexpr int kEncoders = 2;  // sharing one network
  std::vector<std::vector<std::vector<float>>> encoded(kEncoders);
  std::latch start(2 + kEncoders);
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    start.arrive_and_wait();
    together_a = train(1, data);
  });
  threads.emplace_back([&] {
    start.arrive_and_wait();
    together_b = train(2, data);
  });
  for (int e = 0; e < kEncoders; ++e)
    threads.emplace_back([&, e] {
      start.arrive_and_wait();
      for (int i = 0; i < 3; ++i)
        encoded[static_cast<size_t>(e)].push_back(vts::hash::encode(frozen, data, {.batch_size = 16, .workers = 1}));
    });
  for (auto& th : threads) th.join();

  CHECK(together_a.epoch_losses == alone_a.epoch_losses);
  CHECK(together_a.weights == alone_a.weights);
  CHECK(together_a.codes == alone_a.codes);
  CHECK(together_b.epoch_losses == alone_b.epoch_losses);
  CHECK(together_b.weights == alone_b.weights);
  CHECK(together_b.codes == alone_b.codes);
  for (const auto& mine : encoded)
    for (const auto& codes : mine) CHECK(codes == frozen_codes);
}
