// Built only with vts::cuda (examples/vts/CMakeLists.txt).
#include "model_impl.hpp"
#include "train_impl.hpp"

namespace vts::cli {
template int run_train<nn::ViTB32, Cuda>(const train_detail::TrainArgs&);
// `vts encode --device cuda` (model.cpp), here where the same network's CUDA code is compiled.
template std::unique_ptr<HashModel> load_model_of<nn::ViTB32, Cuda>(
    io::CheckpointReader&, const std::string&, int64_t, const std::string&);
}  // namespace vts::cli
