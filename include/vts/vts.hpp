#pragma once
// Everything a CPU user needs: #include <vts/vts.hpp>.
#include "vts/autograd/gradcheck.hpp"
#include "vts/core/rng.hpp"
#include "vts/core/tensor.hpp"
#include "vts/ops/attention.hpp"
#include "vts/ops/dropout.hpp"
#include "vts/ops/elementwise.hpp"
#include "vts/ops/indexing.hpp"
#include "vts/ops/layer_norm.hpp"
#include "vts/ops/matmul.hpp"
#include "vts/ops/reduce.hpp"
#include "vts/ops/softmax.hpp"
#include "vts/ops/view.hpp"
