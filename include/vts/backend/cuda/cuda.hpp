#pragma once
// vts::cuda, everything: include this (and link vts::cuda) to use the CUDA backend. Every function
// takes vts::cuda::Device as its first argument, as vts::cpu's take vts::cpu::Device, so code
// written against the device tag of a Tensor<T, D> finds the right backend by argument-dependent
// lookup. See docs/cuda.md for what each kernel does and how it was designed.
#include "vts/backend/cuda/activation.hpp"
#include "vts/backend/cuda/attention.hpp"
#include "vts/backend/cuda/dropout.hpp"
#include "vts/backend/cuda/elementwise.hpp"
#include "vts/backend/cuda/gemm.hpp"
#include "vts/backend/cuda/layer_norm.hpp"
#include "vts/backend/cuda/memory.hpp"
#include "vts/backend/cuda/optim.hpp"
#include "vts/backend/cuda/profile.hpp"
#include "vts/backend/cuda/reduce.hpp"
#include "vts/backend/cuda/runtime.hpp"
#include "vts/backend/cuda/softmax.hpp"
