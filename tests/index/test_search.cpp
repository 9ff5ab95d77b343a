#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "common.hpp"
#include "vts/index/search.hpp"

using namespace vts::index;
using vts_test::brute_distances;
using vts_test::brute_ranking;

namespace {

// Compares knn_search with the brute-force ranking: same indices, same distances, padding.
void check_knn(CodesView db, CodesView queries, int64_t k, const SearchOptions& opt) {
  const KnnResult r = knn_search(db, queries, k, opt);
  REQUIRE(r.queries == queries.count);
  REQUIRE(r.k == k);
  for (int64_t q = 0; q < queries.count; ++q) {
    const auto rank = brute_ranking(db, queries.code(q));
    const auto dist = brute_distances(db, queries.code(q));
    for (int64_t j = 0; j < k; ++j) {
      INFO("K=" << db.bits << " n=" << db.count << " k=" << k << " isa=" << isa_name(opt.isa)
                << " threads=" << opt.threads << " query " << q << " rank " << j);
      if (j < db.count) {
        const int64_t want = rank[static_cast<size_t>(j)];
        REQUIRE(r.index(q, j) == want);
        REQUIRE(r.distance(q, j) == static_cast<int32_t>(dist[static_cast<size_t>(want)]));
      } else {
        REQUIRE(r.index(q, j) == -1);
        REQUIRE(r.distance(q, j) == -1);
      }
    }
  }
}

}  // namespace

TEST_CASE("kernels: distances equal the byte-wise reference for every K and level", "[index][search]") {
  vts::Generator g(5);
  for (int64_t bits : {8, 16, 32, 48, 64, 72, 128, 192, 256, 264, 512, 520, 1024}) {
    // n not a multiple of 32 so the vector kernels' tails run too.
    const PackedCodes db = vts_test::random_codes(g, 203, bits);
    const PackedCodes q = vts_test::random_codes(g, 3, bits);
    for (Isa isa : vts_test::runnable_isas()) {
      for (int64_t qi = 0; qi < q.size(); ++qi) {
        std::vector<uint16_t> d(static_cast<size_t>(db.size()), 0xFFFF);
        hamming_distances(db, q.code(qi), d.data(), isa);
        const auto want = brute_distances(db, q.code(qi));
        for (int64_t i = 0; i < db.size(); ++i) {
          INFO("K=" << bits << " isa=" << isa_name(isa) << " item " << i);
          REQUIRE(d[static_cast<size_t>(i)] == want[static_cast<size_t>(i)]);
        }
      }
    }
  }
}

TEST_CASE("kernels: extreme distances 0 and K", "[index][search]") {
  for (int64_t bits : {64, 128, 256, 512}) {
    PackedCodes db(40, bits);
    std::fill(db.data(), db.data() + db.size() * db.code_bytes(), 0xFF);
    std::fill(db.code(5), db.code(5) + db.code_bytes(), 0x00);
    PackedCodes q(1, bits);  // all zero
    for (Isa isa : vts_test::runnable_isas()) {
      std::vector<uint16_t> d(40);
      hamming_distances(db, q.code(0), d.data(), isa);
      for (int i = 0; i < 40; ++i) CHECK(d[static_cast<size_t>(i)] == (i == 5 ? 0 : bits));
    }
  }
}

TEST_CASE("knn_search equals brute force, ties in index order (random and clustered codes)", "[index][search]") {
  vts::Generator g(7);
  for (int64_t bits : {16, 32, 48, 64, 128, 200, 256, 512}) {
    for (bool clustered : {false, true}) {
      const int64_t n = 1500;
      const PackedCodes db = clustered ? vts_test::clustered_codes(g, n, bits) : vts_test::random_codes(g, n, bits);
      const PackedCodes q = clustered ? vts_test::clustered_codes(g, 9, bits) : vts_test::random_codes(g, 9, bits);
      for (Isa isa : vts_test::runnable_isas())
        for (int64_t k : {1, 10, 100, 333})
          for (int threads : {1, 2}) check_knn(db, q, k, SearchOptions{isa, threads});
    }
  }
}

