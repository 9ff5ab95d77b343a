#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "io_test_util.hpp"
#include "vts/io/npz.hpp"

using namespace vts::io;
using namespace vts_io_test;
using Catch::Matchers::Contains;

namespace {

const std::string kLayerNormKey = "Transformer/encoderblock_0/LayerNorm_0/scale";

// The members make_io_fixtures.py puts in stored.npz and deflated.npz.
void check_fixture_members(const std::map<std::string, Array>& m) {
  REQUIRE(m.size() == 10);
  const Array& w = m.at("weights");
  CHECK(w.dtype == DType::f32);
  CHECK(w.shape == std::vector<int64_t>{3, 4});
  std::vector<float> want;
  for (int i = 0; i < 12; ++i) want.push_back(static_cast<float>(i) / 8.f);
  CHECK(w.as<float>() == want);
  CHECK(m.at("labels").as<int64_t>() == std::vector<int64_t>{3, 1, 4, 1, 5});
  CHECK(m.at("mask").as<bool>() == std::vector<bool>{true, false, true});
  CHECK(m.at("i8").as<int>() == std::vector<int>{-128, 0, 127});
  CHECK(m.at("i32").as<int64_t>() == std::vector<int64_t>{-2147483648LL, 2147483647LL});
  CHECK(m.at("u16").as<int>() == std::vector<int>{0, 65535});
  CHECK(m.at("u64").as<uint64_t>() == std::vector<uint64_t>{0, 18446744073709551615ULL});
  CHECK(m.at("half").dtype == DType::f16);
  CHECK(m.at("half").as<float>() == std::vector<float>{0.5f, -0.25f});
  CHECK(m.at("scalar").shape.empty());
  CHECK(m.at("scalar").as<double>() == std::vector<double>{2.5});
  const auto ln = m.at(kLayerNormKey).as<float>();
  REQUIRE(ln.size() == 5);
  for (size_t i = 0; i < 5; ++i) CHECK(ln[i] == Approx(0.25 * static_cast<double>(i)).margin(1e-7));
}

// Offset of the first byte of array data of the first stored member whose npy header contains
// `needle` (stored members keep the npy image verbatim inside the zip).
size_t stored_data_offset(const std::vector<uint8_t>& zip, const std::string& needle) {
  const std::string s(zip.begin(), zip.end());
  const size_t at = s.find(needle);
  REQUIRE(at != std::string::npos);
  const size_t magic = s.rfind("\x93NUMPY", at);
  REQUIRE(magic != std::string::npos);
  const size_t header_len = zip[magic + 8] | (zip[magic + 9] << 8);
  return magic + 10 + header_len;
}

}  // namespace

TEST_CASE("io: npz fixtures written by numpy load: stored, deflated, zip64", "[io][npz]") {
  check_fixture_members(read_npz(golden("stored.npz")));
  check_fixture_members(read_npz(golden("deflated.npz")));

  const auto big = read_npz(golden("deflated_big.npz"));
  CHECK(big.at("zeros").shape == std::vector<int64_t>{64, 64});
  CHECK(big.at("zeros").as<float>() == std::vector<float>(4096, 0.f));
  const auto ramp = big.at("ramp").as<int>();
  REQUIRE(ramp.size() == 1000);
  CHECK(ramp[0] == 0);
  CHECK(ramp[999] == 999);

  const auto plain = read_npz(golden("plain_zip.npz"));
  CHECK(plain.at("a").as<float>() == std::vector<float>{0, 1, 2, 3});
  CHECK(plain.at("b").as<float>() == std::vector<float>{10, 11, 12, 13});

  CHECK(read_npz(golden("empty.npz")).empty());
  CHECK(list_npz(golden("empty.npz")).empty());
}

TEST_CASE("io: list_npz and read_npz_member", "[io][npz]") {
  const auto keys = list_npz(golden("stored.npz"));
  CHECK(keys == std::vector<std::string>{"weights", "labels", "mask", "i8", "i32", "u16", "u64", "half",
                                         "scalar", kLayerNormKey});
  CHECK(read_npz_member(golden("deflated.npz"), "labels").as<int64_t>() == std::vector<int64_t>{3, 1, 4, 1, 5});
  CHECK(read_npz_member(golden("stored.npz"), kLayerNormKey).numel() == 5);
  CHECK_THAT(io_error([] { read_npz_member(golden("stored.npz"), "nope"); }),
             Contains("stored.npz") && Contains("no member 'nope'") && Contains("weights"));
}

