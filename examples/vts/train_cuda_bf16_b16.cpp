// Built only with vts::cuda (examples/vts/CMakeLists.txt): `vts train --device cuda --precision bf16`.
#include "train_impl.hpp"

namespace vts::cli {
template int run_train<nn::ViTB16, Cuda, bf16>(const train_detail::TrainArgs&);
}  // namespace vts::cli
