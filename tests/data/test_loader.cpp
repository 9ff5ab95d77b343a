#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <limits>
#include <thread>

#include "test_util.hpp"
#include "vts/data/loader.hpp"

using Catch::Matchers::Contains;
using vts::data::Batch;
using vts::data::Loader;
using vts::data::LoaderOptions;
using vts_test::message_of;

namespace {

// Item i: image {i, a random draw, i + 0.5, ...}, label one-hot i % 4. Optional per-item delays
// scramble which worker finishes first; optional failure at one index.
class FakeDataset final : public vts::data::Dataset {
 public:
  explicit FakeDataset(int64_t n, int64_t fail_at = -1, bool slow = false) : n_(n), fail_at_(fail_at), slow_(slow) {}
  int64_t size() const override { return n_; }
  int num_classes() const override { return 4; }
  vts::data::ImageSpec spec() const override { return {1, 2, 3}; }
  void get(int64_t i, float* image, float* label, vts::Generator& rng) const override {
    check_index(i);
    if (slow_) std::this_thread::sleep_for(std::chrono::microseconds(50 * ((i * 7919) % 13)));
    if (i == fail_at_) throw vts::Error("boom at item " + std::to_string(i));
    image[0] = float(i);
    image[1] = float(rng.next_u32() & 0xFFFF);
    for (int j = 2; j < 6; ++j) image[j] = float(i) + 0.5f;
    get_label(i, label);
    calls.fetch_add(1);
  }
  void get_label(int64_t i, float* label) const override {
    for (int c = 0; c < 4; ++c) label[c] = (i % 4 == c) ? 1.0f : 0.0f;
  }
  mutable std::atomic<int64_t> calls{0};

 private:
  int64_t n_, fail_at_;
  bool slow_;
};

std::vector<Batch> run_epoch(Loader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

bool same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].images != b[i].images || a[i].labels != b[i].labels || a[i].indices != b[i].indices ||
        a[i].size != b[i].size || a[i].number != b[i].number)
      return false;
  return true;
}

}  // namespace

TEST_CASE("data: loader covers the dataset once per epoch, in order without shuffle", "[data][loader]") {
  auto ds = std::make_shared<FakeDataset>(103);
  LoaderOptions opt;
  opt.batch_size = 10;
  opt.num_workers = 3;
  Loader loader(ds, opt);
  REQUIRE(loader.num_batches() == 11);
  const auto batches = run_epoch(loader, 0);
  REQUIRE(batches.size() == 11);
  CHECK(batches.back().size == 3);  // last partial batch kept
  int64_t next = 0;
  for (const auto& b : batches) {
    CHECK(b.spec == vts::data::ImageSpec{1, 2, 3});
    CHECK(b.num_classes == 4);
    REQUIRE(b.images.size() == size_t(b.size) * 6);
    REQUIRE(b.labels.size() == size_t(b.size) * 4);
    for (int64_t j = 0; j < b.size; ++j, ++next) {
      CHECK(b.indices[size_t(j)] == next);
      CHECK(b.images[size_t(j) * 6] == float(next));
      CHECK(b.labels[size_t(j) * 4 + size_t(next % 4)] == 1.0f);
    }
  }
  CHECK(next == 103);
  CHECK(ds->calls.load() == 103);
  opt.drop_last = true;
  Loader dropping(ds, opt);
  CHECK(dropping.num_batches() == 10);
  CHECK(run_epoch(dropping, 0).size() == 10);
}

TEST_CASE("data: a batch size beyond the dataset gives one batch of everything, even INT64_MAX", "[data][loader]") {
  auto ds = std::make_shared<FakeDataset>(7);
  for (int64_t batch : {int64_t(8), std::numeric_limits<int64_t>::max()}) {
    LoaderOptions opt;
    opt.batch_size = batch;
    opt.num_workers = 0;
    Loader loader(ds, opt);
    CHECK(loader.num_batches() == 1);  // was 0 for INT64_MAX: n + batch - 1 overflowed
    const auto batches = run_epoch(loader, 0);
    REQUIRE(batches.size() == 1);
    CHECK(batches[0].size == 7);
    opt.drop_last = true;
    CHECK(Loader(ds, opt).num_batches() == 0);
  }
  LoaderOptions opt;
  opt.batch_size = std::numeric_limits<int64_t>::max();
  CHECK(Loader(std::make_shared<FakeDataset>(0), opt).num_batches() == 0);
}

