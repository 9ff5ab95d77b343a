// Flag checks shared by the search benchmarks. CLI11's PositiveNumber answers "--n 0" or "--n abc"
// with "Value 0 not in range 0.000000 to 1797693134862315708145...", which names neither what was
// expected nor the whole-number rule; these say both.
#pragma once

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdlib>
#include <string>

namespace vts_bench {

// A whole decimal number >= min; `multiple` > 1 also asks for a multiple of it (code lengths; then
// min is the multiple).
inline CLI::Validator whole_number(long long min, long long multiple = 1) {
  const std::string what = multiple > 1 ? "a positive multiple of " + std::to_string(multiple)
                           : min == 0   ? "0 or a positive whole number"
                                        : "a whole number >= " + std::to_string(min);
  return CLI::Validator(
      [min, multiple, what](std::string& s) -> std::string {
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || *end != '\0' || errno != 0 || v < min || v % multiple != 0)
          return "expected " + what + ", found '" + s + "'";
        return {};
      },
      min == 0 ? "NONNEGATIVE" : multiple > 1 ? "POSITIVE, MULTIPLE OF " + std::to_string(multiple) : "POSITIVE");
}

}  // namespace vts_bench
