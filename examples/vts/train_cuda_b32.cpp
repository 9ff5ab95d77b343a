// Built only with vts::cuda (examples/vts/CMakeLists.txt).
#include "train_impl.hpp"

namespace vts::cli {
template int run_train<nn::ViTB32, Cuda>(const train_detail::TrainArgs&);
}  // namespace vts::cli
