#pragma once
// The subcommands of the `vts` program; each registers its flags on the parent app and returns
// the function that runs it once the command line has been parsed.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "vts/core/error.hpp"
#include "vts/io/atomic_file.hpp"

namespace vts::cli {

using Run = std::function<int()>;

Run add_train_command(CLI::App& app);
Run add_encode_command(CLI::App& app);    // encode.cpp
Run add_search_command(CLI::App& app);    // search.cpp
Run add_export_command(CLI::App& app);    // search.cpp
Run add_evaluate_command(CLI::App& app);  // evaluate.cpp
Run add_info_command(CLI::App& app);      // info.cpp

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// `p` absolute and lexically normal, the way indexes and checkpoints record paths ("" stays "").
inline std::string absolute_path(const std::string& p) {
  return p.empty() ? p : std::filesystem::absolute(p).lexically_normal().string();
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
