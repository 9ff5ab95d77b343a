#pragma once
// Host-side entry points of vts::cuda that do not depend on a tensor type.
namespace vts::cuda {
int device_count() noexcept;
bool available() noexcept;
}  // namespace vts::cuda
