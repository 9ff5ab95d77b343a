#pragma once
// What every optimizer shares: the parameter list, the learning rate, and per-parameter state
// (a step count and named buffers the size of the parameter), with export and import of that
// state as named tensors for checkpoints.
//
// State names follow PyTorch's optimizer state_dict: parameter i's buffers are "<i>.<buffer>"
// (e.g. "3.exp_avg", "3.momentum_buffer") and its step count is "<i>.step", a one-element tensor
// of T (PyTorch 1.13 also keeps it as a float tensor). "step" alone is the number of step()
// calls, which a schedule driven by iterations needs after a restart. A parameter that never had
// a gradient has no state, as in PyTorch.
//
// Mixed precision: with bf16 parameters (T = bf16) the optimizer keeps an fp32 master copy of each
// parameter and fp32 state buffers (state_type = acc_t<T>). An update reads the bf16 gradient,
// applies the rule to the master in fp32, and writes the bf16 rounding of the result back into the
// parameter the network computes with, so updates smaller than a bf16 ulp accumulate in the master
// instead of being rounded away. Masters are made from the parameters at their first update and are
// part of state() as "<i>.master"; after writing new values into the parameters of a model that has
// already been trained a step, call reset_masters().
//
// Launches: where the device can apply many parameters' updates in one launch
// (vts::cuda::optim_update_many), step() collects them and launches at its end; elsewhere each
// update runs when step() reaches its parameter.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vts/autograd/grad_mode.hpp"
#include "vts/core/tensor.hpp"
#include "vts/ops/cast.hpp"
#include "vts/optim/param_list.hpp"
#include "vts/optim/update.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/optim.hpp"
#endif

namespace vts::optim {

template <class T, class D = Cpu>
using NamedTensors = std::vector<std::pair<std::string, Tensor<T, D>>>;

template <class T, class D = Cpu>
class Optimizer {
 public:
  using tensor_type = Tensor<T, D>;
  // The element type of the state buffers and of the master weights.
  using state_type = acc_t<T>;
  using state_tensor = Tensor<state_type, D>;
  static constexpr bool has_masters = !std::is_same_v<T, state_type>;

  const ParamList<T, D>& params() const { return params_; }
  double lr() const { return lr_; }
  void set_lr(double lr) {
    VTS_CHECK(lr >= 0.0 && std::isfinite(lr), "optimizer: learning rate must be finite and >= 0, got ", lr);
    lr_ = lr;
  }
  void zero_grad() const { params_.zero_grad(); }

  // Number of step() calls so far.
  int64_t steps() const { return steps_; }
  // Number of updates parameter i has received (it skips steps where it had no gradient).
  int64_t step_count(size_t i) const { return slot(i).step; }
  // The buffer called `name` of parameter i; an undefined tensor until the first update creates it.
  const state_tensor& buffer(size_t i, std::string_view name) const { return slot(i).buffers[buffer_index(name)]; }
  // The fp32 master copy of parameter i (bf16 parameters only); undefined before its first update.
  const state_tensor& master(size_t i) const
    requires has_masters
  {
    return slot(i).master;
  }
  // Forgets the masters, so that the next update starts again from the parameters' current values.
  void reset_masters()
    requires has_masters
  {
    for (Slot& s : slots_) s.master = state_tensor();
  }
  const std::vector<std::string>& buffer_names() const { return names_; }

