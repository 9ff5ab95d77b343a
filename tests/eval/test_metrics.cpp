#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "vts/core/rng.hpp"
#include "vts/eval/retrieval.hpp"

using namespace vts;
using namespace vts::eval;
using index::Labels;
using index::PackedCodes;

namespace {

// Five database items at distances 1, 0, 2, 1, 3 from the query; items 0, 2 and 4 relevant.
// Ranking (stable): 1, 0, 3, 2, 4 → relevance 0, 1, 0, 1, 1.
struct Tiny {
  PackedCodes q{1, 8}, db{5, 8};
  Labels ql = Labels(1, 3), dl = Labels(5, 3);
  Tiny() {
    const uint8_t codes[5] = {0x01, 0x00, 0x03, 0x80, 0x07};
    std::copy(codes, codes + 5, db.data());
    ql.set(0, 0);
    ql.set(0, 2);
    dl.set(0, 0);
    dl.set(1, 1);
    dl.set(2, 2);
    dl.set(2, 1);
    dl.set(3, 1);
    dl.set(4, 0);
  }
};

// A direct implementation of §4.3 over a stable argsort, for random cross-checks.
std::vector<double> brute_ap(const PackedCodes& q, const Labels& ql, const PackedCodes& db, const Labels& dl, int64_t kk) {
  std::vector<double> aps;
  for (int64_t i = 0; i < q.size(); ++i) {
    std::vector<uint32_t> d(static_cast<size_t>(db.size()));
    for (int64_t j = 0; j < db.size(); ++j) d[static_cast<size_t>(j)] = index::hamming_distance(db.code(j), q.code(i), db.code_bytes());
    std::vector<int64_t> idx(d.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return d[static_cast<size_t>(a)] < d[static_cast<size_t>(b)]; });
    double sum = 0;
    int64_t r = 0;
    for (int64_t j = 0; j < kk; ++j)
      if (dl.view().shares_class(idx[static_cast<size_t>(j)], ql.view(), i)) sum += static_cast<double>(++r) / static_cast<double>(j + 1);
    aps.push_back(r ? sum / static_cast<double>(r) : 0.0);
  }
  return aps;
}

}  // namespace

TEST_CASE("mAP on a hand-worked example: quirk, all, cut-offs, zero AP", "[eval]") {
  const Tiny t;
  CHECK(mean_average_precision(t.q, t.ql, t.db, t.dl) == Approx(0.5).margin(1e-15));  // first 4: 0,1,0,1
  CHECK(mean_average_precision(t.q, t.ql, t.db, t.dl, -1, TopkAll::all) == Approx((0.5 + 0.5 + 0.6) / 3).margin(1e-15));
  CHECK(mean_average_precision(t.q, t.ql, t.db, t.dl, 2) == Approx(0.5).margin(1e-15));
  CHECK(mean_average_precision(t.q, t.ql, t.db, t.dl, 1) == 0.0);
  CHECK(mean_average_precision(t.q, t.ql, t.db, t.dl, 500) == Approx(1.6 / 3).margin(1e-15));  // clamped to n
  CHECK(effective_topk(-1, TopkAll::all_but_last, 5) == 4);
  CHECK(effective_topk(-1, TopkAll::all, 5) == 5);
  CHECK(effective_topk(-1, TopkAll::all_but_last, 0) == 0);
  CHECK_THROWS_WITH(mean_average_precision(t.q, t.ql, t.db, t.dl, -2), Catch::Contains("topk > 0 or -1") && Catch::Contains("-2"));
  // topk = 0 looks at nothing: an error, not an mAP of 0 (and not the "0 = default" of the CLI).
  CHECK_THROWS_WITH(mean_average_precision(t.q, t.ql, t.db, t.dl, 0), Catch::Contains("topk > 0 or -1") && Catch::Contains("found 0"));
  CHECK_THROWS_WITH(pr_curve(t.q, t.ql, t.db, t.dl, 0), Catch::Contains("topk > 0 or -1"));
}