TEST_CASE("knn_search: k above the database size pads with -1 (also k = 0 and empty inputs)", "[index][search]") {
  vts::Generator g(8);
  const PackedCodes db = vts_test::clustered_codes(g, 50, 64);
  const PackedCodes q = vts_test::random_codes(g, 4, 64);
  check_knn(db, q, 50, {});
  check_knn(db, q, 64, {});
  check_knn(db, q, 5000, {});  // the collectors keep min(k, n), the output still has k slots
  check_knn(db.view().slice(0, 0), q, 3, {});
  const KnnResult none = knn_search(db, q.view().slice(0, 0), 5);
  CHECK(none.indices.empty());
  const KnnResult zero = knn_search(db, q, 0);
  CHECK(zero.indices.empty());
}

TEST_CASE("knn_search: all-identical codes return the first k indices", "[index][search]") {
  PackedCodes db(9000, 64);
  std::fill(db.data(), db.data() + db.size() * 8, 0xA5);
  PackedCodes q(3, 64);
  for (Isa isa : vts_test::runnable_isas()) {
    const KnnResult r = knn_search(db, q, 250, {isa, 2});
    for (int64_t qi = 0; qi < 3; ++qi)
      for (int64_t j = 0; j < 250; ++j) {
        REQUIRE(r.index(qi, j) == j);
        REQUIRE(r.distance(qi, j) == 32);
      }
  }
}

TEST_CASE("knn_search and radius_search reach the largest distance K", "[index][search]") {
  // Item 2 is the bitwise complement of the query: distance K, the worst possible. With k = n
  // every item must come back, the complement last; a radius of K must include it too.
  for (int64_t bits : {16, 64, 128, 256}) {
    PackedCodes db(4, bits), q(1, bits);
    std::fill(q.data(), q.data() + q.code_bytes(), 0x5A);
    std::fill(db.code(0), db.code(0) + db.code_bytes(), 0x5A);  // distance 0
    std::fill(db.code(1), db.code(1) + db.code_bytes(), 0x5B);  // one bit per byte: K / 8
    std::fill(db.code(2), db.code(2) + db.code_bytes(), 0xA5);  // complement: K
    std::fill(db.code(3), db.code(3) + db.code_bytes(), 0x5A);  // distance 0, after item 0
    const std::vector<int64_t> order{0, 3, 1, 2};
    const std::vector<int32_t> dist{0, 0, static_cast<int32_t>(bits / 8), static_cast<int32_t>(bits)};
    for (Isa isa : vts_test::runnable_isas()) {
      INFO("K=" << bits << " isa=" << isa_name(isa));
      const KnnResult r = knn_search(db, q, 4, {isa, 1});
      CHECK(r.indices == order);
      CHECK(r.distances == dist);
      const RadiusResult within = radius_search(db, q, bits, {isa, 1});
      CHECK(within.indices == order);
      CHECK(within.distances == dist);
      CHECK(radius_search(db, q, bits - 1, {isa, 1}).count(0) == 3);
    }
  }
}

TEST_CASE("knn_search: the database split between threads (few queries, large n) merges exactly", "[index][search]") {
  vts::Generator g(9);
  for (int64_t bits : {64, 256}) {
    const PackedCodes db = vts_test::clustered_codes(g, 20000, bits, 6);
    const PackedCodes q = vts_test::clustered_codes(g, 3, bits, 6);
    for (int threads : {2, 3}) check_knn(db, q, 77, SearchOptions{Isa::automatic, threads});
    check_knn(db, q.view().slice(0, 1), 1000, SearchOptions{Isa::automatic, 2});
  }
}

TEST_CASE("knn_search rejects mismatched K and negative k", "[index][search]") {
  vts::Generator g(10);
  const PackedCodes db = vts_test::random_codes(g, 10, 64);
  const PackedCodes q = vts_test::random_codes(g, 2, 128);
  CHECK_THROWS_WITH(knn_search(db, q, 3), Catch::Contains("K = 64") && Catch::Contains("K = 128"));
  CHECK_THROWS_WITH(knn_search(db, db, -1), Catch::Contains("k >= 0"));
  SearchOptions negative_threads;
  negative_threads.threads = -2;
  CHECK_THROWS_WITH(knn_search(db, db, 3, negative_threads), Catch::Contains("SearchOptions::threads") && Catch::Contains("-2"));
}