  // The state as named tensors, copied: nothing the caller does with them reaches the optimizer.
  NamedTensors<state_type, D> state() const {
    NamedTensors<state_type, D> out = state_view();
    for (auto& entry : out) entry.second = entry.second.clone_nograd();
    return out;
  }
  // The same names with the optimizer's own buffers, not copies (the step counts are new tensors):
  // what a checkpoint writer reads right away, which a copy of every buffer would double.
  NamedTensors<state_type, D> state_view() const {
    NamedTensors<state_type, D> out;
    out.emplace_back("step", step_tensor(steps_, "step"));
    for (size_t i = 0; i < slots_.size(); ++i) {
      const Slot& s = slots_[i];
      if (s.step == 0 && !has_buffers(s)) continue;
      const std::string prefix = std::to_string(i) + ".";
      out.emplace_back(prefix + "step", step_tensor(s.step, prefix + "step"));
      for (size_t b = 0; b < names_.size(); ++b)
        if (s.buffers[b].defined()) out.emplace_back(prefix + names_[b], s.buffers[b]);
      if (s.master.defined()) out.emplace_back(prefix + "master", s.master);
    }
    return out;
  }

  // Replaces the whole state with `state` (entries absent from it start fresh). The tensors are
  // copied, so the caller's tensors never alias the optimizer's buffers. Every name must be one
  // this optimizer writes, with the owning parameter's shape: a state saved by a different
  // optimizer, or with other options (e.g. RMSprop centered vs not), is rejected by name.
  void load_state(const NamedTensors<state_type, D>& state) { load_state_from(state, /*adopt=*/false); }
  // load_state keeping the given tensors themselves as the buffers (contiguous ones without a
  // gradient; others are copied): for a caller that made them for this and gives them up, such as
  // the checkpoint reader (a ViT-B/16's Adam state is 1.9 GB, which a copy would double). A name of
  // its own, so that a temporary such as another optimizer's state_view() is never adopted by
  // accident (the two would then share buffers).
  void adopt_state(NamedTensors<state_type, D>&& state) { load_state_from(state, /*adopt=*/true); }

 private:
  void load_state_from(const NamedTensors<state_type, D>& state, bool adopt) {
    const auto take = [adopt](const state_tensor& t) {
      return adopt && t.is_contiguous() && !t.requires_grad() ? t : t.clone_nograd();
    };
    std::vector<Slot> fresh(params_.size(), Slot{0, std::vector<state_tensor>(names_.size()), {}});
    std::vector<bool> step_given(params_.size(), false);
    int64_t steps = 0;
    for (const auto& [name, t] : state) {
      VTS_CHECK(t.defined(), "load_state: entry '", name, "' is an undefined tensor");
      if (name == "step") {
        steps = read_step(t, name);
        continue;
      }
      const size_t dot = name.find('.');
      size_t index = 0;
      const char* first = name.data();
      const auto parsed = std::from_chars(first, first + (dot == std::string::npos ? 0 : dot), index);
      VTS_CHECK(dot != std::string::npos && parsed.ec == std::errc() && parsed.ptr == first + dot,
                "load_state: entry '", name, "' is not 'step' nor '<parameter index>.<buffer>'");
      VTS_CHECK(index < params_.size(), "load_state: entry '", name, "' refers to parameter ", index, " but the ",
                "optimizer has ", params_.size(), " parameters");
      const std::string_view field = std::string_view(name).substr(dot + 1);
      if (field == "step") {
        fresh[index].step = read_step(t, name);
        step_given[index] = true;
        continue;
      }
      if (has_masters && field == "master") {
        VTS_CHECK_SHAPE(t.shape() == params_[index].shape(), "load_state: entry '", name, "' has shape ",
                        t.shape().str(), " but parameter ", index, " has shape ", params_[index].shape().str());
        fresh[index].master = take(t);
        continue;
      }
      const size_t b = find_buffer(field);
      VTS_CHECK(b < names_.size(), "load_state: entry '", name, "' names buffer '", field,
                "', which this optimizer does not keep (it keeps: ", joined_names(), ")");
      VTS_CHECK_SHAPE(t.shape() == params_[index].shape(), "load_state: entry '", name, "' has shape ",
                      t.shape().str(), " but parameter ", index, " has shape ", params_[index].shape().str());
      fresh[index].buffers[b] = take(t);
    }
    for (size_t i = 0; i < fresh.size(); ++i)
      VTS_CHECK(!has_buffers(fresh[i]) || step_given[i], "load_state: parameter ", i,
                " has buffers but no '", i, ".step' entry");
    slots_ = std::move(fresh);
    steps_ = steps;
  }

