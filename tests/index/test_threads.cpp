// One database, index and label set, shared const by several std::threads that search it and
// score mAP at once (docs/ops.md, "Threads"): every thread gets what the same calls return on one
// thread. Each call still runs its own OpenMP team. scripts/tsan-check builds this file under
// ThreadSanitizer. The threads record their results; Catch2 checks them after the joins (its
// assertions are not thread-safe).
#include <catch2/catch.hpp>

#include <algorithm>
#include <latch>
#include <thread>
#include <utility>
#include <vector>

#include "common.hpp"
#include "vts/eval/retrieval.hpp"
#include "vts/index/labels.hpp"
#include "vts/index/mih.hpp"
#include "vts/index/search.hpp"

using namespace vts::index;

namespace {

struct Answers {
  KnnResult knn;
  RadiusResult mih_radius;
  vts::eval::EvalResult eval;
};

Answers answer(const PackedCodes& db, const Labels& db_labels, const MultiIndexHash& mih, const PackedCodes& q,
               const Labels& q_labels) {
  vts::eval::EvalOptions eo;
  eo.precision_at = {10, 100};
  eo.radius = 2;
  eo.pr_curve = true;
  return {knn_search(db, q, 20), mih.radius_search(q, 3, {}, nullptr, MihMode::probe),
          vts::eval::evaluate(q, q_labels, db, db_labels, eo)};
}

}  // namespace

TEST_CASE("threads: several threads search one const index and score mAP at once", "[index][threads]") {
  vts::Generator g(77);
  constexpr int64_t kDb = 3000, kQueries = 24, kBits = 64, kClasses = 5;
  const PackedCodes db = vts_test::clustered_codes(g, kDb, kBits, 6);
  std::vector<int32_t> db_ids(kDb);
  for (auto& c : db_ids) c = static_cast<int32_t>(g.next_below(kClasses));
  const Labels db_labels = Labels::from_class_ids(db_ids.data(), kDb, kClasses);
  const MultiIndexHash mih(db, 4);

  constexpr int kThreads = 4;
  std::vector<PackedCodes> queries;
  std::vector<Labels> query_labels;
  std::vector<Answers> want;
  for (int t = 0; t < kThreads; ++t) {
    // Database items with 0..3 bits flipped: near neighbours and hits within the radius.
    PackedCodes q(kQueries, kBits);
    for (int64_t i = 0; i < kQueries; ++i) {
      const uint8_t* from = db.code(static_cast<int64_t>(g.next_below(kDb)));
      std::copy(from, from + q.code_bytes(), q.code(i));
      for (uint64_t f = g.next_below(4); f > 0; --f) {
        const uint64_t b = g.next_below(kBits);
        q.code(i)[b / 8] ^= static_cast<uint8_t>(1u << (b % 8));
      }
    }
    queries.push_back(std::move(q));
    std::vector<int32_t> ids(kQueries);
    for (auto& c : ids) c = static_cast<int32_t>(g.next_below(kClasses));
    query_labels.push_back(Labels::from_class_ids(ids.data(), kQueries, kClasses));
    want.push_back(answer(db, db_labels, mih, queries.back(), query_labels.back()));
  }

  constexpr int kRounds = 3;
  std::vector<std::vector<Answers>> got(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int r = 0; r < kRounds; ++r)
        got[static_cast<size_t>(t)].push_back(answer(db, db_labels, mih, queries[static_cast<size_t>(t)],
                                                     query_labels[static_cast<size_t>(t)]));
    });
  for (auto& th : threads) th.join();

  for (int t = 0; t < kThreads; ++t)
    for (const Answers& a : got[static_cast<size_t>(t)]) {
      const Answers& w = want[static_cast<size_t>(t)];
      INFO("thread " << t);
      CHECK(a.knn.indices == w.knn.indices);
      CHECK(a.knn.distances == w.knn.distances);
      CHECK(a.mih_radius.offsets == w.mih_radius.offsets);
      CHECK(a.mih_radius.indices == w.mih_radius.indices);
      CHECK(a.eval.map == w.eval.map);
      CHECK(a.eval.average_precision == w.eval.average_precision);
      CHECK(a.eval.precision_at == w.eval.precision_at);
      CHECK(a.eval.radius.precision == w.eval.radius.precision);
      CHECK(a.eval.pr.precision == w.eval.pr.precision);
    }
  CHECK(want[0].eval.map > 0.0);
  CHECK(want[0].mih_radius.indices.size() > 0);
}
