#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../common/file_bytes.hpp"
#include "../common/temp_dir.hpp"
#include "common.hpp"
#include "vts/index/export.hpp"
#include "vts/index/search.hpp"
#include "vts/io/npy.hpp"

using namespace vts::index;
using vts_test_common::read_bytes;
using vts_test_common::TempDir;

namespace {

std::string golden(const std::string& name) { return std::string(VTS_TEST_DATA_DIR) + "/eval/" + name; }

}  // namespace

TEST_CASE("FAISS export is byte-identical to what FAISS 1.7.3 writes (flat and id map)", "[index][export]") {
  TempDir tmp;
  const vts::io::Array a = vts::io::read_npy(golden("faiss_codes.npy"));
  REQUIRE(a.shape == std::vector<int64_t>{20, 8});
  const PackedCodes codes(a.as<uint8_t>(), 20, 64);
  export_faiss_binary_flat(tmp / "flat.index", codes);
  CHECK(read_bytes(tmp / "flat.index") == read_bytes(golden("faiss_flat_64.index")));

  const std::vector<int64_t> ids = vts::io::read_npy(golden("faiss_ids.npy")).as<int64_t>();
  export_faiss_binary_idmap(tmp / "idmap.index", codes, ids);
  CHECK(read_bytes(tmp / "idmap.index") == read_bytes(golden("faiss_idmap_64.index")));
  CHECK_THROWS_WITH(export_faiss_binary_idmap(tmp / "x", codes, std::vector<int64_t>(3)),
                    Catch::Contains("one id per code (20)") && Catch::Contains("found 3"));
}

TEST_CASE("Milvus export: uint8 n × K/8 vectors and int64 ids", "[index][export]") {
  TempDir tmp;
  vts::Generator g(51);
  const PackedCodes c = vts_test::random_codes(g, 33, 128);
  export_milvus(tmp / "v.npy", tmp / "i.npy", c);
  const vts::io::Array v = vts::io::read_npy(tmp / "v.npy");
  CHECK(v.dtype == vts::io::DType::u8);
  CHECK(v.shape == std::vector<int64_t>{33, 16});
  CHECK(v.bytes == c.bytes());
  const vts::io::Array i = vts::io::read_npy(tmp / "i.npy");
  CHECK(i.dtype == vts::io::DType::i64);
  const auto ids = i.as<int64_t>();
  REQUIRE(ids.size() == 33);
  for (int64_t k = 0; k < 33; ++k) CHECK(ids[static_cast<size_t>(k)] == k);

  std::vector<int64_t> mine(33);
  for (int64_t k = 0; k < 33; ++k) mine[static_cast<size_t>(k)] = 7 * k + 5;
  export_milvus(tmp / "v2.npy", tmp / "i2.npy", c, mine);
  CHECK(vts::io::read_npy(tmp / "i2.npy").as<int64_t>() == mine);
  CHECK_THROWS_WITH(export_milvus(tmp / "v3.npy", tmp / "i3.npy", c, std::vector<int64_t>(2)),
                    Catch::Contains("one id per code (33)"));
  CHECK_THROWS_WITH(export_milvus(tmp / "both.npy", tmp / "./both.npy", c), Catch::Contains("two different files"));
  CHECK_FALSE(std::filesystem::exists(tmp / "both.npy"));
}

// Optional: loads our file with FAISS's own Python reader and compares its search with ours. The
// byte checks above already pin the format; this is the end-to-end confirmation where FAISS exists.
TEST_CASE("FAISS export loads and searches in python3-faiss like VTS (skipped without it)", "[index][export][python]") {
  if (std::system("/usr/bin/python3 -c 'import faiss, numpy' >/dev/null 2>&1") != 0) {
    WARN("skipped: /usr/bin/python3 with faiss and numpy not found (install python3-faiss); byte checks still ran");
    return;
  }
  TempDir tmp;
  vts::Generator g(52);
  const int64_t n = 3000, nq = 12, k = 25;
  for (int64_t bits : {64, 256}) {
    const PackedCodes db = vts_test::clustered_codes(g, n, bits, 20);
    const PackedCodes q = vts_test::random_codes(g, nq, bits);
    export_faiss_binary_flat(tmp / "db.index", db);
    vts::io::Array qa;
    qa.dtype = vts::io::DType::u8;
    qa.shape = {nq, q.code_bytes()};
    qa.bytes = q.bytes();
    vts::io::write_npy(tmp / "q.npy", qa);
    const std::string script = tmp / "search.py";
    {
      std::ofstream py(script);
      py << "import sys, faiss, numpy as np\n"
            "d = sys.argv[1]\n"
            "index = faiss.read_index_binary(d + '/db.index')\n"
            "assert index.ntotal == " << n << " and index.d == " << bits << "\n"
            "D, I = index.search(np.load(d + '/q.npy'), " << k << ")\n"
            "np.save(d + '/D.npy', D.astype(np.int32)); np.save(d + '/I.npy', I.astype(np.int64))\n";
    }
    const std::string cmd = "/usr/bin/python3 " + script + " " + tmp.path.string();
    REQUIRE(std::system(cmd.c_str()) == 0);
    const auto fd = vts::io::read_npy(tmp / "D.npy").as<int32_t>();
    const auto fi = vts::io::read_npy(tmp / "I.npy").as<int64_t>();
    const KnnResult ours = knn_search(db, q, k);
    REQUIRE(fd.size() == static_cast<size_t>(nq * k));
    for (int64_t qi = 0; qi < nq; ++qi)
      for (int64_t j = 0; j < k; ++j) {
        const size_t o = static_cast<size_t>(qi * k + j);
        INFO("K=" << bits << " query " << qi << " rank " << j);
        // Same distance at every rank; FAISS's neighbour really is at that distance (its tie
        // order is its own, so the index may differ inside a tie).
        REQUIRE(fd[o] == ours.distances[o]);
        REQUIRE(static_cast<int32_t>(hamming_distance(db.code(fi[o]), q.code(qi), db.code_bytes())) == fd[o]);
      }
  }
}
