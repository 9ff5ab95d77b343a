// The library used from several std::threads at once, each thread on its own objects (docs/ops.md,
// "Threads"): the default generator hands concurrent draws disjoint counter ranges and loses none;
// two models trained at once, each with its own generator, end with the bits of the same runs made
// one after the other; two threads evaluating one shared model under NoGradGuard get its outputs
// and do not turn recording off in a thread that trains beside them; tensors made and freed on
// several threads never share memory. scripts/tsan-check builds this file under ThreadSanitizer.
//
// Catch2's assertions are not thread-safe, so the threads only record what they saw; the checks
// run on the main thread after the joins.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <latch>
#include <thread>
#include <utility>
#include <vector>

#include "vts/nn/layers.hpp"
#include "vts/optim/optim.hpp"
#include "vts/vts.hpp"

namespace {

using Tensor = vts::Tensor<float>;

// Restores the default generator's state when a test that draws from it ends, so the test cases
// of this executable do not depend on their order.
class DefaultGeneratorState {
 public:
  DefaultGeneratorState() : seed_(vts::default_generator().seed()), offset_(vts::default_generator().offset()) {}
  ~DefaultGeneratorState() { vts::default_generator().set_state(seed_, offset_); }

 private:
  uint64_t seed_, offset_;
};

// A small classifier with dropout: Linear → nn::Mlp (GELU, dropout) → Linear, trained with AdamW on
// a seeded problem (4 classes, points around 4 random centres). Everything random — data, initial
// weights, dropout masks, batch order — comes from the run's own generator seeded with `seed`,
// except the dropout masks when `dropout_gen` is given (a generator shared with another thread).
struct MlpRun {
  std::vector<float> losses;                 // per step
  std::vector<std::vector<float>> weights;   // after the last step
  bool every_loss_required_grad = true;
};

MlpRun train_mlp(uint64_t seed, vts::Generator* dropout_gen, int64_t steps = 150) {
  constexpr int64_t kIn = 12, kDim = 32, kHidden = 64, kClasses = 4, kBatch = 32, kPoints = 256;
  vts::Generator gen(seed);
  Tensor centres = vts::nn::init::normal_(Tensor::empty(vts::Shape{kClasses, kIn}), 0.0, 2.0, gen);
  Tensor x = vts::nn::init::normal_(Tensor::empty(vts::Shape{kPoints, kIn}), 0.0, 1.0, gen);
  std::vector<int64_t> labels(kPoints);
  for (int64_t i = 0; i < kPoints; ++i) {
    labels[static_cast<size_t>(i)] = static_cast<int64_t>(gen.next_below(kClasses));
    for (int64_t j = 0; j < kIn; ++j) x.data()[i * kIn + j] += centres.data()[labels[static_cast<size_t>(i)] * kIn + j];
  }

  vts::nn::Linear<float> embed(kIn, kDim, gen), head(kDim, kClasses, gen);
  vts::nn::Mlp<float> block(kDim, kHidden, 0.2, gen);
  std::vector<Tensor> params{embed.weight, embed.bias, head.weight, head.bias};
  for (const Tensor& p : vts::nn::parameters(block)) params.push_back(p);
  vts::optim::AdamW<float> opt(params, {.lr = 3e-3});

  vts::nn::Context ctx{true, dropout_gen ? dropout_gen : &gen};
  MlpRun run;
  for (int64_t step = 0; step < steps; ++step) {
    std::vector<int64_t> rows(kBatch), batch_labels(kBatch);
    for (int64_t i = 0; i < kBatch; ++i) {
      rows[static_cast<size_t>(i)] = static_cast<int64_t>(gen.next_below(kPoints));
      batch_labels[static_cast<size_t>(i)] = labels[static_cast<size_t>(rows[static_cast<size_t>(i)])];
    }
    const Tensor h = embed.forward(vts::index_select(x, rows));
    const Tensor loss = vts::cross_entropy(head.forward(block.forward_add(h, h, ctx)), batch_labels);
    run.every_loss_required_grad = run.every_loss_required_grad && loss.requires_grad();
    if (!loss.requires_grad()) break;  // recording was off: nothing to step
    opt.zero_grad();
    loss.backward();
    opt.step();
    run.losses.push_back(loss.item());
  }
  for (const Tensor& p : params) run.weights.push_back(p.to_vector());
  return run;
}

}  // namespace