TEST_CASE("io: npz round trip for every dtype, stored and deflated", "[io][npz]") {
  TempDir dir;
  std::map<std::string, Array> arrays;
  uint64_t seed = 100;
  for (DType dt : all_dtypes()) {
    arrays[std::string("a/") + dtype_name(dt)] = random_array(dt, {3, 5}, seed++);
    arrays[std::string("scalar_") + dtype_name(dt)] = random_array(dt, {}, seed++);
  }
  arrays["empty"] = random_array(DType::f32, {0, 4}, seed++);
  for (bool compress : {false, true}) {
    const std::string p = dir / (compress ? "d.npz" : "s.npz");
    write_npz(p, arrays, compress);
    const auto back = read_npz(p);
    REQUIRE(back.size() == arrays.size());
    for (const auto& [key, a] : arrays) {
      INFO(key);
      const Array& b = back.at(key);
      CHECK(b.dtype == a.dtype);
      CHECK(b.shape == a.shape);
      CHECK(b.bytes == a.bytes);
    }
    CHECK(read_npz_member(p, "a/float32").bytes == arrays.at("a/float32").bytes);
  }
  // A compressible array really gets deflated.
  std::map<std::string, Array> zeros{{"z", make_array<float>(std::vector<float>(10000, 0.f), {100, 100})}};
  write_npz(dir / "zs.npz", zeros, false);
  write_npz(dir / "zd.npz", zeros, true);
  CHECK(read_bytes(dir / "zs.npz").size() > 40000);
  CHECK(read_bytes(dir / "zd.npz").size() < 2000);
  CHECK(read_npz(dir / "zd.npz").at("z").bytes == zeros.at("z").bytes);

  write_npz(dir / "empty.npz", {}, true);
  CHECK(read_npz(dir / "empty.npz").empty());
  CHECK(read_bytes(dir / "empty.npz") == read_bytes(golden("empty.npz")));

  // No temporaries left behind.
  for (const auto& e : dir.entries()) CHECK(e.find(".tmp") == std::string::npos);
}

TEST_CASE("io: a failed npz write leaves the old file untouched", "[io][npz]") {
  TempDir dir;
  const std::string p = dir / "keep.npz";
  write_npz(p, {{"x", make_array<float>({1.f, 2.f}, {2})}}, false);
  const auto before = read_bytes(p);
  std::map<std::string, Array> bad{{"ok", make_array<float>({1.f}, {1})}, {"bad", Array{DType::f64, {2}, {1, 2, 3}}}};
  CHECK_THAT(io_error([&] { write_npz(p, bad, true); }), Contains(p) && Contains("'bad'"));
  CHECK(read_bytes(p) == before);
  CHECK(dir.entries() == std::vector<std::string>{"keep.npz"});
}

