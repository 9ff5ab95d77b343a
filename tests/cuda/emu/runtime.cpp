// vts-emu's engine (see emu.hpp): blocks of fibers, the collectives, cp.async, the tensor-core
// operations, and the part of the CUDA runtime API that kernels/ calls, on host memory.
//
// Fibers: each CUDA thread gets a stack; the first entry goes through makecontext/swapcontext,
// every later switch through _setjmp/_longjmp, which does not save the signal mask (swapcontext
// makes a system call for it each time: ≈ 0.7 µs a round trip on the build machine, against
// tens of ns). A thread switches back to the block's scheduler only when it waits: at a barrier it
// is not the last to reach, or at a warp collective.
#include <cublas_api.h>
#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "emu.hpp"

namespace vts_emu {

namespace {

constexpr size_t kStackBytes = 256 * 1024;
constexpr size_t kDefaultDynamicSmem = 48 * 1024;  // without cudaFuncAttributeMaxDynamicSharedMemorySize
constexpr int kMaxSmemOptin = 227 * 1024;           // H100 / H200
constexpr size_t kStaticSmemReserve = 1024;          // for static __shared__ variables, which it cannot size
constexpr size_t kOutBytes = 16;

struct PendingCopy {
  void* dst;
  const void* src;
  int bytes;
  bool valid;
  int group;
  bool landed;  // VTS_EMU_CP_ASYNC=eager: copied at the issue; the wait still owes the proxy bookkeeping
};

// A wgmma.mma_async issued by one lane and not yet computed (VTS_EMU_CP_ASYNC=lazy computes it at
// the wgmma.wait_group that covers its group, reading shared memory then).
struct PendingWgmma {
  float* d;
  int n;
  bool a_in_regs;
  float a[2][16];  // from registers: this lane's rows g and g + 8 of the warp's 16 rows of A
  uint64_t a_desc, b_desc;
  bool trans_b;
  int group;
  bool computed;  // VTS_EMU_CP_ASYNC=eager computes at the issue; the wait is still owed
};

struct Thread {
  uint3 tid{};
  int lane = 0, warp = 0;
  bool done = false, started = false;
  ucontext_t uc{};
  jmp_buf jb{};
  // Blocked while *wait_gen == wait_seen.
  const uint64_t* wait_gen = nullptr;
  uint64_t wait_seen = 0;
  const char* waiting_at = nullptr;
  std::vector<PendingCopy> copies;  // cp.async issued and not yet waited for
  int committed = 0;                // cp.async groups committed
  std::vector<PendingWgmma> wgmmas;  // issued and not yet computed
  int wgmma_committed = 0;           // wgmma groups committed
  bool wgmma_fenced = false;         // wgmma.fence since the start or the last wgmma.wait_group
  std::vector<uint32_t> unfenced;    // 16-byte granules its landed cp.async wrote, not yet fenced
};

struct Warp {
  int size = 32, arrived = 0, exited = 0;
  uint64_t gen = 0;
  Collective kinds[32]{};
  const char* waiting_at = nullptr;  // the collective the arrived lanes wait at
  // Inputs and outputs of a collective, two generations deep: a lane released from generation g may
  // deposit for g + 1 while slower lanes still read g's results.
  alignas(16) unsigned char in[2][32][kSlotBytes];
  alignas(16) unsigned char out[2][32][kOutBytes];
};

enum class CpAsyncMode { lazy, eager };

struct Engine;
Engine& engine();

struct Engine {
  std::mutex launch_mutex;
  Config cfg{};
  uint3 block{};
  int live = 0, arrived = 0;  // threads of the block not yet exited, and those waiting at __syncthreads
  uint64_t block_gen = 0;
  std::vector<Warp> warps;
  std::vector<Thread> threads;
  std::vector<std::unique_ptr<char[]>> stacks;
  std::vector<unsigned char> smem_storage;
  unsigned char* smem = nullptr;
  size_t smem_bytes = 0;
  // Per 16-byte granule of dynamic shared memory: the thread whose landed cp.async wrote it and has
  // not since executed fence.proxy.async, or -1. wgmma reads shared memory through the async proxy,
  // cp.async writes it through the generic one: without the writer's fence (after its wait) the
  // tensor cores need not see the bytes. Plain stores are not tracked.
  std::vector<int32_t> async_unfenced;
  size_t unfenced_granules = 0;  // of async_unfenced, those not -1: a wgmma skips its check at 0
  Thread* current = nullptr;
  bool fiber_mode = false;
  bool synchronised = false;  // the block reached a barrier or collective
  uint64_t events = 0;
  jmp_buf scheduler{};
  ucontext_t fiber_template{};
  const std::function<void()>* body = nullptr;
  bool faulted = false;
  std::string fault_message;
  CpAsyncMode cp_mode = CpAsyncMode::lazy;
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  std::unordered_map<const void*, int> dynamic_smem_optin;
  std::unordered_map<const void*, bool> kernel_synchronises;
  bool stats = false;                           // VTS_EMU_STATS=1: count, and print at exit
  // VTS_EMU_SKIP_WORK=1: launches and GEMMs are checked and counted but not run, so a program's
  // time is its host side alone (the op layer, autograd, the allocator); results are garbage.
  bool skip_work = false;
  uint64_t launches = 0, blocks = 0, gemms = 0, graph_launches = 0;
  // Where the host waits for the device: stream and device synchronisations (what a real device
  // makes the host sit through until the queue drains), and event waits (a staged upload's wait for
  // an earlier copy; on a device usually long done).
  uint64_t stream_syncs = 0, event_syncs = 0;
  std::unordered_map<std::string, uint64_t> launches_by_site;

