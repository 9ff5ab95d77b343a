#pragma once
// Helpers shared by the optim tests.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "vts/core/tensor.hpp"

namespace vts_test {

template <class T>
vts::Tensor<T> tensor_from(const std::vector<double>& values, const vts::Shape& shape) {
  std::vector<T> v(values.begin(), values.end());
  return vts::Tensor<T>::from_vector(v, shape);
}

template <class T>
std::vector<double> as_double(const vts::Tensor<T>& t) {
  const auto v = t.to_vector();
  return {v.begin(), v.end()};
}

// |a − e| ≤ rel·max(|a|, |e|) + abs for every element; reports the worst element on failure.
inline void check_close(const std::vector<double>& actual, const std::vector<double>& expected, double rel,
                        double abs) {
  REQUIRE(actual.size() == expected.size());
  size_t worst = 0;
  double worst_excess = -1.0;
  bool ok = true;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double err = std::fabs(actual[i] - expected[i]);
    const double allowed = rel * std::max(std::fabs(actual[i]), std::fabs(expected[i])) + abs;
    const double excess = err - allowed;
    if (!(err <= allowed)) ok = false;  // NaN fails too
    if (excess > worst_excess || std::isnan(err)) {
      worst_excess = excess;
      worst = i;
    }
  }
  std::ostringstream msg;
  msg.precision(17);
  msg << "worst element " << worst << ": actual " << actual[worst] << " expected " << expected[worst]
      << " relative error " << std::fabs(actual[worst] - expected[worst]) / std::fabs(expected[worst]);
  INFO(msg.str());
  CHECK(ok);
}

}  // namespace vts_test
