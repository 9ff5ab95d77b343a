#pragma once
// Shared by the weight and checkpoint tests: a scratch directory, fixture access, the golden
// model's config, and comparisons that report the worst element.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "../common/file_bytes.hpp"
#include "../common/temp_dir.hpp"
#include "../common/tiny8.hpp"
#include "vts/io/npz.hpp"
#include "vts/nn/vit.hpp"

namespace vts_weights_test {

// The model of tests/golden/make_vit_golden.py: a config is nothing but these constants.
struct ViTGolden32 {
  static constexpr const char* name = "golden32";
  static constexpr int64_t image = 32, channels = 3, patch = 8, dim = 48, depth = 2, heads = 3, mlp = 96;
};

using vts_test::Tiny8;
using vts_test_common::TempDir;

inline std::string golden(const std::string& name) { return std::string(VTS_TEST_DATA_DIR) + "/vit/" + name; }

using vts_test_common::read_bytes;
using vts_test_common::write_bytes;

// Every parameter of a layer, by name, as double values (snapshots for "nothing changed" checks).
template <class Layer>
std::map<std::string, std::vector<double>> snapshot(Layer& layer) {
  std::map<std::string, std::vector<double>> out;
  layer.visit("", [&](const std::string& name, auto& t) {
    const auto v = t.to_vector();
    out[name] = std::vector<double>(v.begin(), v.end());
  });
  return out;
}

// max |a − e| / max |e|: the error measured against the scale of the expected tensor, so entries
// that are near zero by cancellation do not dominate.
inline double scaled_error(const std::vector<double>& actual, const std::vector<double>& expected) {
  REQUIRE(actual.size() == expected.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    worst = std::max(worst, std::abs(actual[i] - expected[i]));
    scale = std::max(scale, std::abs(expected[i]));
  }
  return scale > 0 ? worst / scale : worst;
}

template <class T>
std::vector<double> as_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

}  // namespace vts_weights_test