  Engine() {
    const char* mode = std::getenv("VTS_EMU_CP_ASYNC");
    if (mode && std::strcmp(mode, "eager") == 0) cp_mode = CpAsyncMode::eager;
    if (const char* seed = std::getenv("VTS_EMU_SEED")) rng ^= std::strtoull(seed, nullptr, 10) * 0xbf58476d1ce4e5b9ull;
    getcontext(&fiber_template);
    const char* stats_env = std::getenv("VTS_EMU_STATS");
    stats = stats_env && std::strcmp(stats_env, "0") != 0;
    const char* skip_env = std::getenv("VTS_EMU_SKIP_WORK");
    skip_work = skip_env && std::strcmp(skip_env, "0") != 0;
    if (stats)
      std::atexit([] {
        const Engine& e = engine();
        std::fprintf(stderr, "vts-emu: %llu kernel launches (%llu blocks) and %llu GEMM calls\n",
                     static_cast<unsigned long long>(e.launches), static_cast<unsigned long long>(e.blocks),
                     static_cast<unsigned long long>(e.gemms));
        std::fprintf(stderr, "vts-emu: %llu stream synchronisations, %llu event waits, %llu graph launches\n",
                     static_cast<unsigned long long>(e.stream_syncs), static_cast<unsigned long long>(e.event_syncs),
                     static_cast<unsigned long long>(e.graph_launches));
        std::vector<std::pair<std::string, uint64_t>> sites(e.launches_by_site.begin(), e.launches_by_site.end());
        std::sort(sites.begin(), sites.end(), [](const auto& x, const auto& y) { return x.second > y.second; });
        for (const auto& [site, count] : sites)
          std::fprintf(stderr, "vts-emu: %8llu  %s\n", static_cast<unsigned long long>(count), site.c_str());
      });
  }
  uint64_t next_random() {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  }
};

Engine& engine() {
  static Engine* e = new Engine();  // never destroyed: static destructors (the allocator's) still call in
  return *e;
}

Thread& self() {
  Engine& e = engine();
  if (!e.current) fault("a device function was called outside a kernel");
  return *e.current;
}

// --- fibers ---------------------------------------------------------------------------------

void run_body_catching() {
  Engine& e = engine();
  try {
    (*e.body)();
  } catch (const Fault& f) {
    e.faulted = true;
    if (e.fault_message.empty()) e.fault_message = f.what;
  } catch (const std::exception& x) {
    e.faulted = true;
    e.fault_message = std::string("exception in kernel code: ") + x.what();
  }
}

void fiber_entry() {
  run_body_catching();
  Engine& e = engine();
  e.current->done = true;
  _longjmp(e.scheduler, 1);
}

void resume(Thread* t) {
  Engine& e = engine();
  e.current = t;
  if (_setjmp(e.scheduler) == 0) {
    if (!t->started) {
      t->started = true;
      ucontext_t from;
      swapcontext(&from, &t->uc);  // never resumed: the fiber comes back through _longjmp
    } else {
      _longjmp(t->jb, 1);
    }
  }
  e.current = nullptr;
}

// From a fiber: back to the scheduler until it resumes this thread.
void wait_until_changed(const uint64_t* gen, uint64_t seen, const char* what) {
  Engine& e = engine();
  Thread* t = e.current;
  t->wait_gen = gen;
  t->wait_seen = seen;
  t->waiting_at = what;
  if (_setjmp(t->jb) == 0) _longjmp(e.scheduler, 1);
}

void require_fibers(const char* what) {
  Engine& e = engine();
  e.synchronised = true;
  if (!e.fiber_mode)
    fault("%s in block (%u, %u, %u), but the kernel's first block ran to the end without any barrier or warp "
          "collective, so the emulator ran the rest without fibers",
          what, e.block.x, e.block.y, e.block.z);
}

void thread_exited(Thread& t) {
  Engine& e = engine();
  ++e.events;
  if (!t.copies.empty())
    fault("thread (%u, %u, %u) of block (%u, %u, %u) exited with %zu cp.async copies never waited for", t.tid.x,
          t.tid.y, t.tid.z, e.block.x, e.block.y, e.block.z, t.copies.size());
  if (!t.wgmmas.empty())
    fault("thread (%u, %u, %u) of block (%u, %u, %u) exited with %zu wgmma.mma_async never waited for", t.tid.x,
          t.tid.y, t.tid.z, e.block.x, e.block.y, e.block.z, t.wgmmas.size());
  --e.live;
  // Threads that have exited no longer hold a barrier back.
  if (e.arrived > 0 && e.arrived == e.live) {
    e.arrived = 0;
    ++e.block_gen;
  }
  Warp& w = e.warps[t.warp];
  ++w.exited;
  if (w.arrived > 0)
    fault("lane %d of warp %d in block (%u, %u, %u) exited while %d other lanes wait at %s (a full-warp collective)",
          t.lane, t.warp, e.block.x, e.block.y, e.block.z, w.arrived, w.waiting_at);
}

// Where each warp's waiting threads are, e.g. "warp 1: 16 at __syncthreads, 16 at a warp shuffle".
std::string describe_waits() {
  Engine& e = engine();
  std::string s;
  for (size_t w = 0; w < e.warps.size(); ++w) {
    std::vector<std::pair<const char*, int>> places;
    for (size_t i = 32 * w; i < std::min(e.threads.size(), 32 * (w + 1)); ++i) {
      const Thread& t = e.threads[i];
      const char* at = t.done ? "exited" : t.waiting_at ? t.waiting_at : "?";
      auto it = std::find_if(places.begin(), places.end(), [&](const auto& p) { return std::strcmp(p.first, at) == 0; });
      if (it == places.end()) places.emplace_back(at, 1);
      else ++it->second;
    }
    s += "\n  warp " + std::to_string(w) + ":";
    for (size_t k = 0; k < places.size(); ++k)
      s += (k ? ", " : " ") + std::to_string(places[k].second) + " at " + places[k].first;
  }
  return s;
}

void run_block_with_fibers() {
  Engine& e = engine();
  const size_t n = e.threads.size();
  while (e.stacks.size() < n) e.stacks.push_back(std::make_unique<char[]>(kStackBytes));
  for (size_t i = 0; i < n; ++i) {
    Thread& t = e.threads[i];
    t.uc = e.fiber_template;
    t.uc.uc_stack.ss_sp = e.stacks[i].get();
    t.uc.uc_stack.ss_size = kStackBytes;
    t.uc.uc_link = nullptr;
    makecontext(&t.uc, fiber_entry, 0);
  }
  // Warps in a random order, each run as far as it can go (to a block barrier, or to the end)
  // before the next starts: between two barriers the warps are as far out of step as they can be,
  // in an order that changes every round, so shared memory used without the barrier it needs shows
  // as a wrong result. Lanes are shuffled too.
  std::vector<int> warp_order(e.warps.size());
  for (size_t w = 0; w < warp_order.size(); ++w) warp_order[w] = static_cast<int>(w);
  std::vector<Thread*> lanes;
  size_t remaining = n;
  while (remaining > 0) {
    const uint64_t events_before = e.events;
    for (size_t i = warp_order.size() - 1; i > 0; --i) std::swap(warp_order[i], warp_order[e.next_random() % (i + 1)]);
    for (const int w : warp_order) {
      lanes.clear();
      for (size_t i = 32 * size_t(w); i < std::min(n, 32 * size_t(w) + 32); ++i) lanes.push_back(&e.threads[i]);
      for (size_t i = lanes.size() - 1; i > 0; --i) std::swap(lanes[i], lanes[e.next_random() % (i + 1)]);
      for (bool progressed = true; progressed;) {
        progressed = false;
        for (Thread* t : lanes) {
          if (t->done || (t->wait_gen && *t->wait_gen == t->wait_seen)) continue;
          t->wait_gen = nullptr;
          progressed = true;
          resume(t);
          if (e.faulted) return;
          if (t->done) {
            --remaining;
            try {
              thread_exited(*t);
            } catch (const Fault& f) {
              e.faulted = true;
              e.fault_message = f.what;
              return;
            }
          }
        }
      }
    }
    if (remaining > 0 && e.events == events_before) {
      e.faulted = true;
      e.fault_message = "deadlock: every remaining thread waits and none can proceed (a barrier or warp collective "
                        "that part of the block never reaches)" +
                        describe_waits();
      return;
    }
  }
}

void run_block_directly() {
  Engine& e = engine();
  for (Thread& t : e.threads) {
    e.current = &t;
    run_body_catching();
    e.current = nullptr;
    if (e.faulted) return;
  }
}

cudaError_t g_last_error = cudaSuccess;

void set_error(cudaError_t code, const std::string& message) {
  g_last_error = code;
  std::fprintf(stderr, "vts-emu: %s\n", message.c_str());
}

// The stream capture in progress (vts::cuda has one stream, so one at most) and the graphs made.
struct Capture {
  bool active = false;
  bool invalidated = false;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::vector<std::function<void()>> ops;
};
Capture& capture() {
  static Capture* c = new Capture();
  return *c;
}
struct Graph {
  std::vector<std::function<void()>> ops;
};
// Events last recorded inside a capture: waiting on one is an error on a device.
std::unordered_set<const void*>& captured_events() {
  static auto* s = new std::unordered_set<const void*>();
  return *s;
}
// A call a capture forbids: on a device it fails with cudaErrorStreamCaptureUnsupported and
// invalidates the capture, so cudaStreamEndCapture then fails too.
bool refuse_in_capture(const char* call) {
  Capture& c = capture();
  if (!c.active) return false;
  c.invalidated = true;
  set_error(cudaErrorStreamCaptureUnsupported,
            std::string(call) + " during a stream capture: a device refuses it (cudaErrorStreamCaptureUnsupported) "
                                "and invalidates the capture");
  return true;
}

}  // namespace

// --- what kernels call ----------------------------------------------------------------------

[[noreturn]] void fault(const char* fmt, ...) {
  static thread_local char buffer[1024];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buffer, sizeof buffer, fmt, args);
  va_end(args);
  throw Fault{buffer};
}

