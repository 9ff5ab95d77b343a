// The op profiler of profile.hpp. Host code only, so the CPU emulator of tests/cuda/emu (whose
// events hold the host time at which they were recorded) shares it.
#include "vts/backend/cuda/profile.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "common/check.cuh"

namespace vts::cuda {

namespace {

constexpr size_t kResolveEvery = 4096;

class Profiler {
 public:
  static Profiler& instance() {
    static Profiler p;
    return p;
  }

  bool on() const noexcept { return on_.load(std::memory_order_relaxed); }

  void start() {
    std::lock_guard<std::mutex> lock(mutex_);
    on_.store(false, std::memory_order_relaxed);
    recycle_all();
    entries_.clear();
    by_pointer_.clear();
    by_name_.clear();
    record(-1);  // the base the first op is measured from
    on_.store(true, std::memory_order_relaxed);
  }

  std::vector<ProfileEntry> stop() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!on()) return {};
    on_.store(false, std::memory_order_relaxed);
    resolve();
    recycle_all();
    std::vector<ProfileEntry> out;
    for (const ProfileEntry& e : entries_)
      if (e.calls > 0) out.push_back(e);
    std::sort(out.begin(), out.end(), [](const ProfileEntry& a, const ProfileEntry& b) { return a.ms > b.ms; });
    return out;
  }

  void mark(const char* name, const char* detail) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!on()) return;
    const auto key = std::make_pair(static_cast<const void*>(name), static_cast<const void*>(detail));
    auto it = by_pointer_.find(key);
    if (it == by_pointer_.end()) {
      std::string full = name;
      if (detail != nullptr) full += std::string("<") + detail + ">";
      it = by_pointer_.emplace(key, id_of(full)).first;
    }
    record(it->second);
  }

  void mark(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!on()) return;
    record(id_of(name));
  }

 private:
  struct Mark {
    cudaEvent_t event;
    int id;  // into entries_; −1 for the base
  };

  int id_of(const std::string& name) {
    auto it = by_name_.find(name);
    if (it != by_name_.end()) return it->second;
    const int id = static_cast<int>(entries_.size());
    entries_.push_back(ProfileEntry{name, 0, 0.0});
    by_name_.emplace(name, id);
    return id;
  }

  void record(int id) {
    cudaEvent_t e;
    if (free_.empty()) {
      VTS_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDefault));
    } else {
      e = free_.back();
      free_.pop_back();
    }
    VTS_CUDA_CHECK(cudaEventRecord(e, current_stream()));
    marks_.push_back({e, id});
    if (marks_.size() >= kResolveEvery) resolve();
  }

  // Charges each mark the time since the one before it; keeps the last as the next base.
  void resolve() {
    if (marks_.empty()) return;
    VTS_CUDA_CHECK(cudaEventSynchronize(marks_.back().event));
    for (size_t i = 1; i < marks_.size(); ++i) {
      float ms = 0;
      VTS_CUDA_CHECK(cudaEventElapsedTime(&ms, marks_[i - 1].event, marks_[i].event));
      ProfileEntry& e = entries_[static_cast<size_t>(marks_[i].id)];
      ++e.calls;
      e.ms += ms;
    }
    for (size_t i = 0; i + 1 < marks_.size(); ++i) free_.push_back(marks_[i].event);
    marks_.erase(marks_.begin(), marks_.end() - 1);
  }

  void recycle_all() {
    for (const Mark& m : marks_) free_.push_back(m.event);
    marks_.clear();
  }

  std::mutex mutex_;
  std::atomic<bool> on_{false};
  std::vector<Mark> marks_;
  std::vector<cudaEvent_t> free_;  // created once, reused; the process keeps them
  std::vector<ProfileEntry> entries_;
  std::map<std::pair<const void*, const void*>, int> by_pointer_;
  std::unordered_map<std::string, int> by_name_;
};

}  // namespace

void profile_start() { Profiler::instance().start(); }
std::vector<ProfileEntry> profile_stop() { return Profiler::instance().stop(); }
bool profiling() noexcept { return Profiler::instance().on(); }

namespace detail {
void profile_mark(const char* name, const char* detail) {
  Profiler& p = Profiler::instance();
  if (p.on()) p.mark(name, detail);
}
void profile_mark(const std::string& name) {
  Profiler& p = Profiler::instance();
  if (p.on()) p.mark(name);
}
std::string gemm_profile_name(bool bf16_in, bool bf16_out, int64_t M, int64_t N, int64_t K, int64_t batch,
                              const char* epilogue, const char* api) {
  std::string s = std::string("gemm ") + (bf16_in ? "bf16" : "fp32") + "→" + (bf16_out ? "bf16" : "fp32") + " " +
                  std::to_string(M) + "×" + std::to_string(N) + "×" + std::to_string(K);
  if (batch != 1) s += " ×" + std::to_string(batch);
  if (epilogue != nullptr) s += std::string(" ") + epilogue;
  if (api != nullptr) s += std::string(" (") + api + ")";
  return s;
}
}  // namespace detail

}  // namespace vts::cuda
