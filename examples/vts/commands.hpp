#pragma once
// The subcommands of the `vts` program; each registers its flags on the parent app and returns
// the function that runs it once the command line has been parsed.
#include <algorithm>
#include <functional>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

namespace vts::cli {

using Run = std::function<int()>;

Run add_train_command(CLI::App& app);
Run add_encode_command(CLI::App& app);   // retrieval.cpp
Run add_search_command(CLI::App& app);   // retrieval.cpp
Run add_export_command(CLI::App& app);   // retrieval.cpp

// Data loader threads when --workers is not given. On the CPU one: the compute threads need the
// cores, and decoded images are cached (--image-cache-mb). On a GPU the cores are free, and a
// photo takes ~100 ms to decode against ~1 ms for a whole small-model step: up to 8 of them.
inline int default_workers(const std::string& device) {
  if (device != "cuda") return 1;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(cores - 1, 1, 8);
}

}  // namespace vts::cli
