#pragma once
// The subcommands of the `vts` program; each registers its flags on the parent app and returns
// the function that runs it once the command line has been parsed.
#include <functional>

#include <CLI/CLI.hpp>

namespace vts::cli {

using Run = std::function<int()>;

Run add_train_command(CLI::App& app);

}  // namespace vts::cli
