#pragma once
// CapturedNetwork: a network's forward and backward pass on CUDA, each replayed from a captured
// CUDA graph (backend/cuda/graph.hpp), with the loss and the optimizer left as ordinary code.
//
// Why split there: the network is the same device work every step (a few hundred kernels for a
// ViT), while the losses turn labels into targets on the host and the optimizers compute their
// step sizes on the host, both of which a graph would freeze. So one training step becomes
//
//   optimizer.zero_grad();
//   Out u = captured.forward(x, ctx);   // copy x in, replay the forward graph; u: a leaf for the loss
//   loss(u, ...).backward();             // eager: fills u.grad()
//   captured.backward(u);                // copy u.grad() in, replay the backward graph
//   optimizer.step();                    // the parameters' .grad are the graph's gradient buffers
//
// with the same results, bit for bit, as the same step run op by op (tests/cuda: [graph]):
// dropout draws from ctx.rng through the graph's counter offset, and the generator moves on as the
// eager step would move it. The first forward() with a shape captures both graphs (nothing runs
// during a capture, then the step replays them); run one step of that shape eagerly before, so
// that the libraries' lazy set-up (cuBLAS handles, kernel attributes) is not recorded. One input
// shape per object: accepts() tells whether a batch can take the captured path, and use_for()
// applies the policy the trainer and the benchmark share (first step eager, then the graphs).
//
// Memory: the forward's activations and the backward's temporaries live in one pool of the
// graphs' own (memory.hpp), kept while this object lives; the output u and the parameter
// gradients hold the addresses the next replay overwrites. The capture first gives the ordinary
// cache back to the driver, so the step's activations are not held twice.
#include <optional>
#include <vector>

#include "vts/backend/cuda/graph.hpp"
#include "vts/backend/cuda/memory.hpp"
#include "vts/core/tensor.hpp"
#include "vts/nn/module.hpp"
#include "vts/ops/cast.hpp"

namespace vts::nn {

template <class Network, class Out = typename Network::tensor_type>
class CapturedNetwork {
 public:
  using tensor_type = typename Network::tensor_type;
  static_assert(std::is_same_v<typename tensor_type::device_type, Cuda>, "CapturedNetwork: CUDA graphs need Cuda");
  static_assert(std::is_same_v<typename Out::device_type, Cuda>, "CapturedNetwork: the output must stay on Cuda");

  explicit CapturedNetwork(Network& net) : net_(&net) {}

  bool captured() const { return !forward_.empty(); }
  // Whether x can take the captured graphs (nothing captured yet, or the shape they were captured for).
  bool accepts(const tensor_type& x) const { return !captured() || x.shape() == input_.shape(); }
  // Whether this step goes through the graphs (false: run it op by op). The first input's shape is
  // the one captured; its first step runs op by op, so the libraries' lazy set-up happens outside
  // the capture, and the graphs take it from its second step on. Other shapes — a last partial
  // batch — always run op by op.
  bool use_for(const tensor_type& x) {
    if (!first_shape_) {
      first_shape_ = x.shape();
      return false;
    }
    return x.shape() == *first_shape_;
  }
  size_t nodes() const { return forward_.nodes() + backward_.nodes(); }

  // The network's output for x, as a leaf that requires a gradient (the loss's input).
  Out forward(const tensor_type& x, Context& ctx) {
    VTS_CHECK(accepts(x), "CapturedNetwork::forward: input ", x.shape().str(), " but the graphs were captured for ",
              input_.shape().str(), " (one shape per CapturedNetwork)");
    VTS_CHECK(ctx.training, "CapturedNetwork::forward: captures the training step; evaluate with the network itself");
    if (!captured()) capture(x, ctx);
    input_.copy_(x);
    forward_.replay();
    Out leaf = output_.detach();
    leaf.requires_grad_(true);
    return leaf;
  }

  // After the loss's backward: the network's backward from leaf.grad(). Leaves every parameter's
  // .grad set to the gradient the replay wrote.
  void backward(const Out& leaf) {
    VTS_CHECK(captured(), "CapturedNetwork::backward: forward() first");
    const Out g = leaf.grad();
    VTS_CHECK(g.defined(), "CapturedNetwork::backward: the output has no gradient; call the loss's backward() first");
    VTS_CHECK_SHAPE(g.shape() == seed_.shape(), "CapturedNetwork::backward: gradient ", g.shape().str(),
                    ", output ", seed_.shape().str());
    seed_.copy_(g);
    backward_.replay();
    for (size_t i = 0; i < params_.size(); ++i) params_[i].set_grad(grads_[i]);
  }

 private:
  void capture(const tensor_type& x, Context& ctx) {
    input_ = tensor_type::empty(x.shape());
    params_ = parameters(*net_);  // kept: backward() restores their .grad every step
    // The backward graph must create the gradients (the engine then writes, not adds, them).
    for (auto& p : params_) p.zero_grad();
    // The op-by-op step before left its activations in the ordinary cache, free now, and a replay
    // allocates nothing: kept, they would sit beside the pool's copy of them for as long as the
    // graphs live (B/16 fp32, batch 32: 14.0 GiB held instead of 8.5), and a capture that fits
    // without them could fail. The next steps' loss and optimizer take the few blocks they need anew.
    cuda::empty_cache();
    forward_.capture([&] { output_ = cast<typename Out::value_type>(net_->forward(input_, ctx)); }, ctx.rng);
    try {
      seed_ = Out::empty(output_.shape());
      backward_.share_pool(forward_);
      backward_.capture([&] { output_.backward(seed_); });
    } catch (...) {
      output_ = Out();
      forward_ = cuda::Graph();  // both graphs or neither
      throw;
    }
    output_ = output_.detach();
    grads_.clear();
    for (auto& p : params_) grads_.push_back(p.grad());
  }

  Network* net_;
  cuda::Graph forward_, backward_;
  tensor_type input_;
  Out output_, seed_;
  std::vector<tensor_type> params_, grads_;  // the network's parameters, and the gradients the backward writes
  std::optional<Shape> first_shape_;          // use_for(): the shape to capture
};

}  // namespace vts::nn