TEST_CASE("threads: concurrent draws from the default generator get disjoint counter ranges", "[threads]") {
  const DefaultGeneratorState restore;
  vts::Generator& g = vts::default_generator();
  constexpr int kThreads = 4, kDraws = 200000, kRounds = 10;
  // A lost update needs two threads inside reserve() at the same moment; with the old
  // read-then-write offset one round of this lost some in about half the runs on 2 cores, so a
  // few rounds make a pass by luck unlikely.
  int rounds_with_overlaps = 0, rounds_with_wrong_offset = 0;
  for (int round = 0; round < kRounds; ++round) {
    g.set_state(42, 1000);
    // Thread t asks for 1 + (i + t) % 9 values in its i-th draw: 1 to 3 blocks, a mix of sizes.
    std::vector<std::vector<std::pair<uint64_t, uint64_t>>> ranges(kThreads);  // (first block, blocks)
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        auto& mine = ranges[static_cast<size_t>(t)];
        mine.reserve(kDraws);
        start.arrive_and_wait();  // all at once, for as much contention as the cores give
        for (int i = 0; i < kDraws; ++i) {
          const uint64_t values = 1 + static_cast<uint64_t>((i + t) % 9);
          mine.emplace_back(g.reserve(values), (values + 3) / 4);
        }
      });
    for (auto& th : threads) th.join();

    std::vector<std::pair<uint64_t, uint64_t>> all;
    uint64_t total_blocks = 0;
    for (const auto& mine : ranges)
      for (const auto& r : mine) {
        all.push_back(r);
        total_blocks += r.second;
      }
    std::sort(all.begin(), all.end());
    // Sorted by first block, the ranges must tile [1000, 1000 + total) with no gap and no overlap:
    // an update lost to a race hands two callers the same blocks.
    uint64_t expected_first = 1000, misplaced = 0;
    for (const auto& [first, blocks] : all) {
      misplaced += first != expected_first;
      expected_first = first + blocks;
    }
    rounds_with_overlaps += misplaced != 0;
    rounds_with_wrong_offset += g.offset() != 1000 + total_blocks;
    CHECK(g.seed() == 42);
  }
  CHECK(rounds_with_overlaps == 0);
  CHECK(rounds_with_wrong_offset == 0);
}

TEST_CASE("threads: two models trained at once, each with its own generator, match each trained alone", "[threads]") {
  const MlpRun alone_a = train_mlp(1, nullptr), alone_b = train_mlp(2, nullptr);
  REQUIRE(alone_a.losses.size() == 150);
  REQUIRE(alone_a.losses != alone_b.losses);  // two different problems, so a swap would show
  CHECK(alone_a.losses.back() < 0.5f * alone_a.losses.front());  // and it learns

  MlpRun together_a, together_b;
  std::latch start(2);
  std::thread ta([&] {
    start.arrive_and_wait();
    together_a = train_mlp(1, nullptr);
  });
  std::thread tb([&] {
    start.arrive_and_wait();
    together_b = train_mlp(2, nullptr);
  });
  ta.join();
  tb.join();
  CHECK(together_a.losses == alone_a.losses);
  CHECK(together_a.weights == alone_a.weights);
  CHECK(together_b.losses == alone_b.losses);
  CHECK(together_b.weights == alone_b.weights);
}

TEST_CASE("threads: two models drawing dropout masks from the default generator at once lose no draw", "[threads]") {
  // Both take their masks from the shared default generator, so which thread gets which counters
  // depends on timing and the weights may differ from a run alone; but each run reserves the same
  // blocks whatever it is given, so the generator must end exactly as far on as the two runs alone.
  const DefaultGeneratorState restore;
  vts::Generator& g = vts::default_generator();
  g.set_state(7, 0);
  (void)train_mlp(1, &g);
  const uint64_t one_run = g.offset();
  REQUIRE(one_run > 0);

  g.set_state(7, 0);
  std::vector<MlpRun> runs(2);
  std::latch start(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      runs[static_cast<size_t>(t)] = train_mlp(1, &g);
    });
  for (auto& th : threads) th.join();
  CHECK(g.offset() == 2 * one_run);
  for (const MlpRun& r : runs) {
    REQUIRE(r.losses.size() == 150);
    CHECK(std::all_of(r.losses.begin(), r.losses.end(), [](float l) { return std::isfinite(l); }));
  }
}

