#include "train_impl.hpp"

namespace vts::cli {
template int run_train<nn::ViTSmall32, Cpu>(const train_detail::TrainArgs&);
}  // namespace vts::cli
