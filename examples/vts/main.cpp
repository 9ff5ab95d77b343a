// `vts`: train, evaluate and search hashing models. With no subcommand it runs `vts train` on the
// built-in default (ViTTiny28, CSQ, 64 bits, Fashion-MNIST).
#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"VTS: Vision Transformer Hashing — train, evaluate and search binary codes"};
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
    return app.exit(e);
  }
  try {
    for (auto& [sub, run] : runs)
      if (sub->parsed()) return run();
    return runs[train]();  // no subcommand: the built-in default run
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vts: error: %s\n", e.what());
    return 1;
  }
}
