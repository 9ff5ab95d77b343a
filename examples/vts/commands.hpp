#pragma once
// The subcommands of the `vts` program; each registers its flags on the parent app and returns
// the function that runs it once the command line has been parsed.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "vts/core/error.hpp"
#include "vts/data/list_dataset.hpp"
#include "vts/io/atomic_file.hpp"

namespace vts::cli {

using Run = std::function<int()>;

Run add_train_command(CLI::App& app);
Run add_encode_command(CLI::App& app);    // encode.cpp
Run add_search_command(CLI::App& app);    // search.cpp
Run add_export_command(CLI::App& app);    // search.cpp
Run add_evaluate_command(CLI::App& app);  // evaluate.cpp
Run add_info_command(CLI::App& app);      // info.cpp

// Flag checks whose messages say what the flag takes and what it was given. CLI11's own
// (PositiveNumber, Range) print their limits as doubles in full, say "not in range" of a word, and
// PositiveNumber leaves the upper end open, so that a count near 2^63 overflowed the arithmetic it
// sized.
inline CLI::Validator whole_number(int64_t lo, int64_t hi, int64_t multiple_of = 1) {
  std::string desc = "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (multiple_of > 1) desc += ", a multiple of " + std::to_string(multiple_of);
  return CLI::Validator(
      [lo, hi, multiple_of](std::string& text) -> std::string {
        int64_t v = 0;
        const char* end = text.data() + text.size();
        const auto [stop, error] = std::from_chars(text.data(), end, v);
        std::string want = "a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
        if (multiple_of > 1) want += " that is a multiple of " + std::to_string(multiple_of);
        if (text.empty() || error != std::errc{} || stop != end)
          return "expected " + want + ", found '" + text + "'";
        if (v < lo || v > hi || v % multiple_of != 0) return "expected " + want + ", found " + text;
        return {};
      },
      desc);
}
// A seed: any 64-bit unsigned number (a leading minus would otherwise wrap around to 2^64 - 1).
inline CLI::Validator seed_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        uint64_t v = 0;
        const char* end = text.data() + text.size();
        const auto [stop, error] = std::from_chars(text.data(), end, v);
        if (text.empty() || error != std::errc{} || stop != end)
          return "expected a whole number from 0 to 18446744073709551615, found '" + text + "'";
        return {};
      },
      "UINT");
}
// A finite real number from `lo` (above it unless `lo_allowed`) to `hi`.
inline CLI::Validator real_number(double lo, double hi, bool lo_allowed) {
  auto text_of = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return std::string(buf);
  };
  const std::string want =
      std::isinf(hi) ? std::string("a number ") + (lo_allowed ? ">= " : "> ") + text_of(lo)
                     : "a number from " + text_of(lo) + (lo_allowed ? "" : " (excluded)") + " to " + text_of(hi);
  return CLI::Validator(
      [lo, hi, lo_allowed, want](std::string& text) -> std::string {
        char* stop = nullptr;
        const double v = std::strtod(text.c_str(), &stop);
        if (text.empty() || stop != text.c_str() + text.size() || !std::isfinite(v))
          return "expected " + want + ", found '" + text + "'";
        if (v < lo || (v == lo && !lo_allowed) || v > hi) return "expected " + want + ", found " + text;
        return {};
      },
      "NUMBER");
}
inline CLI::Validator positive_number() { return real_number(0.0, HUGE_VAL, false); }
inline CLI::Validator non_negative_number() { return real_number(0.0, HUGE_VAL, true); }

// A length of time as a job script writes it: "3h50m", "90m", "45s", "1h30m15s", or seconds alone
// ("5400"); whole numbers with h, m and s in that order, each at most once. Seconds, or -1 when the
// text is none of those.
inline double parse_duration(const std::string& text) {
  if (text.empty()) return -1;
  double seconds = 0;
  const char* p = text.data();
  const char* const end = p + text.size();
  const std::string units = "hms";
  size_t next_unit = 0;  // units before this one have been used (or skipped)
  while (p != end) {
    int64_t v = 0;
    const auto [stop, error] = std::from_chars(p, end, v);
    if (error != std::errc{} || v < 0 || v > (int64_t{1} << 40)) return -1;
    p = stop;
    if (p == end) {  // a bare number: seconds, and only as the whole text
      if (next_unit != 0) return -1;
      return static_cast<double>(v);
    }
    const size_t unit = units.find(*p, next_unit);
    if (unit == std::string::npos) return -1;
    seconds += static_cast<double>(v) * (unit == 0 ? 3600.0 : unit == 1 ? 60.0 : 1.0);
    next_unit = unit + 1;
    ++p;
  }
  return seconds;
}
// The other way, for messages and the ETA: "1h05m", "4m30s".
inline std::string format_duration(double s) {
  char buf[32];
  const int total = static_cast<int>(std::lround(std::max(0.0, s)));
  if (total >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", total / 3600, (total / 60) % 60);
  else std::snprintf(buf, sizeof buf, "%dm%02ds", total / 60, total % 60);
  return buf;
}
inline CLI::Validator positive_duration() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const double s = parse_duration(text);
        if (s < 0) return "expected a time such as 3h50m, 90m, 45s or 5400 (seconds), found '" + text + "'";
        if (s == 0) return "expected a time above 0, found '" + text + "'";
        return {};
      },
      "TIME");
}

