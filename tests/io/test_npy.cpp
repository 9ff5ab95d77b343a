#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "io_test_util.hpp"
#include "vts/io/npy.hpp"

using namespace vts::io;
using namespace vts_io_test;
using Catch::Matchers::Contains;

namespace {
std::vector<float> arange_f(int n, float scale = 1.f, float shift = 0.f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i) * scale + shift;
  return v;
}
// Builds a raw .npy image from a header dict text, for malformed-input tests.
std::vector<uint8_t> raw_npy(const std::string& dict, const std::vector<uint8_t>& data, int major = 1) {
  // Sized up front and filled by index: GCC 12 at -O3 misreads push_back after an initializer
  // list as a write past the end (-Wstringop-overflow false positive).
  const uint32_t len = static_cast<uint32_t>(dict.size());
  const size_t len_bytes = major == 1 ? 2 : 4;
  std::vector<uint8_t> out(8 + len_bytes + dict.size() + data.size());
  const uint8_t magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  std::copy(std::begin(magic), std::end(magic), out.begin());
  for (size_t i = 0; i < len_bytes; ++i) out[8 + i] = static_cast<uint8_t>(len >> (8 * i));
  std::copy(dict.begin(), dict.end(), out.begin() + static_cast<std::ptrdiff_t>(8 + len_bytes));
  std::copy(data.begin(), data.end(), out.end() - static_cast<std::ptrdiff_t>(data.size()));
  return out;
}
std::string npy_error(const std::vector<uint8_t>& img) {
  return io_error([&] { parse_npy(img.data(), img.size(), "test-image"); });
}
}  // namespace

TEST_CASE("io: npy fixtures written by numpy load with the right values", "[io][npy]") {
  SECTION("float32 2x3") {
    const Array a = read_npy(golden("f32_2x3.npy"));
    CHECK(a.dtype == DType::f32);
    CHECK(a.shape == std::vector<int64_t>{2, 3});
    CHECK(a.as<float>() == arange_f(6, 0.5f, -1.f));
  }
  SECTION("float64 0-d") {
    const Array a = read_npy(golden("f64_scalar.npy"));
    CHECK(a.dtype == DType::f64);
    CHECK(a.shape.empty());
    CHECK(a.as<double>() == std::vector<double>{3.141592653589793});
  }
  SECTION("float16 with subnormal, inf, nan") {
    const auto v = read_npy(golden("f16_7.npy")).as<float>();
    REQUIRE(v.size() == 7);
    CHECK(v[0] == 0.f);
    CHECK(v[1] == 1.f);
    CHECK(v[2] == -2.5f);
    CHECK(v[3] == 65504.f);
    CHECK(v[4] == std::ldexp(1.f, -24));
    CHECK(std::isinf(v[5]));
    CHECK(std::isnan(v[6]));
  }
  SECTION("int64") {
    const Array a = read_npy(golden("i64_4.npy"));
    CHECK(a.dtype == DType::i64);
    CHECK(a.as<int64_t>() == std::vector<int64_t>{-(int64_t(1) << 40), -1, 0, (int64_t(1) << 40) + 7});
  }
  SECTION("bool") {
    const Array a = read_npy(golden("bool_2x2.npy"));
    CHECK(a.dtype == DType::b1);
    CHECK(a.as<bool>() == std::vector<bool>{true, false, false, true});
  }
  SECTION("uint8") {
    CHECK(read_npy(golden("u8_5.npy")).as<int>() == std::vector<int>{0, 1, 127, 128, 255});
  }
  SECTION("empty (0, 3)") {
    const Array a = read_npy(golden("empty_0x3.npy"));
    CHECK(a.shape == std::vector<int64_t>{0, 3});
    CHECK(a.bytes.empty());
  }
  SECTION("fortran order becomes C order") {
    const Array a = read_npy(golden("fortran_f32_2x3x4.npy"));
    CHECK(a.shape == std::vector<int64_t>{2, 3, 4});
    CHECK(a.as<float>() == arange_f(24));
  }
  SECTION("big-endian float64 is byte-swapped") {
    const Array a = read_npy(golden("be_f8_3x2.npy"));
    CHECK(a.dtype == DType::f64);
    CHECK(a.shape == std::vector<int64_t>{3, 2});
    CHECK(a.as<double>() == std::vector<double>{0, 0.25, 0.5, 0.75, 1.0, 1.25});
  }
  SECTION("big-endian and fortran order together") {
    const Array a = read_npy(golden("be_i4_fortran_3x4.npy"));
    CHECK(a.dtype == DType::i32);
    std::vector<int32_t> want;
    for (int i = 0; i < 12; ++i) want.push_back(i - 6);
    CHECK(a.as<int32_t>() == want);
  }
  SECTION("format versions 2.0 and 3.0") {
    CHECK(read_npy(golden("v2_i16_3.npy")).as<int>() == std::vector<int>{-300, 0, 300});
    const Array v3 = read_npy(golden("v3_u32_2.npy"));
    CHECK(v3.dtype == DType::u32);
    CHECK(v3.as<uint32_t>() == std::vector<uint32_t>{7u, 4000000000u});
  }
  SECTION("void-2 reads as bfloat16") {
    const Array a = read_npy(golden("bf16_v2_4.npy"));
    CHECK(a.dtype == DType::bf16);
    const auto v = a.as<float>();
    CHECK(v[0] == 1.0f);
    CHECK(v[1] == -2.0f);
    CHECK(v[2] == 0.15625f);
    CHECK(v[3] == static_cast<float>(vts::bf16(3.0e38f)));
  }
}

