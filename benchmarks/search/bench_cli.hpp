// Flag checks and the error handling of main shared by the search benchmarks. CLI11's PositiveNumber answers "--n 0" or "--n abc"
// with "Value 0 not in range 0.000000 to 1797693134862315708145...", which names neither what was
// expected nor the whole-number rule; these say both.
#pragma once

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <optional>
#include <string>

#include "../bench_args.hpp"

namespace vts_bench {

// A whole decimal number >= min; `multiple` > 1 also asks for a multiple of it (code lengths; then
// min is the multiple).
inline CLI::Validator whole_number(long long min, long long multiple = 1) {
  const std::string what = multiple > 1 ? "a positive multiple of " + std::to_string(multiple)
                           : min == 0   ? "0 or a positive whole number"
                                        : "a whole number >= " + std::to_string(min);
  return CLI::Validator(
      [min, multiple, what](std::string& s) -> std::string {
        const std::optional<long long> v = parse_whole_number(s);
        if (!v || *v < min || *v % multiple != 0) return "expected " + what + ", found '" + s + "'";
        return {};
      },
      min == 0 ? "NONNEGATIVE" : multiple > 1 ? "POSITIVE, MULTIPLE OF " + std::to_string(multiple) : "POSITIVE");
}

// main's body: run(argc, argv), with a library error (a vts::Error from a bad size the flags let
// through) turned into "<program>: <message>" and exit status 1, not std::terminate's abort.
inline int run_reporting_errors(const char* program, int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace vts_bench