TEST_CASE("PR curve, P@k and radius precision on the hand-worked example", "[eval]") {
  const Tiny t;
  const PrCurve pr = pr_curve(t.q, t.ql, t.db, t.dl);
  REQUIRE(pr.index == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(pr.queries_averaged == 1);
  const std::vector<double> p{0, 1.0 / 2, 1.0 / 3, 2.0 / 4, 3.0 / 5}, r{0, 1.0 / 3, 1.0 / 3, 2.0 / 3, 1};
  for (size_t i = 0; i < 5; ++i) {
    CHECK(pr.precision[i] == Approx(p[i]).margin(1e-15));
    CHECK(pr.recall[i] == Approx(r[i]).margin(1e-15));
  }
  // topk = 1 disqualifies the query (nothing relevant at rank 1): no curve, NaN like numpy's mean.
  const PrCurve none = pr_curve(t.q, t.ql, t.db, t.dl, 1);
  CHECK(none.queries_averaged == 0);
  CHECK(std::isnan(none.precision[0]));

  const std::vector<int64_t> ks{2, 10};
  const auto pk = precision_at_k(t.q, t.ql, t.db, t.dl, ks);
  CHECK(pk[0] == Approx(0.5));
  CHECK(pk[1] == Approx(0.6));  // k clamped to n = 5
  const RadiusPrecision rp = precision_within_radius(t.q, t.ql, t.db, t.dl, 1);
  CHECK(rp.precision == Approx(1.0 / 3));
  CHECK(rp.queries_with_hits == 1.0);
  CHECK(rp.mean_retrieved == 3.0);
  CHECK(precision_within_radius(t.q, t.ql, t.db, t.dl, 0).precision == 0.0);  // item 1 only, irrelevant
}

TEST_CASE("a query with nothing in the radius scores 0 and counts in the mean", "[eval]") {
  PackedCodes db(3, 8), q(2, 8);
  std::fill(db.data(), db.data() + 3, 0xFF);
  q.code(1)[0] = 0xFF;  // query 1 sits on the database; query 0 is 8 bits away
  Labels l(3, 2), lq(2, 2);
  for (int i = 0; i < 3; ++i) l.set(i, 0);
  lq.set(0, 0);
  lq.set(1, 0);
  const RadiusPrecision rp = precision_within_radius(q, lq, db, l, 2);
  CHECK(rp.precision == 0.5);
  CHECK(rp.queries_with_hits == 0.5);
}

TEST_CASE("relevance through a class in the second label word (classes 64 and up)", "[eval]") {
  // 70 classes: a label row spans two 64-bit words. The query has class 66 only, so relevance
  // must come from the second word. Database distances 2, 0, 1 → ranking 1, 2, 0; items 0 and 2
  // share class 66 (item 2 also has class 5 in the first word), item 1 has class 3 only:
  // relevance in rank order 0, 1, 1, so AP over all three = (1/2 + 2/3) / 2 = 7/12 (§4.3), and
  // with the topk = −1 quirk (first two) AP = 1/2. Reading only the first word finds nothing.
  PackedCodes q(1, 8), db(3, 8);
  const uint8_t codes[3] = {0x03, 0x00, 0x01};
  std::copy(codes, codes + 3, db.data());
  Labels ql(1, 70), dl(3, 70);
  ql.set(0, 66);
  dl.set(0, 66);
  dl.set(1, 3);
  dl.set(2, 5);
  dl.set(2, 66);
  CHECK(mean_average_precision(q, ql, db, dl, -1, TopkAll::all) == Approx(7.0 / 12).margin(1e-15));
  CHECK(mean_average_precision(q, ql, db, dl) == Approx(0.5).margin(1e-15));
  const std::vector<int64_t> ks{1, 3};
  const auto pk = precision_at_k(q, ql, db, dl, ks);
  CHECK(pk[0] == 0.0);
  CHECK(pk[1] == Approx(2.0 / 3));
}

TEST_CASE("radius at or beyond K retrieves the whole database", "[eval]") {
  // Every distance is at most K = 8, so radius 8 and radius 20 both retrieve all 5 items of the
  // hand-worked example, of which 3 are relevant: precision 3/5, in evaluate (from the ranking's
  // distance starts, radius clamped to K) and in the radius search alike.
  const Tiny t;
  for (int64_t radius : {int64_t(8), int64_t(20)}) {
    INFO("radius " << radius);
    EvalOptions o;
    o.radius = radius;
    const EvalResult r = evaluate(t.q, t.ql, t.db, t.dl, o);
    CHECK(r.radius.precision == Approx(0.6).margin(1e-15));
    CHECK(r.radius.queries_with_hits == 1.0);
    CHECK(r.radius.mean_retrieved == 5.0);
    const RadiusPrecision s = precision_within_radius(t.q, t.ql, t.db, t.dl, radius);
    CHECK(s.precision == Approx(0.6).margin(1e-15));
    CHECK(s.mean_retrieved == 5.0);
  }
}

TEST_CASE("evaluate equals a direct §4.3 implementation on random data, any thread count and level", "[eval]") {
  Generator g(41);
  for (int64_t bits : {16, 64, 128}) {
    const int64_t n = 700, nq = 33, classes = 70;  // 70 classes: two label words per item
    PackedCodes db(n, bits), q(nq, bits);
    for (int64_t i = 0; i < n * db.code_bytes(); ++i) db.data()[i] = static_cast<uint8_t>(g.next_u32() & g.next_u32());
    for (int64_t i = 0; i < nq * q.code_bytes(); ++i) q.data()[i] = static_cast<uint8_t>(g.next_u32() & g.next_u32());
    Labels dl(n, classes), ql(nq, classes);
    for (int64_t i = 0; i < n; ++i) dl.set(i, static_cast<int64_t>(g.next_below(8)) * 9);  // classes 0, 9, ..., 63
    for (int64_t i = 0; i < nq; ++i) {
      ql.set(i, static_cast<int64_t>(g.next_below(8)) * 9);
      if (i % 4 == 0) ql.set(i, 69);  // a class in the second word that no database item has
    }
    for (int64_t kk : {int64_t(1), int64_t(50), n - 1, n}) {
      const auto want = brute_ap(q, ql, db, dl, kk);
      for (index::Isa isa : {index::Isa::scalar, index::Isa::automatic}) {
        for (int threads : {1, 2, 3}) {
          EvalOptions o;
          o.topk = kk == n - 1 ? -1 : kk;
          o.search = {isa, threads};
          const EvalResult r = evaluate(q, ql, db, dl, o);
          REQUIRE(r.topk == kk);
          for (int64_t i = 0; i < nq; ++i) REQUIRE(r.average_precision[static_cast<size_t>(i)] == Approx(want[static_cast<size_t>(i)]).margin(1e-12));
          double mean = 0;
          for (double a : want) mean += a;
          REQUIRE(r.map == Approx(mean / nq).margin(1e-12));
        }
      }
    }
  }
}

TEST_CASE("evaluate: radius precision from the ranking equals the radius search and PR is thread-independent", "[eval]") {
  Generator g(42);
  const int64_t n = 900, nq = 40;
  PackedCodes db(n, 32), q(nq, 32);
  for (int64_t i = 0; i < n * 4; ++i) db.data()[i] = static_cast<uint8_t>(g.next_u32() | g.next_u32());
  for (int64_t i = 0; i < nq * 4; ++i) q.data()[i] = static_cast<uint8_t>(g.next_u32() | g.next_u32());
  Labels dl(n, 5), ql(nq, 5);
  for (int64_t i = 0; i < n; ++i) dl.set(i, static_cast<int64_t>(g.next_below(5)));
  for (int64_t i = 0; i < nq; ++i) ql.set(i, static_cast<int64_t>(g.next_below(5)));
  for (int64_t radius : {0, 2, 4}) {
    EvalOptions o;
    o.radius = radius;
    o.topk = 10;  // the ranking walk is short, the radius may reach past it
    const EvalResult r = evaluate(q, ql, db, dl, o);
    const RadiusPrecision s = precision_within_radius(q, ql, db, dl, radius);
    CHECK(r.radius.precision == Approx(s.precision).margin(1e-15));
    CHECK(r.radius.queries_with_hits == s.queries_with_hits);
    CHECK(r.radius.mean_retrieved == s.mean_retrieved);
  }
  EvalOptions o;
  o.pr_curve = true;
  o.search.threads = 1;
  const PrCurve a = evaluate(q, ql, db, dl, o).pr;
  o.search.threads = 2;
  const PrCurve b = evaluate(q, ql, db, dl, o).pr;
  REQUIRE(a.precision.size() == static_cast<size_t>(n));
  for (size_t i = 0; i < a.precision.size(); ++i) {
    REQUIRE(a.precision[i] == b.precision[i]);  // exact integer sums
    REQUIRE(a.recall[i] == Approx(b.recall[i]).margin(1e-14));
  }
  CHECK(a.recall.back() == Approx(1.0));
}

TEST_CASE("PR helpers: reference points and subsampling", "[eval]") {
  PrCurve full;
  for (int64_t j = 0; j < 1234; ++j) {
    full.index.push_back(j);
    full.precision.push_back(1.0 / static_cast<double>(j + 1));
    full.recall.push_back(static_cast<double>(j) / 1233.0);
  }
  const PrCurve ref = pr_curve_reference_points(full);
  REQUIRE(ref.index.size() == 12 + 34);
  CHECK(ref.index[0] == 99);
  CHECK(ref.index[11] == 1199);
  CHECK(ref.index[12] == 1200);
  CHECK(ref.index.back() == 1233);
  CHECK(ref.precision[0] == full.precision[99]);

  PrCurve small;
  for (int64_t j = 0; j < 40; ++j) {
    small.index.push_back(j);
    small.precision.push_back(0);
    small.recall.push_back(0);
  }
  CHECK(pr_curve_reference_points(small).index.size() == 40);

  const PrCurve s = subsample_pr_curve(full, 150);
  REQUIRE(s.index.size() == 150);
  CHECK(s.index.front() == 0);
  CHECK(s.index.back() == 1233);
  CHECK(std::is_sorted(s.index.begin(), s.index.end()));
  CHECK(subsample_pr_curve(small, 150).index.size() == 40);
  CHECK_THROWS_WITH(pr_curve_reference_points(s), Catch::Contains("full curve"));
}

TEST_CASE("evaluate rejects mismatched inputs", "[eval]") {
  const Tiny t;
  const Labels wrong_classes(5, 4), wrong_count(4, 3);
  CHECK_THROWS_WITH(evaluate(t.q, t.ql, t.db, wrong_classes), Catch::Contains("same classes") && Catch::Contains("4"));
  CHECK_THROWS_WITH(evaluate(t.q, t.ql, t.db, wrong_count), Catch::Contains("database 5 codes / 4 labels"));
  const PackedCodes q16(1, 16);
  CHECK_THROWS_WITH(evaluate(q16, t.ql, t.db, t.dl), Catch::Contains("K = 8") && Catch::Contains("K = 16"));
  EvalOptions o;
  o.precision_at = {0};
  CHECK_THROWS_WITH(evaluate(t.q, t.ql, t.db, t.dl, o), Catch::Contains("cut-offs > 0"));
}

TEST_CASE("no query or an empty database is an error, not a mean of nothing", "[eval]") {
  const Tiny t;
  const PackedCodes no_queries(0, 8), no_items(0, 8);
  const Labels no_query_labels(0, 3), no_item_labels(0, 3);
  // One matcher, not Contains(a) && Contains(b): the combined matcher keeps references to its parts.
  const auto names_counts = [](int64_t q, int64_t n) {
    return Catch::Contains("expected at least one query and one database item, found " + std::to_string(q) +
                           " queries and " + std::to_string(n) + " database items");
  };
  CHECK_THROWS_WITH(mean_average_precision(no_queries, no_query_labels, t.db, t.dl), names_counts(0, 5));
  CHECK_THROWS_WITH(pr_curve(no_queries, no_query_labels, t.db, t.dl), names_counts(0, 5));
  const int64_t ks[] = {1};
  CHECK_THROWS_WITH(precision_at_k(no_queries, no_query_labels, t.db, t.dl, ks), names_counts(0, 5));
  CHECK_THROWS_WITH(precision_within_radius(no_queries, no_query_labels, t.db, t.dl), names_counts(0, 5));
  CHECK_THROWS_WITH(mean_average_precision(t.q, t.ql, no_items, no_item_labels), names_counts(1, 0));
  CHECK_THROWS_WITH(precision_within_radius(t.q, t.ql, no_items, no_item_labels), names_counts(1, 0));
}

TEST_CASE("evaluate_outputs packs sign(outputs)", "[eval]") {
  const Tiny t;
  std::vector<float> qo(8), dbo(40);
  const auto qv = index::unpack_codes<float>(t.q);
  const auto dv = index::unpack_codes<float>(t.db);
  for (size_t i = 0; i < qo.size(); ++i) qo[i] = qv[i] * 0.3f;
  for (size_t i = 0; i < dbo.size(); ++i) dbo[i] = dv[i] * (1.0f + static_cast<float>(i));
  CHECK(evaluate_outputs(qo.data(), 1, dbo.data(), 5, 8, t.ql, t.dl).map == Approx(0.5).margin(1e-15));
}