TEST_CASE("data: shuffled batches depend only on (seed, epoch), not on the number of workers", "[data][loader]") {
  auto ds = std::make_shared<FakeDataset>(157, -1, /*slow=*/true);
  auto make = [&](int workers, uint64_t seed) {
    LoaderOptions opt;
    opt.batch_size = 16;
    opt.shuffle = true;
    opt.num_workers = workers;
    opt.prefetch = workers == 4 ? 3 : 0;  // explicit (raised to the worker count) and default
    opt.seed = seed;
    return std::make_unique<Loader>(ds, opt);
  };
  auto l0 = make(0, 42), l1 = make(1, 42), l4 = make(4, 42), other = make(4, 43);
  for (int64_t epoch : {0, 1}) {
    INFO("epoch " << epoch);
    const auto ref = run_epoch(*l0, epoch);
    CHECK(same(ref, run_epoch(*l1, epoch)));
    CHECK(same(ref, run_epoch(*l4, epoch)));
    CHECK(same(ref, run_epoch(*l4, epoch)));  // a rerun of the same epoch
    CHECK(!same(ref, run_epoch(*other, epoch)));
    // Every item exactly once, in the permutation order() promises.
    std::vector<int64_t> seen;
    for (const auto& b : ref) seen.insert(seen.end(), b.indices.begin(), b.indices.end());
    CHECK(seen == l0->order(epoch));
    std::vector<int64_t> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < 157; ++i) REQUIRE(sorted[size_t(i)] == i);
    CHECK(!std::is_sorted(seen.begin(), seen.end()));
  }
  CHECK(l0->order(0) != l0->order(1));
  // Augmentation draws are keyed by epoch: the same item gets new draws in a new epoch.
  auto draw_of = [&](const std::vector<Batch>& bs, int64_t item) {
    for (const auto& b : bs)
      for (int64_t j = 0; j < b.size; ++j)
        if (b.indices[size_t(j)] == item) return b.images[size_t(j) * 6 + 1];
    FAIL("item missing");
    return -1.0f;
  };
  const auto e0 = run_epoch(*l1, 0), e1 = run_epoch(*l1, 1);
  int differ = 0;
  for (int64_t item = 0; item < 20; ++item) differ += draw_of(e0, item) != draw_of(e1, item);
  CHECK(differ >= 18);
}

TEST_CASE("data: a worker's exception reaches the consumer with its message, in batch order", "[data][loader]") {
  for (int workers : {0, 1, 4}) {
    INFO(workers << " workers");
    auto ds = std::make_shared<FakeDataset>(100, /*fail_at=*/57);
    LoaderOptions opt;
    opt.batch_size = 10;
    opt.num_workers = workers;
    Loader loader(ds, opt);
    loader.start_epoch(0);
    Batch b;
    for (int i = 0; i < 5; ++i) REQUIRE(loader.next(b));  // batches 0..4 are fine
    CHECK_THAT(message_of<vts::Error>([&] { loader.next(b); }), Contains("boom at item 57"));
    CHECK_THROWS_AS(loader.next(b), vts::Error);
    // A new epoch starts clean (and fails again at the same place).
    loader.start_epoch(1);
    REQUIRE(loader.next(b));
    CHECK(b.number == 0);
  }
}

TEST_CASE("data: prefetching is bounded, and abandoning an epoch or the loader does not hang", "[data][loader]") {
  auto ds = std::make_shared<FakeDataset>(64);
  LoaderOptions opt;
  opt.batch_size = 1;
  opt.num_workers = 2;
  opt.prefetch = 2;
  {
    Loader loader(ds, opt);
    loader.start_epoch(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CHECK(ds->calls.load() <= 2);  // nothing consumed: at most `prefetch` batches built
    Batch b;
    REQUIRE(loader.next(b));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CHECK(ds->calls.load() <= 3);
    loader.start_epoch(1);  // abandon epoch 0 mid-way
    int n = 0;
    while (loader.next(b)) ++n;
    CHECK(n == 64);
    loader.start_epoch(2);
    REQUIRE(loader.next(b));
  }  // destroyed mid-epoch: the destructor joins the workers
  auto slow = std::make_shared<FakeDataset>(500, -1, true);
  opt.batch_size = 8;
  opt.num_workers = 4;
  {
    Loader loader(slow, opt);
    loader.start_epoch(0);
  }
  Loader loader(slow, opt);
  Batch b;
  CHECK_THAT(message_of<vts::Error>([&] { loader.next(b); }), Contains("start_epoch"));
  opt.batch_size = 0;
  CHECK_THROWS_AS(Loader(slow, opt), vts::Error);
}
