// Whole-number flag values for the benchmark programs (ops, train, search, kernels): the whole text
// must be a decimal number, so "abc" or "12x" is an error where std::atoi read 0 ("--threads abc"
// ran on every core, "--reps abc" timed nothing). And the median they all report.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace vts_bench {

// The median of sorted timings, the figure every benchmark reports: for an even count the mean of
// the two middle ones (as Python's statistics.median), not the upper one.
inline double median_of_sorted(const std::vector<double>& sorted) {
  const size_t n = sorted.size();
  if (n == 0) return 0;
  return n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

inline std::optional<long long> parse_whole_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0' || errno != 0) return std::nullopt;
  return v;
}

// The value of `flag` as an int, or "<program>: <flag> expects a whole number, got '<text>'" and
// exit status 2 (nothing on stdout, so no script reads a result).
inline int whole_number_flag(const char* program, const std::string& flag, const std::string& text) {
  const std::optional<long long> v = parse_whole_number(text);
  if (!v || *v < INT32_MIN || *v > INT32_MAX) {
    std::fprintf(stderr, "%s: %s expects a whole number, got '%s'\n", program, flag.c_str(), text.c_str());
    std::exit(2);
  }
  return static_cast<int>(*v);
}

}  // namespace vts_bench