uint3 thread_idx() { return self().tid; }
uint3 block_idx() { return engine().block; }
dim3 block_dim() { return engine().cfg.block; }
dim3 grid_dim() { return engine().cfg.grid; }
void* dynamic_shared() { return engine().smem; }
int lane_id() { return self().lane; }

void syncthreads() {
  Engine& e = engine();
  require_fibers("__syncthreads");
  ++e.events;
  const uint64_t gen = e.block_gen;
  if (++e.arrived == e.live) {
    e.arrived = 0;
    ++e.block_gen;
    return;
  }
  wait_until_changed(&e.block_gen, gen, "__syncthreads");
}

namespace {

const char* collective_name(Collective k) {
  switch (k) {
    case Collective::shfl: return "a warp shuffle";
    case Collective::ldmatrix: return "ldmatrix";
    case Collective::mma: return "mma.sync";
    case Collective::wgmma: return "wgmma.mma_async";
    default: return "?";
  }
}

// Deposits this lane's input; the lane that completes the warp runs `complete` on all 32 inputs
// (writing the outputs) before anyone continues, so a result that reads memory sees it as it was
// when the whole warp arrived.
template <class Complete>
const unsigned char* collective(Collective kind, const void* data, size_t bytes, int* buffer, Complete&& complete) {
  Engine& e = engine();
  require_fibers(collective_name(kind));
  Thread& t = *e.current;
  Warp& w = e.warps[t.warp];
  if (w.exited > 0 || w.size != 32)
    fault("%s in warp %d of block (%u, %u, %u), which has %d of 32 lanes", collective_name(kind), t.warp, e.block.x,
          e.block.y, e.block.z, w.size - w.exited);
  const uint64_t gen = w.gen;
  const int buf = static_cast<int>(gen & 1);
  std::memcpy(w.in[buf][t.lane], data, bytes);
  w.kinds[t.lane] = kind;
  w.waiting_at = collective_name(kind);
  ++e.events;
  if (++w.arrived == w.size) {
    for (int l = 0; l < w.size; ++l)
      if (w.kinds[l] != kind)
        fault("divergent warp %d in block (%u, %u, %u): lane %d is at %s while lane %d is at %s", t.warp, e.block.x,
              e.block.y, e.block.z, l, collective_name(w.kinds[l]), t.lane, collective_name(kind));
    complete(w.in[buf], w.out[buf]);
    w.arrived = 0;
    ++w.gen;
  } else {
    wait_until_changed(&w.gen, gen, collective_name(kind));
  }
  *buffer = buf;
  return &w.in[buf][0][0];
}

bool in_shared(const void* p, size_t bytes) {
  const Engine& e = engine();
  const auto* c = static_cast<const unsigned char*>(p);
  return c >= e.smem && c + bytes <= e.smem + e.smem_bytes;
}

float bf16_to_float(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

const unsigned char* warp_collective(Collective kind, const void* data, size_t bytes) {
  int buf = 0;
  return collective(kind, data, bytes, &buf, [](auto&, auto&) {});
}

namespace {
void land(void* smem, const void* gmem, int bytes, bool valid) {
  if (valid) std::memcpy(smem, gmem, static_cast<size_t>(bytes));
  else std::memset(smem, 0, static_cast<size_t>(bytes));
}

void mark_unfenced(Thread& t, const void* smem, int bytes) {
  Engine& e = engine();
  const auto first = static_cast<size_t>(static_cast<const unsigned char*>(smem) - e.smem) / 16;
  const auto writer = static_cast<int32_t>(&t - e.threads.data());
  for (size_t g = first; g < first + static_cast<size_t>(bytes + 15) / 16; ++g) {
    if (e.async_unfenced[g] < 0) ++e.unfenced_granules;
    e.async_unfenced[g] = writer;
    t.unfenced.push_back(static_cast<uint32_t>(g));
  }
}
}  // namespace

void fence_proxy_async() {
  Engine& e = engine();
  Thread& t = self();
  const auto me = static_cast<int32_t>(&t - e.threads.data());
  for (uint32_t g : t.unfenced)
    if (e.async_unfenced[g] == me) {
      e.async_unfenced[g] = -1;
      --e.unfenced_granules;
    }
  t.unfenced.clear();
}

void cp_async(void* smem, const void* gmem, int bytes, bool valid) {
  Engine& e = engine();
  Thread& t = self();
  if (!in_shared(smem, static_cast<size_t>(bytes)) || reinterpret_cast<uintptr_t>(smem) % bytes != 0)
    fault("cp.async destination %p (%d bytes) is not aligned inside the block's %zu bytes of dynamic shared memory",
          smem, bytes, e.smem_bytes);
  if (valid && reinterpret_cast<uintptr_t>(gmem) % bytes != 0) fault("cp.async source %p is not %d-byte aligned", gmem, bytes);
  const bool eager = e.cp_mode == CpAsyncMode::eager;
  if (eager) land(smem, gmem, bytes, valid);
  t.copies.push_back({smem, gmem, bytes, valid, t.committed, eager});
}

void cp_async_commit() { ++self().committed; }

void cp_async_wait(int pending_groups_allowed) {
  Thread& t = self();
  const int landed_below = t.committed - pending_groups_allowed;
  auto it = std::remove_if(t.copies.begin(), t.copies.end(), [&](const PendingCopy& c) {
    if (c.group >= landed_below) return false;
    if (!c.landed) land(c.dst, c.src, c.bytes, c.valid);
    // Whenever the bytes arrived, a fence that orders them for the async proxy must follow the wait.
    mark_unfenced(t, c.dst, c.bytes);
    return true;
  });
  t.copies.erase(it, t.copies.end());
}

void ldmatrix_x4(uint32_t (&r)[4], const void* p, bool trans) {
  if (!in_shared(p, 16) || reinterpret_cast<uintptr_t>(p) % 16 != 0)
    fault("ldmatrix row address %p is not a 16-byte aligned row inside the block's dynamic shared memory", p);
  int buf = 0;
  collective(Collective::ldmatrix, &p, sizeof p, &buf,
             [trans](unsigned char (&in)[32][kSlotBytes], unsigned char (&out)[32][kOutBytes]) {
               auto row = [&](int lane) {
                 const uint16_t* q;
                 std::memcpy(&q, in[lane], sizeof q);
                 return q;
               };
               for (int lane = 0; lane < 32; ++lane) {
                 const int g = lane >> 2, t = lane & 3;
                 uint32_t v[4];
                 for (int i = 0; i < 4; ++i) {
                   uint16_t lo, hi;
                   if (!trans) {
                     lo = row(8 * i + g)[2 * t];
                     hi = row(8 * i + g)[2 * t + 1];
                   } else {
                     lo = row(8 * i + 2 * t)[g];
                     hi = row(8 * i + 2 * t + 1)[g];
                   }
                   v[i] = uint32_t(lo) | (uint32_t(hi) << 16);
                 }
                 std::memcpy(out[lane], v, sizeof v);
               }
             });
  std::memcpy(r, engine().warps[self().warp].out[buf][self().lane], sizeof r);
}

void mma_m16n8k16_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  const uint32_t mine[6] = {a[0], a[1], a[2], a[3], b0, b1};
  int buf = 0;
  const unsigned char* in = collective(Collective::mma, mine, sizeof mine, &buf, [](auto&, auto&) {});
  auto reg = [&](int lane, int i) {
    uint32_t v;
    std::memcpy(&v, in + kSlotBytes * lane + 4 * i, 4);
    return v;
  };
  auto half = [](uint32_t v, int k) { return bf16_to_float(static_cast<uint16_t>(k & 1 ? v >> 16 : v)); };
  // Element (row, k) of A and (k, col) of B, from the lane and register the fragment layout puts it in.
  auto A = [&](int row, int k) { return half(reg((row & 7) * 4 + ((k & 7) >> 1), (row >> 3) + ((k >> 3) << 1)), k); };
  auto B = [&](int k, int col) { return half(reg(col * 4 + ((k & 7) >> 1), 4 + (k >> 3)), k); };
  const int lane = lane_id(), g = lane >> 2, t = lane & 3;
  for (int j = 0; j < 4; ++j) {
    const int row = g + 8 * (j >> 1), col = 2 * t + (j & 1);
    float acc = c[j];
    for (int k = 0; k < 16; ++k) acc = std::fma(A(row, k), B(k, col), acc);  // bf16 products are exact in fp32
    c[j] = acc;
  }
}

namespace {

// A descriptor's start address is the byte offset in the block's dynamic shared memory (>> 4).
uint64_t encode_desc(const void* smem, uint32_t lbo, uint32_t sbo) {
  const Engine& e = engine();
  const auto offset = static_cast<uint64_t>(static_cast<const unsigned char*>(smem) - e.smem);
  return ((offset >> 4) & 0x3fff) | uint64_t((lbo >> 4) & 0x3fff) << 16 | uint64_t((sbo >> 4) & 0x3fff) << 32;
}

// Byte offset of element (mn, k) of a wgmma operand in shared memory, through its descriptor (the
// layout without swizzle, kernels/common/hw.cuh): K-major, or MN-major for a transposed B.
uint64_t wgmma_operand_offset(uint64_t desc, int mn, int k, bool mn_major, const char* which) {
  const Engine& e = engine();
  if (desc >> 62 != 0 || ((desc >> 49) & 7) != 0)
    fault("wgmma: the %s descriptor asks for a swizzle or base offset (0x%016llx); the emulator knows the layout "
          "without swizzle only",
          which, static_cast<unsigned long long>(desc));
  const uint64_t start = (desc & 0x3fff) << 4, lbo = ((desc >> 16) & 0x3fff) << 4, sbo = ((desc >> 32) & 0x3fff) << 4;
  const uint64_t at = mn_major ? start + (mn % 8) * 2 + (mn / 8) * sbo + (k % 8) * 16 + (k / 8) * lbo
                               : start + (mn % 8) * 16 + (mn / 8) * sbo + (k % 8) * 2 + (k / 8) * lbo;
  if (at + 2 > e.smem_bytes)
    fault("wgmma: element (%d, %d) of the %s operand is at byte %llu, past the block's %zu bytes of dynamic shared "
          "memory (descriptor 0x%016llx)",
          mn, k, which, static_cast<unsigned long long>(at), e.smem_bytes, static_cast<unsigned long long>(desc));
  return at;
}

float wgmma_operand(uint64_t desc, int mn, int k, bool mn_major, const char* which) {
  uint16_t h;
  std::memcpy(&h, engine().smem + wgmma_operand_offset(desc, mn, k, mn_major, which), 2);
  return bf16_to_float(h);
}

// At the issue: every shared-memory element the warp's part of the product reads (its 16 rows of
// A, all of B) must be visible to the async proxy — no landed cp.async whose writer has not fenced.
void check_async_visible(uint64_t a_desc, bool a_in_regs, uint64_t b_desc, int n, bool trans_b, const Thread& t) {
  const Engine& e = engine();
  if (e.unfenced_granules == 0) return;  // the usual case once the block's copies are fenced
  auto check = [&](uint64_t desc, int mn, int k, bool mn_major, const char* which) {
    const uint64_t at = wgmma_operand_offset(desc, mn, k, mn_major, which);
    if (const int32_t writer = e.async_unfenced[at / 16]; writer >= 0) {
      const uint3 w = e.threads[static_cast<size_t>(writer)].tid;
      fault("wgmma: element (%d, %d) of the %s operand (shared byte %llu) was written by a cp.async of thread "
            "(%u, %u, %u), which has not executed fence.proxy.async since the copy landed: the tensor cores (the "
            "async proxy) need not see it",
            mn, k, which, static_cast<unsigned long long>(at), w.x, w.y, w.z);
    }
  };
  for (int k = 0; k < 16; ++k) {
    if (!a_in_regs)
      for (int row = 16 * (t.warp % 4); row < 16 * (t.warp % 4) + 16; ++row) check(a_desc, row, k, false, "A");
    for (int col = 0; col < n; ++col) check(b_desc, col, k, trans_b, "B");
  }
}

void compute_wgmma(const PendingWgmma& op, const Thread& t) {
  const int g = t.lane >> 2, q = t.lane & 3, row0 = 16 * (t.warp % 4);
  for (int j = 0; j < op.n / 8; ++j)
    for (int r = 0; r < 4; ++r) {
      const int row = g + 8 * (r >> 1), col = 8 * j + 2 * q + (r & 1);
      float acc = op.d[4 * j + r];
      for (int k = 0; k < 16; ++k) {
        const float a = op.a_in_regs ? op.a[r >> 1][k] : wgmma_operand(op.a_desc, row0 + row, k, false, "A");
        acc = std::fma(a, wgmma_operand(op.b_desc, col, k, op.trans_b, "B"), acc);
      }
      op.d[4 * j + r] = acc;
    }
}

}  // namespace

uint64_t wgmma_desc(const void* smem, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  if (!in_shared(smem, 16) || reinterpret_cast<uintptr_t>(smem) % 16 != 0)
    fault("wgmma descriptor start %p is not 16-byte aligned inside the block's dynamic shared memory", smem);
  return encode_desc(smem, lbo_bytes, sbo_bytes);
}

void wgmma(float* d, int n, const uint32_t* a_regs, uint64_t a_desc, uint64_t b_desc, bool trans_b) {
  Engine& e = engine();
  const uint64_t threads = uint64_t(e.cfg.block.x) * e.cfg.block.y * e.cfg.block.z;
  if (threads % 128 != 0)
    fault("wgmma.mma_async in a block of %llu threads: a warpgroup is 4 whole warps",
          static_cast<unsigned long long>(threads));
  uint32_t mine[4] = {0, 0, 0, 0};
  if (a_regs) std::memcpy(mine, a_regs, sizeof mine);
  int buf = 0;
  const unsigned char* in = collective(Collective::wgmma, mine, sizeof mine, &buf, [](auto&, auto&) {});
  Thread& t = self();
  if (!t.wgmma_fenced)
    fault("thread (%u, %u, %u): wgmma.mma_async issued with no wgmma.fence since the kernel's start or the thread's "
          "last wgmma.wait_group (the fence orders the registers written since, accumulators and A, before the "
          "tensor cores read them)",
          t.tid.x, t.tid.y, t.tid.z);
  PendingWgmma op{d, n, a_regs != nullptr, {}, a_desc, b_desc, trans_b, t.wgmma_committed, false};
  if (t.lane == 0) check_async_visible(a_desc, a_regs != nullptr, b_desc, n, trans_b, t);
  if (a_regs) {
    // mma.sync's A fragment: (row, k) in lane (row % 8)·4 + (k % 8)/2, register row/8 + 2·(k/8).
    const int g = t.lane >> 2;
    for (int r = 0; r < 2; ++r)
      for (int k = 0; k < 16; ++k) {
        uint32_t v;
        std::memcpy(&v, in + kSlotBytes * (g * 4 + ((k & 7) >> 1)) + 4 * (r + 2 * (k >> 3)), 4);
        op.a[r][k] = bf16_to_float(static_cast<uint16_t>(k & 1 ? v >> 16 : v));
      }
  }
  if (e.cp_mode == CpAsyncMode::eager) {
    compute_wgmma(op, t);
    op.computed = true;
  }
  t.wgmmas.push_back(op);
}

void wgmma_commit() { ++self().wgmma_committed; }

void wgmma_fence() { self().wgmma_fenced = true; }

void wgmma_wait(int pending_groups_allowed) {
  Thread& t = self();
  t.wgmma_fenced = false;
  const int done_below = t.wgmma_committed - pending_groups_allowed;
  auto it = std::stable_partition(t.wgmmas.begin(), t.wgmmas.end(), [&](const PendingWgmma& op) { return op.group < done_below; });
  for (auto op = t.wgmmas.begin(); op != it; ++op)
    if (!op->computed) compute_wgmma(*op, t);
  t.wgmmas.erase(t.wgmmas.begin(), it);
}

bool capturing_now() { return capture().active; }
namespace {
bool g_replaying = false;
}
bool replaying_graph() { return g_replaying; }
void record_captured(std::function<void()> op) { capture().ops.push_back(std::move(op)); }

bool count_gemm_call() {
  Engine& e = engine();
  ++e.gemms;
  return !e.skip_work;
}

void run_kernel(const void* kernel, const Config& cfg, const std::function<void()>& body) {
  Engine& e = engine();
  const std::lock_guard<std::mutex> lock(e.launch_mutex);
  const uint64_t threads = uint64_t(cfg.block.x) * cfg.block.y * cfg.block.z;
  if (threads == 0 || threads > 1024 || cfg.block.z > 64 || cfg.grid.x == 0 || cfg.grid.y == 0 || cfg.grid.z == 0 ||
      cfg.grid.y > 65535 || cfg.grid.z > 65535) {
    char m[200];
    std::snprintf(m, sizeof m, "launch of grid (%u, %u, %u) × block (%u, %u, %u): invalid configuration", cfg.grid.x,
                  cfg.grid.y, cfg.grid.z, cfg.block.x, cfg.block.y, cfg.block.z);
    set_error(cudaErrorInvalidConfiguration, m);
    return;
  }
  const auto optin = e.dynamic_smem_optin.find(kernel);
  // Without the opt-in a device allows 48 KB of static and dynamic shared memory together. The
  // emulator cannot see a kernel's static __shared__ variables (function statics here), so it keeps
  // kStaticSmemReserve of the 48 KB for them: LayerNorm's backward once asked for exactly 48 KB of
  // partials next to a one-byte flag, passed here and failed its launch on an H200 (2026-12-04).
  const size_t smem_limit = optin != e.dynamic_smem_optin.end() ? static_cast<size_t>(optin->second)
                                                                 : kDefaultDynamicSmem - kStaticSmemReserve;
  if (cfg.smem > smem_limit) {
    set_error(cudaErrorInvalidValue, "launch asks for " + std::to_string(cfg.smem) +
                                         " bytes of dynamic shared memory; the kernel allows " +
                                         std::to_string(smem_limit) +
                                         " (cudaFuncAttributeMaxDynamicSharedMemorySize opts into more)");
    return;
  }
  ++e.launches;
  if (e.stats && cfg.file) ++e.launches_by_site[std::string(cfg.file) + ":" + std::to_string(cfg.line)];
  e.blocks += uint64_t(cfg.grid.x) * cfg.grid.y * cfg.grid.z;
  if (e.skip_work) return;
  e.cfg = cfg;
  e.body = &body;
  e.faulted = false;
  e.fault_message.clear();
  e.smem_storage.assign(cfg.smem + 16, 0);
  e.smem = e.smem_storage.data() + (16 - reinterpret_cast<uintptr_t>(e.smem_storage.data()) % 16) % 16;
  e.smem_bytes = cfg.smem;
  e.threads.assign(threads, Thread{});
  e.warps.assign((threads + 31) / 32, Warp{});
  for (uint64_t i = 0; i < threads; ++i) {
    Thread& t = e.threads[i];
    t.tid = uint3{static_cast<unsigned>(i % cfg.block.x), static_cast<unsigned>(i / cfg.block.x % cfg.block.y),
                  static_cast<unsigned>(i / (uint64_t(cfg.block.x) * cfg.block.y))};
    t.warp = static_cast<int>(i / 32);
    t.lane = static_cast<int>(i % 32);
  }
  for (size_t w = 0; w < e.warps.size(); ++w) e.warps[w].size = static_cast<int>(std::min<uint64_t>(32, threads - 32 * w));
  auto known = e.kernel_synchronises.find(kernel);
  for (unsigned z = 0; z < cfg.grid.z && !e.faulted; ++z)
    for (unsigned y = 0; y < cfg.grid.y && !e.faulted; ++y)
      for (unsigned x = 0; x < cfg.grid.x && !e.faulted; ++x) {
        e.block = uint3{x, y, z};
        // Uninitialised shared memory reads as NaN (0xff bytes), as the parity tests poison outputs.
        std::memset(e.smem, 0xff, e.smem_bytes);
        e.async_unfenced.assign((e.smem_bytes + 15) / 16, -1);
        e.unfenced_granules = 0;
        e.live = static_cast<int>(threads);
        e.arrived = 0;
        e.synchronised = false;
        for (Thread& t : e.threads) {
          t.done = t.started = false;
          t.wait_gen = nullptr;
          t.copies.clear();
          t.committed = 0;
          t.wgmmas.clear();
          t.wgmma_committed = 0;
          t.wgmma_fenced = false;
          t.unfenced.clear();
        }
        for (Warp& w : e.warps) w.arrived = w.exited = 0;
        // A kernel whose first block meets no barrier runs its other blocks as plain calls.
        e.fiber_mode = known == e.kernel_synchronises.end() || known->second;
        if (e.fiber_mode) run_block_with_fibers();
        else run_block_directly();
        if (known == e.kernel_synchronises.end()) {
          e.kernel_synchronises[kernel] = e.synchronised;
          known = e.kernel_synchronises.find(kernel);
        }
        if (e.faulted) {
          char where[120];
          std::snprintf(where, sizeof where, "kernel fault in block (%u, %u, %u) of grid (%u, %u, %u): ", x, y, z,
                        cfg.grid.x, cfg.grid.y, cfg.grid.z);
          set_error(cudaErrorLaunchFailure, where + e.fault_message);
        }
      }
  e.threads.clear();
  e.current = nullptr;
}

// --- the CUDA runtime API, on host memory -----------------------------------------------------

namespace {
struct Allocations {
  std::mutex mutex;
  std::unordered_map<void*, size_t> live;
  size_t bytes = 0;
};
Allocations& allocations() {
  static Allocations* a = new Allocations();
  return *a;
}
// The emulated device's memory: VTS_EMU_MEMORY_BYTES, else VTS_EMU_MEMORY_MB, else 8 GiB. Read at
// every cudaMalloc, so a test can shrink it to what is allocated already.
size_t memory_limit() {
  if (const char* b = std::getenv("VTS_EMU_MEMORY_BYTES")) return std::strtoull(b, nullptr, 10);
  const char* s = std::getenv("VTS_EMU_MEMORY_MB");
  return (s ? std::strtoull(s, nullptr, 10) : 8192) << 20;
}
// Set and not "0".
bool env_flag(const char* name) {
  const char* s = std::getenv(name);
  return s != nullptr && s[0] != '\0' && std::strcmp(s, "0") != 0;
}
int driver_version() {
  const char* s = std::getenv("VTS_EMU_DRIVER_VERSION");
  return s ? std::atoi(s) : 13000;
}
int sm_count() {
  const char* s = std::getenv("VTS_EMU_SMS");
  return s ? std::max(1, std::atoi(s)) : 132;
}
int g_stream_token = 0;
}  // namespace

}  // namespace vts_emu

