#pragma once
// Shared helpers for the vts::io tests: fixture paths, a scratch directory, raw file access, and a
// way to capture an IoError's message (the tests check that errors name the file).
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "../common/file_bytes.hpp"
#include "../common/temp_dir.hpp"
#include "vts/core/error.hpp"
#include "vts/core/rng.hpp"
#include "vts/io/array.hpp"

namespace vts_io_test {

inline std::string golden(const std::string& name) { return std::string(VTS_TEST_DATA_DIR) + "/io/" + name; }

using vts_test_common::read_bytes;
using vts_test_common::write_bytes;

using vts_test_common::TempDir;

// Runs f, which must throw vts::IoError; returns its message (an empty string after a failed check).
template <class F>
std::string io_error(F&& f) {
  try {
    f();
  } catch (const vts::IoError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL_CHECK("expected vts::IoError, got another exception: " << e.what());
    return "";
  }
  FAIL_CHECK("expected vts::IoError, nothing was thrown");
  return "";
}

// Deterministic valid contents for any dtype: random bits, with bools kept to 0/1.
inline vts::io::Array random_array(vts::io::DType dt, std::vector<int64_t> shape, uint64_t seed) {
  vts::io::Array a;
  a.dtype = dt;
  a.shape = std::move(shape);
  a.bytes.resize(static_cast<size_t>(a.numel()) * vts::io::dtype_size(dt));
  vts::Generator g(seed);
  for (auto& b : a.bytes) b = static_cast<uint8_t>(g.next_u32());
  if (dt == vts::io::DType::b1)
    for (auto& b : a.bytes) b &= 1;
  return a;
}

inline const std::vector<vts::io::DType>& all_dtypes() {
  using D = vts::io::DType;
  static const std::vector<D> v{D::f16, D::bf16, D::f32, D::f64, D::i8,  D::u8, D::i16,
                                D::u16, D::i32,  D::u32, D::i64, D::u64, D::b1};
  return v;
}

}  // namespace vts_io_test