TEST_CASE("io: npy round trip for every dtype and several shapes", "[io][npy]") {
  TempDir dir;
  const std::vector<std::vector<int64_t>> shapes{{}, {0}, {1}, {7}, {3, 5}, {2, 0, 4}, {2, 3, 4, 5}};
  uint64_t seed = 1;
  for (DType dt : all_dtypes()) {
    for (const auto& shape : shapes) {
      const Array a = random_array(dt, shape, seed++);
      const std::vector<uint8_t> img = serialize_npy(a);
      CHECK(img.size() % 64 == (a.bytes.size() % 64));  // data starts 64-byte aligned, like numpy
      const Array b = parse_npy(img.data(), img.size(), "round-trip");
      CHECK(b.dtype == a.dtype);
      CHECK(b.shape == a.shape);
      CHECK(b.bytes == a.bytes);

      const std::string p = dir / (std::string("rt_") + dtype_name(dt) + ".npy");
      write_npy(p, a);
      const Array c = read_npy(p);
      CHECK(c.dtype == a.dtype);
      CHECK(c.shape == a.shape);
      CHECK(c.bytes == a.bytes);
      CHECK(read_bytes(p) == img);
    }
  }
}

TEST_CASE("io: serialize_npy writes the header numpy writes", "[io][npy]") {
  const auto img = serialize_npy(make_array<float>(arange_f(6, 0.5f, -1.f), {2, 3}));
  CHECK(img == read_bytes(golden("f32_2x3.npy")));
  const auto img2 = serialize_npy(make_array<int64_t>({-(int64_t(1) << 40), -1, 0, (int64_t(1) << 40) + 7}, {4}));
  CHECK(img2 == read_bytes(golden("i64_4.npy")));
  const auto img3 = serialize_npy(make_array<double>({3.141592653589793}, {}));
  CHECK(img3 == read_bytes(golden("f64_scalar.npy")));
}

TEST_CASE("io: header parser accepts the variations other writers produce", "[io][npy]") {
  const std::vector<uint8_t> four(4 * 4, 0);
  // key order, double quotes, no trailing comma, Python 2 long suffix, extra whitespace
  for (const std::string dict : {
           "{'shape': (2, 2), 'fortran_order': False, 'descr': '<f4'}\n",
           "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,2)}\n",
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 2L), }      \n",
           "  {'descr':'f4','fortran_order':True,'shape':(4,)}",
           "{'descr': '=f4', 'fortran_order': False, 'shape': ( 2 , 2 , ), }\n",
       }) {
    INFO(dict);
    const auto img = raw_npy(dict, four);
    const Array a = parse_npy(img.data(), img.size(), "variant");
    CHECK(a.dtype == DType::f32);
    CHECK(a.numel() == 4);
  }
  const auto img = raw_npy("{'descr': '>u2', 'fortran_order': False, 'shape': (2,), }\n", {0x01, 0x02, 0xab, 0xcd});
  CHECK(parse_npy(img.data(), img.size(), "be").as<uint32_t>() == std::vector<uint32_t>{0x0102, 0xabcd});
}