using vts_emu::g_last_error;

extern "C" {

// VTS_EMU_NO_DEVICE=1: the runtime's answer on a machine without a GPU (cuda::unavailable_reason()).
cudaError_t cudaGetDeviceCount(int* count) {
  if (vts_emu::env_flag("VTS_EMU_NO_DEVICE")) {
    *count = 0;
    return g_last_error = cudaErrorNoDevice;
  }
  if (vts_emu::driver_version() < 13000) {
    *count = 0;
    return g_last_error = cudaErrorInsufficientDriver;
  }
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return g_last_error = cudaErrorInvalidDevice;
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "vts-emu (the kernels on the CPU, sm_90 limits)");
  p->major = 9;
  p->minor = 0;
  if (const char* cc = std::getenv("VTS_EMU_COMPUTE_CAPABILITY")) {  // "75": report an older device
    const int v = std::atoi(cc);
    p->major = v / 10;
    p->minor = v % 10;
  }
  p->multiProcessorCount = vts_emu::sm_count();
  p->totalGlobalMem = vts_emu::memory_limit();
  p->l2CacheSize = 50 << 20;
  p->sharedMemPerBlock = vts_emu::kDefaultDynamicSmem;
  p->sharedMemPerBlockOptin = vts_emu::kMaxSmemOptin;
  p->sharedMemPerMultiprocessor = 228 * 1024;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->regsPerBlock = 65536;
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int) {
  *stream = reinterpret_cast<cudaStream_t>(&vts_emu::g_stream_token);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  if (vts_emu::refuse_in_capture("cudaStreamSynchronize")) return cudaErrorStreamCaptureUnsupported;
  ++vts_emu::engine().stream_syncs;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  if (vts_emu::refuse_in_capture("cudaDeviceSynchronize")) return cudaErrorStreamCaptureUnsupported;
  ++vts_emu::engine().stream_syncs;
  return cudaSuccess;
}
// An event holds the host time it was recorded at: the emulator runs each launch to completion
// before returning, so that is when the work before it finished (benchmarks then time the CPU).
using EmuEvent = std::chrono::steady_clock::time_point;
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) {
  *event = reinterpret_cast<cudaEvent_t>(new EmuEvent());
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (vts_emu::capturing_now()) {  // an event-record node: the time is taken at the replay
    vts_emu::captured_events().insert(event);
    vts_emu::record_captured([event] { *reinterpret_cast<EmuEvent*>(event) = std::chrono::steady_clock::now(); });
    return cudaSuccess;
  }
  vts_emu::captured_events().erase(event);
  *reinterpret_cast<EmuEvent*>(event) = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (vts_emu::captured_events().count(start) || vts_emu::captured_events().count(end)) {
    vts_emu::set_error(cudaErrorStreamCaptureUnsupported,
                       "cudaEventElapsedTime on an event last recorded inside a stream capture");
    return cudaErrorStreamCaptureUnsupported;
  }
  *ms = std::chrono::duration<float, std::milli>(*reinterpret_cast<EmuEvent*>(end) -
                                                 *reinterpret_cast<EmuEvent*>(start))
            .count();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (vts_emu::captured_events().count(event)) {
    vts_emu::set_error(cudaErrorStreamCaptureUnsupported,
                       "cudaEventSynchronize on an event last recorded inside a stream capture");
    return cudaErrorStreamCaptureUnsupported;
  }
  ++vts_emu::engine().event_syncs;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete reinterpret_cast<EmuEvent*>(event);
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  const cudaError_t e = g_last_error;
  g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return g_last_error; }
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory (vts-emu: VTS_EMU_MEMORY_MB or _BYTES)";
    case cudaErrorInvalidValue: return "invalid argument (vts-emu: see the message above)";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorLaunchFailure: return "unspecified launch failure (vts-emu: see the kernel fault above)";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoKernelImageForDevice: return "no kernel image is available for execution on the device";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorIllegalState: return "the operation is not valid in the current state (vts-emu: see above)";
    default: return "vts-emu: an error the emulator does not name";
  }
}
const char* cudaGetErrorName(cudaError_t e) { return cudaGetErrorString(e); }

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (vts_emu::capture().active && vts_emu::capture().mode != cudaStreamCaptureModeRelaxed &&
      vts_emu::refuse_in_capture("cudaMalloc (allowed only in cudaStreamCaptureModeRelaxed)"))
    return cudaErrorStreamCaptureUnsupported;
  auto& a = vts_emu::allocations();
  const std::lock_guard<std::mutex> lock(a.mutex);
  const size_t rounded = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
  if (a.bytes + rounded > vts_emu::memory_limit()) return g_last_error = cudaErrorMemoryAllocation;
  void* q = std::aligned_alloc(256, rounded);
  if (!q) return g_last_error = cudaErrorMemoryAllocation;
  std::memset(q, 0xff, rounded);  // fresh device memory is not zero; NaN makes unwritten reads show
  a.live[q] = rounded;
  a.bytes += rounded;
  *p = q;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  if (vts_emu::refuse_in_capture("cudaFree")) return cudaErrorStreamCaptureUnsupported;
  auto& a = vts_emu::allocations();
  const std::lock_guard<std::mutex> lock(a.mutex);
  const auto it = a.live.find(p);
  if (it == a.live.end()) {
    vts_emu::set_error(cudaErrorInvalidValue, "cudaFree of a pointer cudaMalloc did not return");
    return cudaErrorInvalidValue;
  }
  a.bytes -= it->second;
  a.live.erase(it);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned int) {
  *p = std::aligned_alloc(256, (std::max<size_t>(bytes, 1) + 255) / 256 * 256);
  return *p ? cudaSuccess : (g_last_error = cudaErrorMemoryAllocation);
}
cudaError_t cudaMallocHost(void** p, size_t bytes) { return cudaHostAlloc(p, bytes, 0); }
cudaError_t cudaFreeHost(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t) {
  // In a capture: a copy node, reading the source when the graph runs (as a device's does).
  if (vts_emu::defer_if_capturing([=] {
        if (bytes) std::memmove(dst, src, bytes);
      }))
    return cudaSuccess;
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (vts_emu::refuse_in_capture("cudaMemcpy (synchronous)")) return cudaErrorStreamCaptureUnsupported;
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  if (vts_emu::defer_if_capturing([=] {
        if (bytes) std::memset(dst, value, bytes);
      }))
    return cudaSuccess;
  if (bytes) std::memset(dst, value, bytes);
  return cudaSuccess;
}