TEST_CASE("io: corrupted npz members raise IoError naming file and member", "[io][npz]") {
  TempDir dir;
  SECTION("CRC mismatch in a stored member") {
    auto zip = read_bytes(golden("stored.npz"));
    const size_t off = stored_data_offset(zip, "'shape': (3, 4)");  // the "weights" member
    zip[off + 5] ^= 0x40;
    const std::string p = dir / "crc.npz";
    write_bytes(p, zip);
    const std::string msg = io_error([&] { read_npz(p); });
    CHECK_THAT(msg, Contains(p) && Contains("'weights'") && Contains("CRC"));
    CHECK_THAT(io_error([&] { read_npz_member(p, "weights"); }), Contains("'weights'") && Contains("CRC"));
    // The other members are intact and still readable one by one.
    CHECK(read_npz_member(p, "labels").as<int64_t>() == std::vector<int64_t>{3, 1, 4, 1, 5});
  }
  SECTION("damaged deflate stream") {
    auto zip = read_bytes(golden("deflated.npz"));
    // The first local header: the member name follows the 30-byte fixed part.
    const size_t name_len = zip[26] | (zip[27] << 8), extra_len = zip[28] | (zip[29] << 8);
    const std::string name(zip.begin() + 30, zip.begin() + 30 + static_cast<long>(name_len));
    REQUIRE(name == "weights.npy");
    const size_t data = 30 + name_len + extra_len;
    for (size_t i = 20; i < 28; ++i) zip[data + i] ^= 0xa5;
    const std::string p = dir / "inflate.npz";
    write_bytes(p, zip);
    CHECK_THAT(io_error([&] { read_npz(p); }), Contains(p) && Contains("'weights'"));
  }
  SECTION("wrong npy header length inside a member") {
    auto zip = read_bytes(golden("stored.npz"));
    const size_t off = stored_data_offset(zip, "'shape': (5,)");  // "labels" (int64, 5)
    const std::string s(zip.begin(), zip.end());
    const size_t magic = s.rfind("\x93NUMPY", off);
    zip[magic + 9] = 0x7f;  // header length ~32 KB: beyond the member
    const std::string p = dir / "hlen.npz";
    write_bytes(p, zip);
    CHECK_THAT(io_error([&] { read_npz_member(p, "labels"); }),
               Contains(p) && Contains("'labels'") && Contains("header length"));
  }
  SECTION("truncated archive") {
    auto zip = read_bytes(golden("stored.npz"));
    zip.resize(zip.size() / 2);
    const std::string p = dir / "trunc.npz";
    write_bytes(p, zip);
    CHECK_THAT(io_error([&] { read_npz(p); }), Contains(p));
    CHECK_THAT(io_error([&] { list_npz(p); }), Contains(p));
  }
  SECTION("not a zip file at all") {
    CHECK_THAT(io_error([] { read_npz(golden("f32_2x3.npy")); }), Contains("f32_2x3.npy") && Contains("zip"));
  }
  SECTION("missing file") {
    CHECK_THAT(io_error([&] { read_npz(dir / "absent.npz"); }), Contains("absent.npz"));
  }
  SECTION("a member that is not an npy image") {
    CHECK_THAT(io_error([] { read_npz(golden("not_npy.npz")); }),
               Contains("not_npy.npz") && Contains("'readme.txt'") && Contains("magic"));
    CHECK(list_npz(golden("not_npy.npz")) == std::vector<std::string>{"readme.txt"});
  }
  SECTION("a size claim deflate cannot produce is refused before allocating") {
    // plain_zip.npz has no zip64 fields, so the 32-bit sizes sit in the local header (offset 22)
    // and the central header (offset 24). Claim ~2 GiB for the deflated member "b" in both, so
    // that libzip's consistency check passes and the reader's own bound has to catch it.
    auto zip = read_bytes(golden("plain_zip.npz"));
    const std::string s(zip.begin(), zip.end());
    auto put32 = [&](size_t at, uint32_t v) {
      for (int i = 0; i < 4; ++i) zip[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
    };
    size_t lh = std::string::npos, ch = std::string::npos;
    for (size_t at = s.find("PK\x03\x04"); at != std::string::npos; at = s.find("PK\x03\x04", at + 1))
      if (s.compare(at + 30, 5, "b.npy") == 0) lh = at;
    for (size_t at = s.find("PK\x01\x02"); at != std::string::npos; at = s.find("PK\x01\x02", at + 1))
      if (s.compare(at + 46, 5, "b.npy") == 0) ch = at;
    REQUIRE(lh != std::string::npos);
    REQUIRE(ch != std::string::npos);
    put32(lh + 22, 0x7fffffffu);
    put32(ch + 24, 0x7fffffffu);
    const std::string p = dir / "bomb.npz";
    write_bytes(p, zip);
    CHECK_THAT(io_error([&] { read_npz_member(p, "b"); }),
               Contains(p) && Contains("'b'") && Contains("more than deflate can produce"));
    CHECK(read_npz_member(p, "a").as<float>() == std::vector<float>{0, 1, 2, 3});
  }
  SECTION("two members with the same key") {
    CHECK_THAT(io_error([] { read_npz(golden("dup_key.npz")); }), Contains("dup_key.npz") && Contains("more than once"));
  }
}