TEST_CASE("io: malformed npy input raises IoError naming the source", "[io][npy]") {
  const std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
  const std::vector<uint8_t> eight(8, 0);

  CHECK_THAT(npy_error({}), Contains("test-image") && Contains("truncated"));
  {
    auto img = raw_npy(ok_dict, eight);
    img[1] = 'X';
    CHECK_THAT(npy_error(img), Contains("test-image") && Contains("magic"));
  }
  {
    auto img = raw_npy(ok_dict, eight);
    img[6] = 4;
    CHECK_THAT(npy_error(img), Contains("version 4.0"));
  }
  {  // header length larger than the file
    auto img = raw_npy(ok_dict, eight);
    img[8] = 0xff;
    img[9] = 0x7f;
    CHECK_THAT(npy_error(img), Contains("header length"));
  }
  {  // truncated in the data
    auto img = raw_npy(ok_dict, eight);
    img.resize(img.size() - 3);
    CHECK_THAT(npy_error(img), Contains("data truncated") && Contains("needs 8 bytes, found 5"));
  }
  {  // truncated inside the header
    auto img = raw_npy(ok_dict, eight);
    img.resize(20);
    CHECK_THAT(npy_error(img), Contains("test-image"));
  }
  CHECK_THAT(npy_error(raw_npy(ok_dict, std::vector<uint8_t>(9, 0))), Contains("1 unexpected bytes"));
  CHECK_THAT(npy_error(raw_npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", eight)),
             Contains("unsupported dtype descr '<c8'"));
  CHECK_THAT(npy_error(raw_npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", eight)),
             Contains("structured"));
  CHECK_THAT(npy_error(raw_npy("{'descr': '<f4', 'shape': (2,), }", eight)), Contains("missing key 'fortran_order'"));
  CHECK_THAT(npy_error(raw_npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", eight)),
             Contains("True or False"));
  CHECK_THAT(npy_error(raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", eight)),
             Contains("negative"));
  CHECK_THAT(npy_error(raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", eight)),
             Contains("unexpected key 'x'"));
  CHECK_THAT(npy_error(raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", eight)),
             Contains("after the closing"));
  CHECK_THAT(npy_error(raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 9999999999), }", eight)),
             Contains("too large"));
  CHECK_THAT(npy_error(raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'descr': '<f4'}", eight)),
             Contains("duplicate"));

  CHECK_THAT(io_error([] { read_npy(golden("object_2.npy")); }),
             Contains("object_2.npy") && Contains("object arrays"));
  CHECK_THAT(io_error([] { read_npy(golden("does_not_exist.npy")); }), Contains("does_not_exist.npy"));
  CHECK_THAT(io_error([] { read_npy(golden("stored.npz")); }), Contains("stored.npz") && Contains("magic"));
}

TEST_CASE("io: read_npy names the file for truncated files", "[io][npy]") {
  TempDir dir;
  auto bytes = read_bytes(golden("f32_2x3.npy"));
  bytes.resize(bytes.size() - 1);
  const std::string p = dir / "short.npy";
  write_bytes(p, bytes);
  CHECK_THAT(io_error([&] { read_npy(p); }), Contains(p) && Contains("truncated"));
}

TEST_CASE("io: writers refuse inconsistent arrays before touching the file", "[io][npy]") {
  TempDir dir;
  Array bad{DType::f32, {3}, std::vector<uint8_t>(8)};
  CHECK_THAT(io_error([&] { write_npy(dir / "bad.npy", bad); }), Contains("needs 12 bytes"));
  CHECK(dir.entries().empty());
  CHECK_THROWS_AS(serialize_npy(bad), vts::IoError);
}
