#pragma once
// The library with nothing but Eigen behind it: tensors, autograd, ops, layers and ViT<Config>,
// optimizers and schedules — #include <vts/vts.hpp>. The parts with more dependencies or a
// narrower use have their own entry headers:
//   vts/hash/trainer.hpp (heads, losses, centers, Trainer; needs vts::data for the loader),
//   vts/data/protocol.hpp (datasets; vts::data), vts/io/*.hpp (npy/npz/safetensors, checkpoints,
//   pretrained ViT weights; vts::io), vts/index/search.hpp, index_file.hpp, export.hpp (binary codes
//   and Hamming search) and vts/eval/retrieval.hpp (mAP, precision-recall).
#include "vts/autograd/gradcheck.hpp"
#include "vts/core/rng.hpp"
#include "vts/core/tensor.hpp"
#include "vts/nn/init.hpp"
#include "vts/nn/layers.hpp"
#include "vts/nn/vit.hpp"
#include "vts/ops/attention.hpp"
#include "vts/ops/cast.hpp"
#include "vts/ops/dropout.hpp"
#include "vts/ops/elementwise.hpp"
#include "vts/ops/indexing.hpp"
#include "vts/ops/layer_norm.hpp"
#include "vts/ops/matmul.hpp"
#include "vts/ops/reduce.hpp"
#include "vts/ops/softmax.hpp"
#include "vts/ops/view.hpp"
#include "vts/optim/optim.hpp"
#include "vts/optim/schedule.hpp"