TEST_CASE("threads: two threads evaluating one model under NoGradGuard leave recording on in a thread that trains",
          "[threads]") {
  const MlpRun alone = train_mlp(3, nullptr);

  // One model, shared by two evaluating threads: eval-mode forwards under NoGradGuard only read
  // its parameters.
  vts::Generator gen(9);
  const vts::nn::Mlp<float> model(16, 32, 0.5, gen);
  const Tensor input = vts::nn::init::normal_(Tensor::empty(vts::Shape{64, 16}), 0.0, 1.0, gen);
  std::vector<float> expected;
  {
    vts::NoGradGuard no_grad;
    vts::nn::Context eval_ctx;  // training = false: no dropout, no draw from the default generator
    expected = model.forward(input, eval_ctx).to_vector();
  }

  constexpr int kEvaluators = 2;
  MlpRun trained;
  std::vector<std::vector<std::vector<float>>> evaluated(kEvaluators);
  std::vector<int> recorded(kEvaluators, 0);
  std::latch start(1 + kEvaluators);
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    start.arrive_and_wait();
    trained = train_mlp(3, nullptr);
  });
  for (int e = 0; e < kEvaluators; ++e)
    threads.emplace_back([&, e] {
      vts::NoGradGuard no_grad;
      vts::nn::Context eval_ctx;
      start.arrive_and_wait();
      for (int i = 0; i < 200; ++i) {
        const Tensor y = model.forward(input, eval_ctx);
        recorded[static_cast<size_t>(e)] += y.requires_grad();
        if (i % 50 == 0) evaluated[static_cast<size_t>(e)].push_back(y.to_vector());
      }
    });
  for (auto& th : threads) th.join();

  // Had the evaluators' NoGradGuard reached the trainer's thread, its losses would not have
  // required a gradient and train_mlp would have stopped at the first step.
  CHECK(trained.every_loss_required_grad);
  CHECK(trained.losses == alone.losses);
  CHECK(trained.weights == alone.weights);
  for (int e = 0; e < kEvaluators; ++e) {
    CHECK(recorded[static_cast<size_t>(e)] == 0);
    for (const auto& y : evaluated[static_cast<size_t>(e)]) CHECK(y == expected);
  }
  CHECK(vts::grad_enabled());  // this thread's mode was never touched
}

TEST_CASE("threads: tensors made and freed on several threads never share memory", "[threads]") {
  // The CPU caching allocator is one per process: blocks freed on one thread are handed out on
  // another. Each thread fills its tensors with its own value and checks them after a few more
  // allocations, while the main thread reads the allocator's cached byte count.
  constexpr int kThreads = 3, kIterations = 300;
  std::vector<int64_t> corrupted(kThreads, 0);
  std::latch start(kThreads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kIterations; ++i) {
        const int64_t n = 64 << (i % 4);  // four sizes, so freed blocks are reused across threads
        Tensor mine = Tensor::full(vts::Shape{n}, static_cast<float>(t));
        const Tensor scratch = Tensor::zeros(vts::Shape{n}) + 1.0f;  // more traffic in between
        const std::vector<float> v = mine.to_vector();
        corrupted[static_cast<size_t>(t)] +=
            std::count_if(v.begin(), v.end(), [&](float x) { return x != static_cast<float>(t); });
        (void)scratch;
      }
    });
  start.arrive_and_wait();
  size_t max_seen = 0;
  for (int i = 0; i < 1000; ++i) max_seen = std::max(max_seen, vts::cpu::CachingHostAllocator::instance().cached_bytes());
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) CHECK(corrupted[static_cast<size_t>(t)] == 0);
  CHECK(max_seen % vts::cpu::CachingHostAllocator::kAlignment == 0);
}
