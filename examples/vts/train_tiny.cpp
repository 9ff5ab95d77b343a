#include "train_impl.hpp"

namespace vts::cli {
template int run_train<nn::ViTTiny28, Cpu>(const train_detail::TrainArgs&);
}  // namespace vts::cli
