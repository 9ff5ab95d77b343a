// vts_bench_crc32 — CRC-32 throughput of vts::crc32 (folded with carry-less products where the CPU
// has them, core/crc32.hpp) against zlib's crc32_z on the same buffer, one thread. A model's
// identity is the CRC of its weights (963 MB for ViT-B/16 with the all-token head), taken each
// time `vts encode`, `vts search` or `vts evaluate` loads it. Prints one JSON line for each, and
// whether both gave the same value.
//
//   vts_bench_crc32 --mib 1024 --repeat 3
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "bench_cli.hpp"
#include "vts/core/crc32.hpp"
#include "vts/core/rng.hpp"

namespace {

template <class F>
double best_seconds(int repeat, F&& f) {
  double best = 1e300;
  for (int i = 0; i <= repeat; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) best = std::min(best, s);  // run 0 is the warm-up
  }
  return best;
}

int run(int argc, char** argv) {
  CLI::App app{"vts_bench_crc32: CRC-32 of a buffer, vts::crc32 against zlib"};
  int64_t mib = 1024, repeat = 3;
  app.add_option("--mib", mib, "buffer size in MiB (larger than the caches measures memory-bound speed)")
      ->check(vts_bench::whole_number(1));
  app.add_option("--repeat", repeat, "timed runs after a warm-up; the best is reported")
      ->check(vts_bench::whole_number(1));
  CLI11_PARSE(app, argc, argv);

  const size_t bytes = static_cast<size_t>(mib) << 20;
  std::vector<uint32_t> words(bytes / 4);
  vts::Generator g(3);
  for (auto& w : words) w = g.next_u32();
  const auto* data = reinterpret_cast<const unsigned char*>(words.data());

  uint32_t zlib_value = 0, vts_value = 0;
  const double zlib_s = best_seconds(static_cast<int>(repeat), [&] {
    zlib_value = static_cast<uint32_t>(crc32_z(0, data, static_cast<z_size_t>(bytes)));
  });
  const double vts_s = best_seconds(static_cast<int>(repeat), [&] { vts_value = vts::crc32(0, data, bytes); });
  bool folds = false;
#if defined(VTS_CRC32_PCLMUL)
  folds = vts::detail::crc32_can_fold();
#endif
  for (const auto& [impl, s] : {std::pair{"zlib", zlib_s}, std::pair{"vts", vts_s}}) {
    nlohmann::json j;
    j["bench"] = "crc32";
    j["impl"] = impl;
    j["bytes"] = bytes;
    j["seconds"] = s;
    j["gb_per_s"] = static_cast<double>(bytes) / s / 1e9;
    if (std::string(impl) == "vts") j["folded"] = folds;
    std::cout << j.dump() << std::endl;
  }
  nlohmann::json check;
  check["bench"] = "crc32";
  check["same_value"] = zlib_value == vts_value;
  std::cout << check.dump() << std::endl;
  return zlib_value == vts_value ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return vts_bench::run_reporting_errors("vts_bench_crc32", run, argc, argv); }
