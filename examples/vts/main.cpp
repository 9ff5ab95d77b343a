// `vts`: train, evaluate and search hashing models. With no subcommand it runs `vts train` on the
// built-in default (ViTTiny28, CSQ, 64 bits, Fashion-MNIST).
#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include "commands.hpp"
#include "vts/backend/cpu/gemm.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/runtime.hpp"
#endif

namespace {

// `vts --version`: what this build is, which is what a timing or a bug report needs to name.
std::string version_text() {
  std::string s = std::string("vts ") + VTS_PROGRAM_VERSION + "\nCPU GEMMs: " + vts::cpu::gemm_library() +
                  "\nmodel configs built: " + VTS_TRAIN_CONFIGS_BUILT + "\nCUDA backend: ";
#if defined(VTS_WITH_CUDA)
  s += "built in; device: ";
  if (vts::cuda::available()) {
    const auto& d = vts::cuda::device_info();
    s += d.name + " (sm_" + std::to_string(d.major) + std::to_string(d.minor) + ")";
  } else {
    s += vts::cuda::unavailable_reason();
  }
#else
  s += "not built (no nvcc at configure time, or -DVTS_CUDA=OFF)";
#endif
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"VTS: Vision Transformer Hashing — train, evaluate and search binary codes"};
  app.set_version_flag("--version", version_text,
                       "print the version, the CPU GEMM library and the CUDA device, and exit");
  app.require_subcommand(0, 1);
  std::map<CLI::App*, vts::cli::Run> runs;
  CLI::App* train = app.add_subcommand("train", "train a hashing model and evaluate it (the default command)");
  runs[train] = vts::cli::add_train_command(*train);
  CLI::App* encode = app.add_subcommand("encode", "encode a dataset split or a folder of images into an index file");
  runs[encode] = vts::cli::add_encode_command(*encode);
  CLI::App* search = app.add_subcommand(
      "search", "find the nearest neighbours of query images in an index: tables, JSON, PNG galleries");
  runs[search] = vts::cli::add_search_command(*search);
  CLI::App* evaluate = app.add_subcommand("evaluate", "mAP, P@k and precision-recall of a query index against a "
                                                     "database index (both labelled)");
  runs[evaluate] = vts::cli::add_evaluate_command(*evaluate);
  CLI::App* info = app.add_subcommand("info", "what an index file or a checkpoint holds: model, codes, classes");
  runs[info] = vts::cli::add_info_command(*info);
  CLI::App* exp = app.add_subcommand("export", "export an index's codes for FAISS or Milvus");
  runs[exp] = vts::cli::add_export_command(*exp);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message; its exit codes (105-114) would break the promise that every error
    // exits with 1, which scripts test for.
    return app.exit(e) == 0 ? 0 : 1;
  }
  try {
    for (auto& [sub, run] : runs)
      if (sub->parsed()) return run();
    return runs[train]();  // no subcommand: the built-in default run
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vts: error: %s\n", e.what());
#if defined(VTS_WITH_CUDA)
    // The error names the allocation; say what the user can change.
    const auto* cuda_error = dynamic_cast<const vts::cuda::CudaError*>(&e);
    if (cuda_error != nullptr && cuda_error->out_of_memory()) {
      std::string memory = "memory";
      try {
        memory = std::to_string(vts::cuda::device_info().total_memory >> 20) + " MiB";
      } catch (const std::exception&) {  // the size is only a detail of the message
      }
      std::fprintf(stderr,
                   "vts: the GPU's %s were not enough: a smaller --batch needs less (vts train: also --eval-batch, "
                   "and --precision bf16)\n",
                   memory.c_str());
    }
#endif
    return 1;
  }
}
