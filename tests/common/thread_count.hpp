#pragma once
// Sets the calling thread's OpenMP thread count for one scope and restores it after, for tests that
// compare a kernel's results at several thread counts.
#include "vts/backend/cpu/parallel.hpp"

namespace vts_test_common {

class ThreadCount {
 public:
  explicit ThreadCount(int n) : saved_(vts::cpu::max_threads()) { vts::cpu::set_num_threads(n); }
  ~ThreadCount() { vts::cpu::set_num_threads(saved_); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int saved_;
};

}  // namespace vts_test_common