 protected:
  struct Slot {
    int64_t step = 0;
    std::vector<state_tensor> buffers;  // indexed like names_
    state_tensor master;                // bf16 parameters only
  };

  Optimizer(ParamList<T, D> params, double lr, std::vector<std::string> buffer_names)
      : params_(std::move(params)), names_(std::move(buffer_names)) {
    set_lr(lr);
    slots_.assign(params_.size(), Slot{0, std::vector<state_tensor>(names_.size()), {}});
  }

  // Whether D applies many parameters' updates per launch.
  template <class F>
  static constexpr bool batches_updates = requires(const UpdateTarget<F>* targets) {
    optim_update_many(D{}, targets, size_t{});
  };

  // The updates of one step(): `UpdateBatch updates(*this);` before the loop over parameters,
  // `updates.launch();` after it. Updates collected by a step() that throws are dropped with it.
  // Without an UpdateBatch (an optimizer written elsewhere), apply_update launches at once.
  class UpdateBatch {
   public:
    explicit UpdateBatch(Optimizer& o) : o_(o) {
      o_.pending_.queue.reset();
      o_.pending_.collecting = true;
    }
    ~UpdateBatch() {
      o_.pending_.queue.reset();
      o_.pending_.collecting = false;
    }
    UpdateBatch(const UpdateBatch&) = delete;
    UpdateBatch& operator=(const UpdateBatch&) = delete;
    void launch() {
      if (o_.pending_.queue) o_.pending_.queue->launch();
      o_.pending_.queue.reset();
    }

   private:
    Optimizer& o_;
  };

  // Applies the update rule f to parameter i (p, with gradient g) and its state buffers: in place
  // for fp32/fp64 parameters; through the fp32 master, rounded back into p, for bf16 ones. On a
  // device that batches updates, inside an UpdateBatch, it is queued for UpdateBatch::launch (the
  // tensors outlive it: parameters, gradients and state belong to the optimizer until step() returns).
  template <class F, class... Buffers>
  void apply_update(size_t i, const F& f, const tensor_type& p, const tensor_type& g, Buffers*... buffers) {
    p.bump_version();  // a graph still holding p (a backward not yet run) must not see the new values
    // The state moves with p: a checkpoint writer that took it before this step refuses it then.
    for (const state_tensor& b : slots_[i].buffers)
      if (b.defined()) b.bump_version();
    state_type* master = nullptr;
    if constexpr (has_masters) {
      state_tensor& m = slots_[i].master;
      if (!m.defined()) m = cast<state_type>(p.detach());
      m.bump_version();
      master = m.data();
    }
    if constexpr (batches_updates<F>) {
      if (pending_.collecting) {
        enqueue(f, p, g, master, buffers...);
        return;
      }
    }
    if constexpr (has_masters) {
      optim_update_master(D{}, p.numel(), f, master, g.data(), p.data(), buffers...);
    } else {
      optim_update(D{}, p.numel(), f, p.data(), g.data(), buffers...);
    }
  }

  template <class F, class... Buffers>
  void enqueue(const F& f, const tensor_type& p, const tensor_type& g, state_type* master, Buffers*... buffers) {
    auto* queue = dynamic_cast<PendingOf<F>*>(pending_.queue.get());
    if (!queue) {
      if (pending_.queue) pending_.queue->launch();  // a different rule's updates go first, in order
      pending_.queue = std::make_unique<PendingOf<F>>();
      queue = static_cast<PendingOf<F>*>(pending_.queue.get());
    }
    UpdateTarget<F> t{f, p.numel(), nullptr, g.data(), {static_cast<float*>(buffers)...}, nullptr};
    if constexpr (has_masters) {
      t.param = master;
      t.copy = p.data();
    } else {
      t.param = p.data();
    }
    queue->targets.push_back(t);
  }

