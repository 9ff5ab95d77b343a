// Catch2 runner for the CUDA parity tests. Without a usable device every test binary exits with
// 77, which ctest reports as "Skipped" (SKIP_RETURN_CODE 77) — not passed, not failed. Listing
// (--list-*, --help) needs no device, so test discovery works on any machine.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "vts/backend/cuda/runtime.hpp"

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--list", 0) == 0 || a == "-l" || a == "-t" || a == "-h" || a == "-?" || a == "--help")
      return Catch::Session().run(argc, argv);
  }
  if (!vts::cuda::available()) {
    std::printf("SKIPPED: %s\n", vts::cuda::unavailable_reason().c_str());
    return 77;
  }
  const auto& d = vts::cuda::device_info();
  std::printf("device: %s (sm_%d%d, %d SMs)\n", d.name.c_str(), d.major, d.minor, d.sm_count);
  const int failures = Catch::Session().run(argc, argv);
  return failures == 77 ? 78 : failures;  // 77 means "skipped" to ctest
}
