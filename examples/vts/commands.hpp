#pragma once
// The subcommands of the `vts` program; each registers its flags on the parent app and returns
// the function that runs it once the command line has been parsed.
#include <functional>

#include <CLI/CLI.hpp>

namespace vts::cli {

using Run = std::function<int()>;

Run add_train_command(CLI::App& app);
Run add_encode_command(CLI::App& app);   // retrieval.cpp
Run add_search_command(CLI::App& app);   // retrieval.cpp
Run add_export_command(CLI::App& app);   // retrieval.cpp

}  // namespace vts::cli