// Upper ends of the counts: far above any real use, low enough that the arithmetic they size
// (batches × 4, per-class counts × classes, k + 1) stays inside 64 bits.
// An on/off setting as the two flags --name and --no-name. CLI11's "--name,!--no-name" lists them
// as "--name,--no-name{false}" (what the negated spelling sets), which reads as the default; here
// each has its own line and the default is said in words. `given` (optional) records whether either
// appeared, for settings whose default depends on other flags.
inline void add_switch(CLI::App& app, const std::string& name, bool& value, const std::string& what,
                       const std::string& default_text, bool* given = nullptr) {
  app.add_flag_callback("--" + name, [&value, given] { value = true; if (given) *given = true; },
                        what + " (default: " + default_text + ")");
  app.add_flag_callback("--no-" + name, [&value, given] { value = false; if (given) *given = true; },
                        "turn off --" + name);
}

inline constexpr int64_t kMaxThreads = 1024;        // GOMP's thread stacks overflowed at 100,000
inline constexpr int64_t kMaxWorkers = 256;         // each a thread with a batch of its own
inline constexpr int64_t kMaxBatch = int64_t{1} << 20;
inline constexpr int64_t kMaxEpochs = 1000000;
inline constexpr int64_t kMaxCount = int64_t{1} << 40;  // images per class, k, P@k's k

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// `p` absolute and lexically normal, the way indexes and checkpoints record paths ("" stays "").
inline std::string absolute_path(const std::string& p) {
  return p.empty() ? p : std::filesystem::absolute(p).lexically_normal().string();
}

// An output that is also one of the command's inputs would be replaced by what is made from it
// (an index written over the checkpoint that encodes it): refused before anything is read.
// `inputs`: (flag, path) pairs; a model folder counts with the best.safetensors it is read through.
inline void check_output_is_not_an_input(const std::string& out_flag, const std::string& out,
                                         const std::vector<std::pair<std::string, std::string>>& inputs) {
  if (out.empty() || out == "-") return;
  for (const auto& [flag, path] : inputs) {
    if (path.empty()) continue;
    std::error_code ec;
    const std::string model_file = (std::filesystem::path(path) / "best.safetensors").string();
    if (io::same_file(out, path) || (std::filesystem::is_directory(path, ec) && io::same_file(out, model_file)))
      throw Error(out_flag + " " + out + ": this is what " + flag + " reads (" + path +
                  "); writing there would replace it. Expected an output path that is none of the inputs");
  }
}

// A list of images (one path, or file#record, per line) must be a text file: an image or an archive
// given in its place would otherwise be read line by line and its bytes printed back as "file
// names". `one_image_hint` says what to do with a single image instead.
inline void check_image_list(const std::string& flag, const std::string& path, const std::string& one_image_hint) {
  const std::string expected =
      flag + " '" + path + "': expected a folder of images or a text file listing them, one per line; found ";
  if (data::detail::is_image_file_name(std::filesystem::path(path).filename().string()))
    throw Error(expected + "an image file (" + one_image_hint + ")");
  std::ifstream in(path, std::ios::binary);
  char head[4096];
  in.read(head, sizeof head);
  if (std::memchr(head, '\0', static_cast<size_t>(in.gcount())) != nullptr) throw Error(expected + "a binary file");
}

// --gemm chooses how CUDA GEMMs run; given without --device cuda it would silently do nothing.
inline void check_gemm_needs_cuda(const std::string& device, const std::string& gemm, bool gemm_given) {
  if (device != "cuda" && gemm_given)
    throw Error("--gemm " + gemm + " applies to --device cuda; the CPU computes its GEMMs in fp32");
}

// Writes a text file whole or not at all (temporary file, then rename).
inline void write_text(const std::string& path, const std::string& text) {
  io::AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

// Data loader threads when --workers is not given. Workers that have built their batches ahead
// wait without using a core, so they cost nothing while the model is the bottleneck, and they
// share the decoding when images are (a photo takes ~100 ms to decode; the first epoch of 120
// 2000x1500 JPEGs, tiny config, 2 cores: 1.57 s with one worker, 0.95 s with two, and the default
// Fashion-MNIST epochs are the same either way). On the CPU up to 4 (the compute threads want the
// cores too); on a GPU, where the cores are otherwise idle, up to 8.
inline int default_workers(const std::string& device) {
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return device == "cuda" ? std::clamp(cores - 1, 1, 8) : std::clamp(cores, 1, 4);
}

}  // namespace vts::cli