  // Buffer b of parameter i, created filled with zeros on first use. `created` tells the caller
  // whether this call made it (SGD's momentum buffer is initialised from the gradient instead).
  state_tensor& ensure_buffer(size_t i, size_t b, bool* created = nullptr) {
    state_tensor& buf = slots_[i].buffers[b];
    if (created) *created = !buf.defined();
    if (!buf.defined()) buf = state_tensor::zeros(params_[i].shape());
    return buf;
  }
  Slot& slot(size_t i) {
    VTS_CHECK(i < slots_.size(), "optimizer: parameter index ", i, " out of range (", slots_.size(), " parameters)");
    return slots_[i];
  }
  const Slot& slot(size_t i) const {
    VTS_CHECK(i < slots_.size(), "optimizer: parameter index ", i, " out of range (", slots_.size(), " parameters)");
    return slots_[i];
  }

  struct Pending {
    virtual ~Pending() = default;
    virtual void launch() = 0;
  };
  template <class F>
  struct PendingOf : Pending {
    std::vector<UpdateTarget<F>> targets;
    void launch() override {
      optim_update_many(D{}, targets.data(), targets.size());
      targets.clear();
    }
  };

  // The updates of the running step() not yet launched; nothing outside step(), so a copy of the
  // optimizer starts with none.
  struct PendingSlot {
    std::unique_ptr<Pending> queue;
    bool collecting = false;  // inside an UpdateBatch
    PendingSlot() = default;
    PendingSlot(const PendingSlot&) {}  // NOLINT: deliberately copies nothing
    PendingSlot(PendingSlot&&) noexcept = default;
    PendingSlot& operator=(const PendingSlot&) {
      queue.reset();
      return *this;
    }
    PendingSlot& operator=(PendingSlot&&) noexcept = default;
  };

  ParamList<T, D> params_;
  PendingSlot pending_;
  double lr_ = 0.0;
  std::vector<std::string> names_;
  std::vector<Slot> slots_;
  int64_t steps_ = 0;

 private:
  static bool has_buffers(const Slot& s) {
    for (const auto& b : s.buffers)
      if (b.defined()) return true;
    return s.master.defined();
  }
  size_t find_buffer(std::string_view name) const {
    for (size_t b = 0; b < names_.size(); ++b)
      if (names_[b] == name) return b;
    return names_.size();
  }
  size_t buffer_index(std::string_view name) const {
    const size_t b = find_buffer(name);
    VTS_CHECK(b < names_.size(), "optimizer: no buffer named '", name, "' (this optimizer keeps: ", joined_names(),
              ")");
    return b;
  }
  std::string joined_names() const {
    std::string s;
    for (const auto& n : names_) s += (s.empty() ? "" : ", ") + n;
    return s.empty() ? "none" : s;
  }
  // A count stored in state_type must come back exactly; float holds integers exactly only up to 2^24.
  static state_tensor step_tensor(int64_t step, const std::string& name) {
    VTS_CHECK(static_cast<int64_t>(static_cast<state_type>(step)) == step, "optimizer state: count ", step, " for '",
              name, "' is not exactly representable in ", dtype_traits<state_type>::name);
    return state_tensor::scalar(static_cast<state_type>(step));
  }
  static int64_t read_step(const state_tensor& t, const std::string& name) {
    VTS_CHECK_SHAPE(t.numel() == 1, "load_state: entry '", name, "' must hold one value, found shape ",
                    t.shape().str());
    const double v = static_cast<double>(t.to_vector()[0]);
    VTS_CHECK(v >= 0.0 && v == std::floor(v) && v < 9.0e15, "load_state: entry '", name,
              "' must be a non-negative whole number, found ", v);
    return static_cast<int64_t>(v);
  }
};

}  // namespace vts::optim
