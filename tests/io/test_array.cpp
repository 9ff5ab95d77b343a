#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "io_test_util.hpp"
#include "vts/io/array.hpp"

using namespace vts::io;

TEST_CASE("io: dtype names and sizes", "[io][array]") {
  CHECK(std::string(dtype_name(DType::f16)) == "float16");
  CHECK(std::string(dtype_name(DType::bf16)) == "bfloat16");
  CHECK(std::string(dtype_name(DType::b1)) == "bool");
  CHECK(dtype_size(DType::f16) == 2);
  CHECK(dtype_size(DType::bf16) == 2);
  CHECK(dtype_size(DType::f32) == 4);
  CHECK(dtype_size(DType::f64) == 8);
  CHECK(dtype_size(DType::u64) == 8);
  CHECK(dtype_size(DType::b1) == 1);
  CHECK(dtype_of<long>() == DType::i64);
  CHECK(dtype_of<long long>() == DType::i64);
  CHECK(dtype_of<unsigned short>() == DType::u16);
  CHECK(dtype_of<vts::bf16>() == DType::bf16);
}

TEST_CASE("io: f16 conversion matches IEEE binary16", "[io][array]") {
  CHECK(f16_to_float(0x3c00) == 1.0f);
  CHECK(f16_to_float(0xc000) == -2.0f);
  CHECK(f16_to_float(0x7bff) == 65504.0f);
  CHECK(f16_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(f16_to_float(0x0400) == std::ldexp(1.0f, -14));  // smallest normal
  CHECK(std::isinf(f16_to_float(0x7c00)));
  CHECK(std::isnan(f16_to_float(0x7e00)));
  CHECK(std::signbit(f16_to_float(0x8000)));

  CHECK(float_to_f16(1.0f) == 0x3c00);
  CHECK(float_to_f16(65504.0f) == 0x7bff);
  CHECK(float_to_f16(65519.0f) == 0x7bff);  // below the halfway point to 65536
  CHECK(float_to_f16(65520.0f) == 0x7c00);  // ties to even -> infinity
  CHECK(float_to_f16(std::ldexp(1.0f, -25)) == 0x0000);   // halfway to the smallest subnormal: even
  CHECK(float_to_f16(std::ldexp(1.5f, -25)) == 0x0001);
  CHECK(float_to_f16(std::ldexp(3.0f, -25)) == 0x0002);   // 1.5 ulp ties to even (2)
  CHECK(float_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie, even mantissa stays
  CHECK(float_to_f16(1.0f + std::ldexp(3.0f, -11)) == 0x3c02);  // tie, odd mantissa rounds up
  CHECK((float_to_f16(std::nanf("")) & 0x7c00) == 0x7c00);
  CHECK((float_to_f16(std::nanf("")) & 0x03ff) != 0);
  // Every finite half survives half -> float -> half.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaN payloads are not canonical
    const uint16_t back = float_to_f16(f16_to_float(static_cast<uint16_t>(h)));
    if (back != h) {
      FAIL("half 0x" << std::hex << h << " came back as 0x" << back);
    }
  }
}

TEST_CASE("io: make_array and as<T> convert between dtypes", "[io][array]") {
  const Array a = make_array<float>({1.5f, -2.0f, 3.25f, 0.0f}, {2, 2});
  CHECK(a.dtype == DType::f32);
  CHECK(a.numel() == 4);
  CHECK(a.bytes.size() == 16);
  CHECK(a.as<double>() == std::vector<double>{1.5, -2.0, 3.25, 0.0});
  CHECK(a.as<int32_t>() == std::vector<int32_t>{1, -2, 3, 0});  // truncation toward zero
  CHECK(a.as<bool>() == std::vector<bool>{true, true, true, false});

  const Array b = make_array<bool>({true, false, true}, {3});
  CHECK(b.dtype == DType::b1);
  CHECK(b.bytes == std::vector<uint8_t>{1, 0, 1});
  CHECK(b.as<float>() == std::vector<float>{1.f, 0.f, 1.f});

  Array h{DType::f16, {3}, {}};
  for (float v : {0.5f, -1.0f, 2048.0f}) {
    const uint16_t bits = float_to_f16(v);
    h.bytes.push_back(static_cast<uint8_t>(bits));
    h.bytes.push_back(static_cast<uint8_t>(bits >> 8));
  }
  CHECK(h.as<float>() == std::vector<float>{0.5f, -1.0f, 2048.0f});
  CHECK(h.as<int64_t>() == std::vector<int64_t>{0, -1, 2048});

  const Array bf = make_array<vts::bf16>({vts::bf16(1.0f), vts::bf16(-0.5f)}, {2});
  CHECK(bf.as<float>() == std::vector<float>{1.0f, -0.5f});
  const auto back = make_array<float>({3.0f}, {}).as<vts::bf16>();
  CHECK(static_cast<float>(back[0]) == 3.0f);

  const Array big = make_array<uint64_t>({std::numeric_limits<uint64_t>::max()}, {1});
  CHECK(big.as<uint64_t>()[0] == std::numeric_limits<uint64_t>::max());
  CHECK(make_array<int64_t>({-(int64_t(1) << 40)}, {}).as<double>()[0] == -std::ldexp(1.0, 40));
}

TEST_CASE("io: as<T> refuses values the target cannot hold", "[io][array]") {
  CHECK_THROWS_AS(make_array<int64_t>({-1}, {1}).as<uint8_t>(), vts::Error);
  CHECK_THROWS_AS(make_array<int64_t>({300}, {1}).as<int8_t>(), vts::Error);
  CHECK_THROWS_AS(make_array<float>({std::nanf("")}, {1}).as<int32_t>(), vts::Error);
  CHECK_THROWS_AS(make_array<double>({3e9}, {1}).as<int32_t>(), vts::Error);
  CHECK_THROWS_AS(make_array<double>({-1.0}, {1}).as<uint32_t>(), vts::Error);
  CHECK(make_array<double>({-0.5}, {1}).as<uint32_t>()[0] == 0u);
  CHECK(make_array<double>({2147483647.0}, {1}).as<int32_t>()[0] == 2147483647);
  CHECK(make_array<double>({-2147483648.0}, {1}).as<int32_t>()[0] == -2147483648);
}

TEST_CASE("io: make_array and numel check shapes", "[io][array]") {
  CHECK_THROWS_AS(make_array<float>({1.f, 2.f, 3.f}, {2, 2}), vts::ShapeError);
  CHECK(make_array<float>({7.f}, {}).numel() == 1);
  CHECK(make_array<float>({}, {0, 5}).numel() == 0);
  Array bad{DType::f32, {-1, 3}, {}};
  CHECK_THROWS_AS(bad.numel(), vts::ShapeError);
  Array huge{DType::f32, {int64_t(1) << 62, 8}, {}};
  CHECK_THROWS_AS(huge.numel(), vts::ShapeError);
  Array short_bytes{DType::f32, {3}, std::vector<uint8_t>(8)};
  CHECK_THROWS_AS(short_bytes.as<float>(), vts::Error);
}