// Stream capture and graphs: a graph is the list of recorded operations, run in order.
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode mode) {
  vts_emu::Capture& c = vts_emu::capture();
  if (c.active) {
    vts_emu::set_error(cudaErrorIllegalState, "cudaStreamBeginCapture: the stream is already capturing");
    return cudaErrorIllegalState;
  }
  c = vts_emu::Capture{};
  c.active = true;
  c.mode = mode;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t* graph) {
  vts_emu::Capture& c = vts_emu::capture();
  *graph = nullptr;
  if (!c.active) {
    vts_emu::set_error(cudaErrorIllegalState, "cudaStreamEndCapture: the stream is not capturing");
    return cudaErrorIllegalState;
  }
  c.active = false;
  if (c.invalidated) return g_last_error = cudaErrorStreamCaptureInvalidated;
  *graph = reinterpret_cast<cudaGraph_t>(new vts_emu::Graph{std::move(c.ops)});
  c.ops.clear();
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t, cudaStreamCaptureStatus* status) {
  *status = vts_emu::capture().active ? (vts_emu::capture().invalidated ? cudaStreamCaptureStatusInvalidated
                                                                          : cudaStreamCaptureStatusActive)
                                      : cudaStreamCaptureStatusNone;
  return cudaSuccess;
}
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, size_t* count) {
  if (nodes != nullptr) return g_last_error = cudaErrorInvalidValue;  // only the count is emulated
  *count = reinterpret_cast<vts_emu::Graph*>(graph)->ops.size();
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  *exec = reinterpret_cast<cudaGraphExec_t>(new vts_emu::Graph(*reinterpret_cast<vts_emu::Graph*>(graph)));
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t) {
  if (vts_emu::capturing_now()) {
    vts_emu::set_error(cudaErrorIllegalState, "cudaGraphLaunch inside a capture is not emulated");
    return cudaErrorIllegalState;
  }
  ++vts_emu::engine().graph_launches;
  vts_emu::g_replaying = true;
  try {
    for (const auto& op : reinterpret_cast<vts_emu::Graph*>(exec)->ops) op();
  } catch (...) {
    vts_emu::g_replaying = false;
    throw;
  }
  vts_emu::g_replaying = false;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete reinterpret_cast<vts_emu::Graph*>(exec);
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete reinterpret_cast<vts_emu::Graph*>(graph);
  return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || value > vts_emu::kMaxSmemOptin) {
      vts_emu::set_error(cudaErrorInvalidValue, "cudaFuncSetAttribute: " + std::to_string(value) +
                                                    " bytes of dynamic shared memory is more than the device's " +
                                                    std::to_string(vts_emu::kMaxSmemOptin));
      return cudaErrorInvalidValue;
    }
    vts_emu::engine().dynamic_smem_optin[kernel] = value;
  }
  return cudaSuccess;
}

// VTS_EMU_DRIVER_VERSION=12040: an older driver than the 13.0 runtime (0: none installed).
cudaError_t cudaDriverGetVersion(int* v) {
  *v = vts_emu::driver_version();
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}

// VTS_EMU_NO_KERNEL_IMAGE=1: what the runtime answers for a device the build has no code for.
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void*) {
  std::memset(attr, 0, sizeof *attr);
  if (vts_emu::env_flag("VTS_EMU_NO_KERNEL_IMAGE")) return g_last_error = cudaErrorNoKernelImageForDevice;
  attr->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}

// device_info.cu names cuBLAS statuses in its error messages; the emulator has no cuBLAS.
const char* cublasGetStatusString(cublasStatus_t status) {
  return status == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "a cuBLAS error (vts-emu has no cuBLAS)";
}

}  // extern "C"
