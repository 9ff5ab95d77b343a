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
#include <mutex>
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
    Slot& slot = free_slot(bytes);
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
  // Raw bytes to device memory, the same way; `host` may be reused on return.
  void copy(void* dst, const void* host, size_t bytes) {
    if (bytes == 0) return;
    Slot& slot = free_slot(bytes);
    std::memcpy(slot.buffer.data(), host, bytes);
    copy_from_host_async(Device{}, dst, slot.buffer.data(), bytes);
    slot.done.record();
  }

 private:
  struct Slot;
  // The next buffer, once the copy that last read it has finished, at least `bytes` long.
  Slot& free_slot(size_t bytes) {
    Slot& slot = slots_[next_];
    next_ ^= 1;
    slot.done.wait();
    if (slot.buffer.bytes() < bytes) slot.buffer = PinnedBuffer(bytes);
    return slot;
  }
  struct Slot {
    PinnedBuffer buffer;
    Event done;
  };
  Slot slots_[2];
  int next_ = 0;
};

// StagedUpload::copy through one process-wide uploader: for small per-step uploads (a batch's
// class targets), where copy_from_host would make the host wait for all queued work. Kept for the
// process (freeing pinned memory and events at exit could follow the driver's own teardown).
inline void copy_from_host_staged(Device, void* dst, const void* host, size_t bytes) {
  static std::mutex mutex;
  static auto* upload = new StagedUpload();
  const std::lock_guard<std::mutex> lock(mutex);
  upload->copy(dst, host, bytes);
}

}  // namespace vts::cuda
