#pragma once
// CUDA graphs: a stretch of vts::cuda work recorded once and replayed with one launch.
//
// Why: a small model's training step is a few hundred short kernels, and on an H200 each cost
// ≈ 8.5 µs of launch path (docs/perf.md) — far more than the kernels themselves. A replayed graph
// hands the whole sequence to the device at once.
//
// What a capture records is the device work only: kernel launches with their arguments as they
// were, cuBLAS calls, copies and fills, at the addresses they used. Host code inside the capture
// runs once, at capture time; a replay repeats the recorded work and nothing else. So:
//   * Inputs are read from where the capture read them: copy new data into those tensors before
//     a replay (Tensor::copy_).
//   * Memory the capture allocates comes from the graph's own pool (memory.hpp) and stays the
//     graph's: tensors the capture left alive (outputs, gradients) hold the addresses every replay
//     writes, so they read as the latest replay's results.
//   * Random draws: dropout inside the capture draws from a generator given to capture(); each
//     replay moves the kernels' counters on by what the capture drew, through a device-side offset
//     (philox_offset_for), and advances the generator as the captured code would have — replays
//     give the same masks, step for step, as running the code again. Other host-side draws inside
//     a capture are frozen into the graph.
//   * Nothing inside a capture may wait for the device (Tensor::item, to_vector, copy_to_host,
//     synchronize): CUDA rejects it and the capture fails with an error naming the call.
// Capture mode is cudaStreamCaptureModeRelaxed: the caching allocator may call cudaMalloc for the
// pool meanwhile, which the stricter modes forbid.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/rng.hpp"

namespace vts::cuda {

namespace detail {
struct GraphState;
}

// True while the vts::cuda stream is being captured (work is recorded, not run).
bool capturing() noexcept;

class Graph {
 public:
  Graph();
  // Waits for the stream (a replay may still be queued), then frees the graph; its pool's blocks
  // join the ordinary cache.
  ~Graph();
  Graph(Graph&&) noexcept;
  Graph& operator=(Graph&&) noexcept;

  // Allocate from `other`'s pool instead of a new one (call before capture; `other` must outlive
  // this graph). Graphs that share a pool must be replayed in the order they were captured — a
  // block one of them freed during its capture may have been given to a later one — which is what
  // a forward graph and the backward graph captured after it need: the forward's activations,
  // freed by the backward, are reused by the backward's temporaries.
  void share_pool(const Graph& other);

  // Records the device work `body` queues on the current stream; nothing runs. `dropout`: the
  // generator the captured code draws dropout masks from (null: it draws none). Throws (and the
  // graph stays empty) when the capture fails; calling it twice replaces the first capture.
  template <class F>
  void capture(F&& body, Generator* dropout = nullptr) {
    begin_capture(dropout);
    try {
      body();
    } catch (...) {
      abort_capture();
      throw;
    }
    end_capture();
  }

  // Queues the recorded work on the current stream (asynchronous, like a launch).
  void replay();

  bool empty() const;
  size_t nodes() const;   // operations recorded (kernels, GEMM kernels, copies, fills)
  int64_t replays() const;

 private:
  void begin_capture(Generator* dropout);
  void end_capture();
  void abort_capture() noexcept;
  std::unique_ptr<detail::GraphState> state_;
};

// For the dropout kernels: while a capture is in progress, the device address of the capture's
// counter offset (the replay's distance from the capture, added to every counter the captured
// kernels draw), provided `gen` is the generator given to capture(); null when nothing is being
// captured. Throws when a capture is in progress and `gen` is another generator.
const uint64_t* philox_offset_for(const Generator& gen);

}  // namespace vts::cuda