TEST_CASE("Ranker / rank_all: counting sort equals a stable sort by distance", "[index][search]") {
  vts::Generator g(12);
  for (int64_t bits : {16, 64, 128, 256, 520}) {
    const PackedCodes db = vts_test::clustered_codes(g, 777, bits, 3);
    const PackedCodes q = vts_test::random_codes(g, 4, bits);
    for (Isa isa : vts_test::runnable_isas()) {
      Ranker ranker(db, isa);
      for (int64_t qi = 0; qi < q.size(); ++qi) {
        ranker.rank(q.code(qi));
        const auto want = brute_ranking(db, q.code(qi));
        const auto dist = brute_distances(db, q.code(qi));
        REQUIRE(std::equal(want.begin(), want.end(), ranker.order().begin()));
        // starts(): first rank of each distance.
        for (int64_t r = 0; r < db.size(); ++r) {
          const uint32_t d = dist[static_cast<size_t>(want[static_cast<size_t>(r)])];
          REQUIRE(ranker.starts()[d] <= r);
          REQUIRE(r < ranker.starts()[d + 1]);
        }
        REQUIRE(ranker.starts()[static_cast<size_t>(bits + 1)] == db.size());
        REQUIRE(rank_all(db, q.code(qi), isa) == want);
      }
    }
  }
}

TEST_CASE("radius_search returns exactly the items within r, in (distance, index) order", "[index][search]") {
  vts::Generator g(13);
  for (int64_t bits : {32, 64, 128, 256}) {
    const PackedCodes db = vts_test::clustered_codes(g, 3000, bits, 5);
    const PackedCodes q = vts_test::clustered_codes(g, 7, bits, 5);
    for (int64_t radius : {int64_t(0), int64_t(1), int64_t(2), int64_t(5), bits}) {
      for (Isa isa : vts_test::runnable_isas()) {
        for (int threads : {1, 2}) {
          const RadiusResult r = radius_search(db, q, radius, {isa, threads});
          REQUIRE(r.queries() == q.size());
          for (int64_t qi = 0; qi < q.size(); ++qi) {
            std::vector<int64_t> want;
            for (int64_t i : brute_ranking(db, q.code(qi)))
              if (hamming_distance(db.code(i), q.code(qi), db.code_bytes()) <= radius) want.push_back(i);
            INFO("K=" << bits << " r=" << radius << " isa=" << isa_name(isa) << " query " << qi);
            REQUIRE(r.count(qi) == static_cast<int64_t>(want.size()));
            for (size_t j = 0; j < want.size(); ++j) {
              const int64_t o = r.offsets[static_cast<size_t>(qi)] + static_cast<int64_t>(j);
              REQUIRE(r.indices[static_cast<size_t>(o)] == want[j]);
              REQUIRE(r.distances[static_cast<size_t>(o)] ==
                      static_cast<int32_t>(hamming_distance(db.code(want[j]), q.code(qi), db.code_bytes())));
            }
          }
        }
      }
    }
  }
  CHECK_THROWS_WITH(radius_search(vts_test::random_codes(g, 4, 64), vts_test::random_codes(g, 1, 64), -1),
                    Catch::Contains("radius >= 0"));
}

TEST_CASE("distance_matrix matches per-query distances", "[index][search]") {
  vts::Generator g(14);
  const PackedCodes db = vts_test::random_codes(g, 100, 128);
  const PackedCodes q = vts_test::random_codes(g, 6, 128);
  const auto m = distance_matrix(db, q, {Isa::automatic, 2});
  for (int64_t qi = 0; qi < 6; ++qi) {
    const auto want = brute_distances(db, q.code(qi));
    for (int64_t i = 0; i < 100; ++i) REQUIRE(m[static_cast<size_t>(qi * 100 + i)] == want[static_cast<size_t>(i)]);
  }
}

TEST_CASE("resolve_isa: automatic picks a supported level and unsupported levels are refused", "[index][search]") {
  const Isa best = resolve_isa(Isa::automatic);
  CHECK(best != Isa::automatic);
  CHECK(isa_supported(best));
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (isa_supported(isa))
      CHECK(resolve_isa(isa) == isa);
    else
      CHECK_THROWS_WITH(resolve_isa(isa), Catch::Contains("lacks it"));
  }
}
