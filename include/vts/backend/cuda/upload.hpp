#pragma once
// Host batches to the device through pinned memory. A data loader hands over its batches as fp32
// in ordinary (pageable) host memory; copying those blocks the host until the driver has staged
// them, and from pageable memory the copy runs below the link's speed. StagedUpload converts each
// batch into one of two pinned buffers — as the tensor's element type, so a bf16 model moves half
// the bytes — queues an asynchronous copy, and returns the device tensor at once, so the host goes
// on to queue the forward pass while the copy runs. A buffer is refilled only after the copy that
// last read it has finished (an event per buffer); with two, uploading batch n + 1 never waits for
// the copy of batch n.
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "vts/backend/cuda/memory.hpp"
#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/tensor.hpp"

namespace vts::cuda {

class StagedUpload {
 public:
  template <class T>
  Tensor<T, Device> operator()(const float* host, const Shape& shape) {
    const int64_t n = shape.numel();
    const size_t bytes = static_cast<size_t>(n) * sizeof(T);
    Slot& slot = slots_[next_];
    next_ ^= 1;
    slot.done.wait();  // the copy that last read this buffer
    if (slot.buffer.bytes() < bytes) slot.buffer = PinnedBuffer(bytes);
    T* staged = slot.buffer.as<T>();
    if constexpr (std::is_same_v<T, float>) {
      std::memcpy(staged, host, bytes);
    } else {
      for (int64_t i = 0; i < n; ++i) staged[i] = T(host[i]);
    }
    Tensor<T, Device> out = Tensor<T, Device>::empty(shape);
    copy_from_host_async(Device{}, out.data(), staged, bytes);
    slot.done.record();
    return out;
  }

 private:
  struct Slot {
    PinnedBuffer buffer;
    Event done;
  };
  Slot slots_[2];
  int next_ = 0;
};

}  // namespace vts::cuda
