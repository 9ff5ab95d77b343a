#pragma once
// Whether ops record the graph. Off inside backward and under NoGradGuard (evaluation, optimizer
// steps, memory-bank writes).
namespace vts {

namespace detail {
inline bool& grad_enabled_flag() {
  thread_local bool enabled = true;
  return enabled;
}
}  // namespace detail

inline bool grad_enabled() { return detail::grad_enabled_flag(); }

class NoGradGuard {
 public:
  NoGradGuard() : previous_(detail::grad_enabled_flag()) { detail::grad_enabled_flag() = false; }
  ~NoGradGuard() { detail::grad_enabled_flag() = previous_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace vts
