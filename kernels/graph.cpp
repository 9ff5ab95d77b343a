// CUDA graphs (contract in include/vts/backend/cuda/graph.hpp).
#include "vts/backend/cuda/graph.hpp"

#include <cuda_runtime.h>

#include <atomic>
#include <string>

#include "common/check.cuh"
#include "vts/backend/cuda/memory.hpp"
#include "vts/backend/cuda/profile.hpp"
#include "vts/backend/cuda/upload.hpp"

namespace vts::cuda {

struct detail::GraphState {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  std::shared_ptr<detail::GraphPool> pool;
  size_t nodes = 0;
  int64_t replays = 0;
  // Dropout: the generator the capture drew from, where it stood, and how far the capture moved it.
  Generator* gen = nullptr;
  uint64_t seed = 0, start = 0, drawn = 0;
  DeviceBuffer offset;  // one uint64_t: this replay's counter distance from the capture

  void destroy() noexcept {
    if (exec) {
      VTS_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(current_stream()));  // a replay may be queued
      VTS_CUDA_CHECK_NOTHROW(cudaGraphExecDestroy(exec));
    }
    if (graph) VTS_CUDA_CHECK_NOTHROW(cudaGraphDestroy(graph));
    exec = nullptr;
    graph = nullptr;
    nodes = 0;
    replays = 0;
  }
};

namespace {
// The capture in progress (vts::cuda has one stream, so at most one).
std::atomic<detail::GraphState*>& capture_in_progress() {
  static std::atomic<detail::GraphState*> s{nullptr};
  return s;
}
}  // namespace

bool capturing() noexcept { return capture_in_progress().load() != nullptr; }

Graph::Graph() : state_(std::make_unique<detail::GraphState>()) {}
Graph::~Graph() {
  if (state_) state_->destroy();
}
Graph::Graph(Graph&&) noexcept = default;
Graph& Graph::operator=(Graph&& o) noexcept {
  if (this != &o) {
    if (state_) state_->destroy();
    state_ = std::move(o.state_);
  }
  return *this;
}

void Graph::share_pool(const Graph& other) {
  VTS_CHECK(state_ && other.state_ && other.state_->pool,
            "vts::cuda::Graph::share_pool: the other graph has no pool yet (capture it first)");
  VTS_CHECK(state_->graph == nullptr, "vts::cuda::Graph::share_pool: call it before this graph's capture");
  state_->pool = other.state_->pool;
}

void Graph::begin_capture(Generator* dropout) {
  VTS_CHECK(state_, "vts::cuda::Graph: capture into a moved-from graph");
  VTS_CHECK(!capturing(), "vts::cuda::Graph::capture: another capture is in progress (captures do not nest)");
  VTS_CHECK(!profiling(), "vts::cuda::Graph::capture: the op profiler is on; its events cannot be read back from a ",
            "capture (capture first, then profile the replays)");
  detail::GraphState& s = *state_;
  s.destroy();
  if (!s.pool) s.pool = std::make_shared<detail::GraphPool>();
  s.gen = dropout;
  if (dropout) {
    if (!s.offset.data()) s.offset = DeviceBuffer(sizeof(uint64_t));
    s.seed = dropout->seed();
    s.start = dropout->offset();
    s.drawn = 0;
  }
  VTS_CUDA_CHECK(cudaStreamBeginCapture(current_stream(), cudaStreamCaptureModeRelaxed));
  detail::set_capture_pool(s.pool.get());
  capture_in_progress().store(&s);
}

void Graph::abort_capture() noexcept {
  detail::GraphState& s = *state_;
  capture_in_progress().store(nullptr);
  detail::set_capture_pool(nullptr);
  cudaGraph_t partial = nullptr;
  cudaStreamEndCapture(current_stream(), &partial);
  if (partial) cudaGraphDestroy(partial);
  cudaGetLastError();  // the capture's failure is the error being thrown; later calls start clean
  if (s.gen) s.gen->set_state(s.seed, s.start);
  s.gen = nullptr;
}

void Graph::end_capture() {
  detail::GraphState& s = *state_;
  capture_in_progress().store(nullptr);
  detail::set_capture_pool(nullptr);
  cudaGraph_t g = nullptr;
  const cudaError_t e = cudaStreamEndCapture(current_stream(), &g);
  if (s.gen) {
    // Nothing ran: the generator stands where it did, and each replay moves it as the code would.
    s.drawn = s.gen->offset() - s.start;
    s.gen->set_state(s.seed, s.start);
  }
  if (e != cudaSuccess) {
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    s.gen = nullptr;
    detail::throw_cuda_error("CUDA", static_cast<int>(e), cudaGetErrorString(e),
                             "cudaStreamEndCapture (the captured code used the stream in a way a capture forbids)",
                             __FILE__, __LINE__);
  }
  s.graph = g;
  size_t n = 0;
  VTS_CUDA_CHECK(cudaGraphGetNodes(g, nullptr, &n));
  s.nodes = n;
  const cudaError_t ie = cudaGraphInstantiate(&s.exec, g, 0);
  if (ie != cudaSuccess) {
    cudaGetLastError();
    s.exec = nullptr;
    s.destroy();
    detail::throw_cuda_error("CUDA", static_cast<int>(ie), cudaGetErrorString(ie), "cudaGraphInstantiate", __FILE__,
                             __LINE__);
  }
}

void Graph::replay() {
  VTS_CHECK(state_ && state_->exec, "vts::cuda::Graph::replay: nothing was captured");
  VTS_CHECK(!capturing(), "vts::cuda::Graph::replay: inside a capture (graphs do not nest here)");
  detail::GraphState& s = *state_;
  if (s.gen) {
    VTS_CHECK(s.gen->seed() == s.seed, "vts::cuda::Graph::replay: the dropout generator was reseeded (", s.gen->seed(),
              ", captured with ", s.seed, "); the masks' seed is part of the graph, so capture it again");
    const uint64_t distance = s.gen->offset() - s.start;
    copy_from_host_staged(Device{}, s.offset.data(), &distance, sizeof distance);
    s.gen->set_state(s.seed, s.gen->offset() + s.drawn);
  }
  VTS_CUDA_CHECK(cudaGraphLaunch(s.exec, current_stream()));
  ++s.replays;
  if (profiling()) detail::profile_mark("graph replay (" + std::to_string(s.nodes) + " nodes)");
  if (sync_after_launch()) synchronize();
}

bool Graph::empty() const { return !state_ || state_->exec == nullptr; }
size_t Graph::nodes() const { return state_ ? state_->nodes : 0; }
int64_t Graph::replays() const { return state_ ? state_->replays : 0; }

const uint64_t* philox_offset_for(const Generator& gen) {
  detail::GraphState* s = capture_in_progress().load();
  if (s == nullptr) return nullptr;
  VTS_CHECK(s->gen == &gen, "vts::cuda: dropout inside a graph capture draws from a generator the capture was not ",
            "given (pass it to Graph::capture, so that replays draw new masks)");
  return s->offset.as<uint64_t>();
}

}  // namespace vts::cuda
