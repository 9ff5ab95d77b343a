#pragma once
// Trainer<Network, Loss>: the training loop of the hashing model (hashing-spec §1.1) and the code
// extraction used by evaluation (§4.1), for any backbone/head/loss combination known at compile
// time. The program `vts train` (examples/vts) wraps it with flags, progress and outputs.
//
// Mixed precision: a bf16 network (Tensor<bf16, D>) with an fp32 loss. The network's output is cast
// to fp32 before the loss, whose memory banks, centers and reductions stay fp32; the network's
// parameters are updated through the optimizer's fp32 masters, and a loss that owns parameters
// (GreedyHash's classifier, fp32) gets an optimizer of its own with the same settings.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "vts/data/loader.hpp"
#include "vts/hash/encode.hpp"
#include "vts/hash/heads.hpp"
#include "vts/hash/losses.hpp"
#include "vts/ops/cast.hpp"
#include "vts/optim/optim.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/upload.hpp"
#include "vts/nn/captured.hpp"
#endif

namespace vts::hash {

struct OptimizerOptions {
  std::string name = "adam";  // adam | adamw | rmsprop | sgd
  double lr = 1e-3;
  double weight_decay = 0.0;
  double momentum = 0.9;       // sgd
  std::string schedule = "constant";  // constant | step | cosine
  int64_t step_size = 30;      // step schedule, in epochs
  double gamma = 0.1;          // step schedule
  double warmup_epochs = 0;    // cosine schedule
  double final_lr = 0.0;       // cosine schedule
};

template <class T, class D>
using AnyOptimizer = std::variant<optim::Adam<T, D>, optim::AdamW<T, D>, optim::Rmsprop<T, D>, optim::Sgd<T, D>>;

template <class T, class D>
AnyOptimizer<T, D> make_optimizer(const OptimizerOptions& o, std::vector<Tensor<T, D>> params) {
  if (o.name == "adam") return optim::Adam<T, D>(params, {.lr = o.lr, .weight_decay = o.weight_decay});
  if (o.name == "adamw") return optim::AdamW<T, D>(params, {.lr = o.lr, .weight_decay = o.weight_decay});
  if (o.name == "rmsprop") return optim::Rmsprop<T, D>(params, {.lr = o.lr, .weight_decay = o.weight_decay});
  if (o.name == "sgd")
    return optim::Sgd<T, D>(params, {.lr = o.lr, .momentum = o.momentum, .weight_decay = o.weight_decay});
  throw Error("unknown optimizer '" + o.name + "'; expected adam, adamw, rmsprop or sgd");
}

// The learning rate at step `step` of `steps_per_epoch`-long epochs.
inline double scheduled_lr(const OptimizerOptions& o, int64_t step, int64_t steps_per_epoch, int64_t epochs) {
  if (o.schedule == "constant") return o.lr;
  if (o.schedule == "step") return optim::StepLR(o.lr, o.step_size, o.gamma)(step / steps_per_epoch);
  if (o.schedule == "cosine") {
    const auto warmup = static_cast<int64_t>(o.warmup_epochs * static_cast<double>(steps_per_epoch));
    return optim::WarmupCosineLR(o.lr, warmup, std::max(warmup, epochs * steps_per_epoch), o.final_lr)(step);
  }
  throw Error("unknown learning-rate schedule '" + o.schedule + "'; expected constant, step or cosine");
}

struct StepReport {
  int64_t epoch, step, steps_in_epoch;
  double loss, images_per_s, lr;
};

// Where a training epoch stands: its first `steps` batches trained and the sum of their losses (the
// epoch's mean is that sum over the batches, added in batch order). A checkpoint that keeps it lets
// an epoch stopped part way (train_epoch_until) go on with the same arithmetic as one never stopped.
struct EpochProgress {
  int64_t steps = 0;
  double loss_sum = 0;
  // The mean loss of the steps so far (0 without steps; the trainers refuse an epoch without any).
  double mean_loss() const { return steps ? loss_sum / static_cast<double>(steps) : 0.0; }
};

namespace detail {
// The step reports of one epoch. A step's loss is read (a wait for the device) when the step is done
// with: on the CPU at once; on another device one step late, after the next step is queued, so the
// device always has work and the host never waits for a step it could be queueing behind.
// Throughput is then measured from one finished step to the next.
template <class LossTensor>
class EpochReports {
 public:
  // `done`: the steps of the epoch before these reports' first (a resumed epoch).
  EpochReports(int64_t epoch, int64_t steps, const char* what, const char* remedy,
               const std::function<void(const StepReport&)>& report, EpochProgress done = {})
      : epoch_(epoch), steps_(steps), what_(what), remedy_(remedy), report_(report), sum_(done.loss_sum),
        n_(done.steps) {}
  // A step queued: its loss, batch number and size, rate, and when it started.
  void step_done(const LossTensor& loss, int64_t number, int64_t size, double lr,
                 std::chrono::steady_clock::time_point start) {
    Done d{loss.detach(), number, size, lr, start};
    if constexpr (kDefer) {
      if (pending_) finish(*pending_);
      pending_ = std::move(d);
    } else {
      finish(d);
    }
  }
  // Reads the last step's loss; returns the epoch's mean.
  double mean() { return progress().mean_loss(); }
  // Reads the last step's loss; the epoch's steps so far and their losses' sum.
  EpochProgress progress() {
    if (pending_) finish(*pending_);
    pending_.reset();
    return {n_, sum_};
  }

 private:
  static constexpr bool kDefer = !is_cpu_v<typename LossTensor::device_type>;
  struct Done {
    LossTensor loss;
    int64_t number, size;
    double lr;
    std::chrono::steady_clock::time_point start;
  };
  void finish(const Done& d) {
    const double value = static_cast<double>(d.loss.item());
    VTS_CHECK(std::isfinite(value), what_, " diverged: loss is ", value, " at epoch ", epoch_, " step ", d.number,
              "; ", remedy_);
    sum_ += value;
    ++n_;
    const auto now = std::chrono::steady_clock::now();
    const double secs = std::chrono::duration<double>(now - (kDefer ? last_finish_ : d.start)).count();
    last_finish_ = now;
    if (report_) report_({epoch_, d.number, steps_, value, static_cast<double>(d.size) / secs, d.lr});
  }
  int64_t epoch_, steps_;
  const char *what_, *remedy_;
  const std::function<void(const StepReport&)>& report_;
  std::optional<Done> pending_;
  std::chrono::steady_clock::time_point last_finish_ = std::chrono::steady_clock::now();
  double sum_ = 0;
  int64_t n_ = 0;
};
// An epoch of no batch would train nothing and report a mean loss of 0, which reads as a perfect
// epoch: an empty dataset, or drop_last with a batch larger than the dataset.
inline void check_has_batches(const data::Loader& loader, const char* what) {
  VTS_CHECK(loader.num_batches() > 0, what, ": the loader yields no batch (", loader.dataset().size(),
            " items, batch size ", loader.options().batch_size, loader.options().drop_last ? ", drop_last" : "",
            "), so an epoch would train nothing");
}
// Where a resumed epoch stands must lie inside it: 0 to steps - 1 batches done, a finite loss sum.
inline void check_epoch_progress(const EpochProgress& progress, int64_t steps, const char* what) {
  VTS_CHECK(progress.steps >= 0 && progress.steps < steps && std::isfinite(progress.loss_sum), what,
            ": expected an epoch's progress of 0 to ", steps - 1, " batches (the loader has ", steps,
            ") and a finite loss sum, found ", progress.steps, " batches and a sum of ", progress.loss_sum);
}
}  // namespace detail

template <class Network, class Loss>
class Trainer {
 public:
  using tensor_type = typename Network::tensor_type;
  using T = typename tensor_type::value_type;
  using D = typename tensor_type::device_type;
  using loss_tensor = typename Loss::tensor_type;
  using LT = typename loss_tensor::value_type;
  static_assert(std::is_same_v<typename loss_tensor::device_type, D>, "Trainer: the loss and the network must share a device");
  static_assert(std::is_same_v<LT, T> || std::is_same_v<LT, acc_t<T>>,
                "Trainer: the loss computes in the network's element type or, for bf16, in fp32");
  // A bf16 network with an fp32 loss.
  static constexpr bool mixed_precision = !std::is_same_v<LT, T>;

  Trainer(Network net, Loss loss, OptimizerOptions opt, uint64_t seed)
      : net_(std::move(net)), loss_(std::move(loss)), opt_options_(std::move(opt)), dropout_rng_(seed ^ 0xD0D0ull) {
    std::vector<tensor_type> params = nn::parameters(net_);
    if constexpr (mixed_precision) {
      const std::vector<loss_tensor> loss_params = loss_.parameters();
      if (!loss_params.empty())
        loss_optimizer_ = std::make_unique<AnyOptimizer<LT, D>>(make_optimizer<LT, D>(opt_options_, loss_params));
    } else {
      for (auto& p : loss_.parameters()) params.push_back(p);
    }
    optimizer_ = std::make_unique<AnyOptimizer<T, D>>(make_optimizer<T, D>(opt_options_, params));
  }

  // Keeps an exponential moving average of the weights (decay per step, warmed up as
  // min(decay, (1 + t)/(10 + t))); encode() then uses the averaged weights. 0 turns it off.
  void set_ema(double decay) {
    VTS_CHECK(decay >= 0.0 && decay < 1.0, "EMA decay must be in [0, 1), got ", decay);
    // 0.999·e + 0.001·p moves e by less than a bf16 ulp for most weights: the average would freeze.
    VTS_CHECK(decay == 0.0 || !mixed_precision, "EMA of the weights needs fp32 weights; it is not available with ",
              "bf16 training (--precision bf16)");
    ema_decay_ = decay;
    ema_.clear();
    if (decay > 0.0)
      for (auto& p : nn::parameters(net_)) ema_.push_back(p.clone_nograd());
  }
  // Mixup (Zhang et al., 2018): every training batch becomes λ·batch + (1 − λ)·(the same batch in a
  // random order), images and label rows alike, with λ ~ Beta(α, α) drawn per batch. Only losses
  // that read soft label rows take it (CSQ: the target is the label-weighted mean of the centers,
  // so an image that is part shirt, part pullover is pulled between their codes). Draws come from
  // the dropout generator, which checkpoints keep, so --resume stays exact. 0 turns it off.
  void set_mixup(double alpha) {
    VTS_CHECK(alpha >= 0.0, "mixup alpha must be >= 0, got ", alpha);
    constexpr bool soft_labels = [] {
      if constexpr (requires { Loss::soft_labels; }) return Loss::soft_labels;
      else return false;
    }();
    VTS_CHECK(alpha == 0.0 || soft_labels, "mixup needs a loss that accepts soft label rows (csq); ",
              Loss::name, " does not");
    mixup_alpha_ = alpha;
  }
  // The averaged weights as a layer (visit under the network's own names) and the step count
  // that sets the warm-up of the decay: what a checkpoint must keep for --resume to be exact.
  bool ema_enabled() const { return !ema_.empty(); }
  int64_t& ema_steps() { return ema_steps_; }
  struct EmaWeights {
    Trainer* trainer;
    template <class F>
    void visit(const std::string& prefix, F&& f) {
      size_t i = 0;
      trainer->net_.visit(prefix, [&](const std::string& name, tensor_type&) { f(name, trainer->ema_.at(i++)); });
    }
  };
  EmaWeights ema_weights() { return EmaWeights{this}; }

  // CUDA: run the network's forward and backward passes as replays of captured CUDA graphs
  // (nn/captured.hpp) — the loss and the optimizer stay op by op between them — with the same
  // results, bit for bit. Batches of the first full size take the graphs from their second step on
  // (the first runs op by op and sets up the libraries); batches of another size (an epoch's last,
  // partial one) run op by op. Not with a loss that has parameters of its own (GreedyHash), whose
  // gradients the graphs would not carry. When the capture fails (the graphs' memory does not fit,
  // a layer waits for the device) the trainer turns the graphs off and trains on op by op; so it does
  // when encode() runs out of memory while the graphs hold theirs, and encodes again without them.
  // cuda_graphs_off_reason() says why.
  void set_cuda_graphs(bool on) {
    VTS_CHECK(!on || (std::is_same_v<D, Cuda>), "CUDA graphs need the CUDA device (--device cuda)");
    VTS_CHECK(!on || loss_.parameters().empty(), "CUDA graphs: the ", Loss::name,
              " loss has parameters of its own, which the captured step does not train; run it without graphs");
    cuda_graphs_ = on;
    cuda_graphs_off_reason_.clear();
#if defined(VTS_WITH_CUDA)
    if constexpr (std::is_same_v<D, Cuda>)
      if (!on) captured_.reset();
#endif
  }
  bool cuda_graphs() const { return cuda_graphs_; }
  // Why the graphs were turned off (a failed capture; an evaluation that ran out of memory while
  // they held theirs), or empty.
  const std::string& cuda_graphs_off_reason() const { return cuda_graphs_off_reason_; }
  // Steps so far whose forward and backward were graph replays.
  int64_t graph_steps() const { return graph_steps_; }

  // Mirror each image horizontally as well and average the two outputs when encoding.
  void set_flip_averaging(bool on) { flip_average_ = on; }

  // Runs f with the weights evaluation uses (the averaged ones when EMA is on) in the network.
  template <class F>
  void with_eval_weights(F&& f) {
    swap_ema();
    try {
      f();
    } catch (...) {
      swap_ema();
      throw;
    }
    swap_ema();
  }

  Network& network() { return net_; }
  Loss& loss() { return loss_; }
  AnyOptimizer<T, D>& optimizer() { return *optimizer_; }
  // The optimizer of the loss's own parameters when they cannot share the network's (a bf16 network
  // with an fp32 loss that has parameters); null otherwise.
  AnyOptimizer<LT, D>* loss_optimizer() { return loss_optimizer_.get(); }
  Generator& dropout_rng() { return dropout_rng_; }

  // One epoch over the loader (already configured to shuffle); returns the mean batch loss.
  double train_epoch(data::Loader& loader, int64_t epoch, int64_t total_epochs,
                     const std::function<void(const StepReport&)>& report = {}) {
    EpochProgress progress;
    train_epoch_until(loader, epoch, total_epochs, progress, {}, report);
    return progress.mean_loss();
  }

  // Epoch `epoch` from where `progress` says it stands (its batches before progress.steps trained
  // already) until it ends or `stop` returns true; `stop` is asked before each batch. Returns
  // whether the epoch ended (its end-of-epoch work done); `progress` then counts all its batches,
  // and otherwise those trained so far. A run stopped this way and continued from the same state
  // (io::add_training_state's, and `progress`) ends with the bits of one never stopped.
  bool train_epoch_until(data::Loader& loader, int64_t epoch, int64_t total_epochs, EpochProgress& progress,
                         const std::function<bool()>& stop, const std::function<void(const StepReport&)>& report = {}) {
    detail::check_has_batches(loader, "train_epoch");
    const int64_t steps = loader.num_batches();
    detail::check_epoch_progress(progress, steps, "train_epoch_until");
    loader.start_epoch(epoch, progress.steps);
    data::Batch batch;
    nn::Context ctx{true, &dropout_rng_};
    detail::EpochReports<loss_tensor> reports(epoch, steps, "training", "lower the learning rate", report, progress);
    // Not asked once the last batch is done: a stop there would save a position past the epoch's
    // batches, which no resume could take; the epoch ends instead.
    for (int64_t next = progress.steps;; ++next) {
      if (next < steps && stop && stop()) {
        progress = reports.progress();
        return false;
      }
      if (!loader.next(batch)) break;
      const auto t0 = std::chrono::steady_clock::now();
      const double lr = scheduled_lr(opt_options_, epoch * steps + batch.number, steps, total_epochs);
      for_each_optimizer([&](auto& o) { o.set_lr(lr); });
      if (mixup_alpha_ > 0) mix_batch(batch);
      const tensor_type x = upload_images(batch);
      const loss_tensor y = upload_labels(batch);
      loss_tensor l;
      if (!graph_step(x, y, batch, epoch, ctx, l)) {
        const loss_tensor u = cast<LT>(net_.forward(x, ctx));
        l = call_loss(u, y, batch, epoch);
        for_each_optimizer([](auto& o) { o.zero_grad(); });
        l.backward();
      }
      for_each_optimizer([](auto& o) { o.step(); });
      update_ema();
      reports.step_done(l, batch.number, batch.size, lr, t0);
    }
    progress = reports.progress();
    if constexpr (requires(Loss& lo) { lo.end_epoch(); }) loss_.end_epoch();
    return true;
  }

  // Raw outputs u [n, bits] of a whole split in evaluation mode (dropout off), in dataset order,
  // with the averaged weights when EMA is on.
  std::vector<float> encode(std::shared_ptr<const data::Dataset> ds, int64_t batch_size, int workers,
                            const std::function<void(int64_t done, int64_t total)>& progress = {}) {
    std::vector<T> out;
    auto run = [&] {
      with_eval_weights([&] {
        out = hash::encode(net_, ds, {.batch_size = batch_size, .workers = workers, .flip_average = flip_average_},
                           progress);
      });
    };
#if defined(VTS_WITH_CUDA)
    if constexpr (std::is_same_v<D, Cuda>) {
      try {
        run();
      } catch (const cuda::CudaError& e) {
        // The graphs keep their pool (the step's activations) between steps, so an evaluation that
        // only fits without it would end the run here. Give it back, train on op by op (the same
        // results), and encode again from the start: nothing of the failed attempt is kept.
        if (!e.out_of_memory() || !captured_ || !captured_->captured()) throw;
        turn_graphs_off(std::string("the evaluation ran out of memory beside the graphs' memory: ") + e.what());
        run();
      }
    } else {
      run();
    }
#else
    run();
#endif
    if constexpr (std::is_same_v<T, float>) {
      return out;
    } else {
      std::vector<float> f(out.size());
      for (size_t i = 0; i < out.size(); ++i) f[i] = static_cast<float>(out[i]);
      return f;
    }
  }

  static tensor_type images_of(const data::Batch& b) { return batch_images<tensor_type>(b); }
  // images_of for the training loop: on CUDA through pinned staging buffers and an asynchronous
  // copy (backend/cuda/upload.hpp), so the host does not wait for the batch to reach the device.
  tensor_type upload_images(const data::Batch& b) {
#if defined(VTS_WITH_CUDA)
    if constexpr (std::is_same_v<D, Cuda>)
      return upload_.template operator()<T>(b.images.data(), Shape{b.size, b.spec.channels, b.spec.height, b.spec.width});
#endif
    return images_of(b);
  }
  static loss_tensor labels_of(const data::Batch& b) {
    std::vector<LT> v(b.labels.begin(), b.labels.end());
    return loss_tensor::from_vector(v, Shape{b.size, b.num_classes});
  }
  // labels_of for the training loop: on CUDA staged like the images.
  loss_tensor upload_labels(const data::Batch& b) {
#if defined(VTS_WITH_CUDA)
    if constexpr (std::is_same_v<D, Cuda>)
      return labels_upload_.template operator()<LT>(b.labels.data(), Shape{b.size, b.num_classes});
#endif
    return labels_of(b);
  }

 private:

  // The loss, given the batch's labels on the host too where it takes them (CSQ, DPN and
  // GreedyHash turn labels into targets on the host; without them they read y back from the device).
  loss_tensor call_loss(const loss_tensor& u, const loss_tensor& y, const data::Batch& b, int64_t epoch) {
    if constexpr (requires { loss_(u, y, b.indices, 0, std::span<const float>{}); })
      return loss_(u, y, b.indices, static_cast<int>(epoch), std::span<const float>(b.labels));
    else
      return loss_(u, y, b.indices, static_cast<int>(epoch));
  }

  // The forward, loss and backward of one step through the captured graphs, when they take this
  // batch (see set_cuda_graphs); false: the caller runs the step op by op.
  bool graph_step([[maybe_unused]] const tensor_type& x, [[maybe_unused]] const loss_tensor& y,
                  [[maybe_unused]] const data::Batch& b, [[maybe_unused]] int64_t epoch,
                  [[maybe_unused]] nn::Context& ctx, [[maybe_unused]] loss_tensor& l) {
#if defined(VTS_WITH_CUDA)
    if constexpr (std::is_same_v<D, Cuda>) {
      if (!cuda_graphs_) return false;
      if (!captured_) captured_.reset(new nn::CapturedNetwork<Network, loss_tensor>(net_));
      if (!captured_->use_for(x)) return false;
      // The capture runs nothing on the device, so when it fails (out of memory for the graphs'
      // own pool, a layer that waits for the device) this step can still run op by op, from the
      // same state: the generator is where it stood, and the op-by-op step zeroes the gradients.
      // A failure in a replay is an ordinary error.
      const bool capturing = !captured_->captured();
      loss_tensor u;
      try {
        u = captured_->forward(x, ctx);
      } catch (const std::exception& e) {
        if (!capturing) throw;
        turn_graphs_off(std::string("the step's capture failed: ") + e.what());
        return false;
      }
      l = call_loss(u, y, b, epoch);
      for_each_optimizer([](auto& o) { o.zero_grad(); });
      l.backward();
      captured_->backward(u);
      ++graph_steps_;
      return true;
    }
#endif
    return false;
  }

#if defined(VTS_WITH_CUDA)
  // Drops the graphs and their memory; training goes on op by op.
  void turn_graphs_off(std::string reason) {
    captured_.reset();
    cuda_graphs_ = false;
    cuda_graphs_off_reason_ = std::move(reason);
  }
#endif

  template <class F>
  void for_each_optimizer(F&& f) {
    std::visit(f, *optimizer_);
    if (loss_optimizer_) std::visit(f, *loss_optimizer_);
  }
  void update_ema() {
    if constexpr (mixed_precision) {
      return;  // set_ema refuses bf16 weights
    } else {
      if (ema_.empty()) return;
      ++ema_steps_;
      const double t = static_cast<double>(ema_steps_);
      const T decay = static_cast<T>(std::min(ema_decay_, (1.0 + t) / (10.0 + t)));
      NoGradGuard no_grad;
      auto params = nn::parameters(net_);
      for (size_t i = 0; i < params.size(); ++i) {
        if constexpr (is_cpu_v<D>) {
          T* e = ema_[i].data();
          const T* p = params[i].data();
          cpu::parallel_for(0, params[i].numel(), 1 << 15, [&](int64_t b, int64_t end) {
#pragma omp simd
            for (int64_t k = b; k < end; ++k) e[k] = decay * e[k] + (T(1) - decay) * p[k];
          });
          ema_[i].bump_version();  // as copy_ does on the device (a checkpoint writer holding it sees the step)
        } else {  // device memory: the same update from maps the backend has kernels for
          ema_[i].copy_(map(map(ema_[i], fn::MulScalar<T>{decay}), map(params[i], fn::MulScalar<T>{T(1) - decay}),
                            fn::Add{}));
        }
      }
    }
  }
  // Exchanges the live weights with the averaged ones (a second call restores them).
  void swap_ema() {
    if constexpr (mixed_precision) {
      return;  // set_ema refuses bf16 weights
    } else {
      if (ema_.empty()) return;
      NoGradGuard no_grad;
      auto params = nn::parameters(net_);
      for (size_t i = 0; i < params.size(); ++i) {
        if constexpr (is_cpu_v<D>) {
          T* e = ema_[i].data();
          T* p = params[i].data();
          std::swap_ranges(p, p + params[i].numel(), e);
          params[i].bump_version();  // as copy_ does on the device: new values in both
          ema_[i].bump_version();
        } else {
          const tensor_type live = params[i].clone_nograd();
          params[i].copy_(ema_[i]);
          ema_[i].copy_(live);
        }
      }
    }
  }
  // A Beta(α, α) draw as X / (X + Y) with X, Y ~ Gamma(α) (Marsaglia and Tsang's method; for
  // α < 1, Gamma(α) = Gamma(α + 1)·U^(1/α)).
  double gamma_draw(double alpha) {
    if (alpha < 1.0) return gamma_draw(alpha + 1.0) * std::pow(1.0 - dropout_rng_.next_double(), 1.0 / alpha);
    const double d = alpha - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x, v;
      do {
        x = dropout_rng_.next_normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = 1.0 - dropout_rng_.next_double();  // (0, 1]
      if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
    }
  }
  void mix_batch(data::Batch& b) {
    const double ga = gamma_draw(mixup_alpha_), gb = gamma_draw(mixup_alpha_);
    // For a very small α both draws can underflow to 0; then the batch stays as it is.
    const float lam = ga + gb > 0.0 ? static_cast<float>(ga / (ga + gb)) : 1.0f;
    std::vector<int64_t> order(static_cast<size_t>(b.size));
    for (int64_t i = 0; i < b.size; ++i) order[static_cast<size_t>(i)] = i;
    for (int64_t i = b.size - 1; i > 0; --i)  // Fisher–Yates
      std::swap(order[static_cast<size_t>(i)], order[dropout_rng_.next_below(static_cast<uint64_t>(i + 1))]);
    auto mix = [&](std::vector<float>& rows, int64_t width) {
      const std::vector<float> src = rows;
      for (int64_t i = 0; i < b.size; ++i) {
        const float* other = src.data() + order[static_cast<size_t>(i)] * width;
        float* r = rows.data() + i * width;
        for (int64_t k = 0; k < width; ++k) r[k] = lam * r[k] + (1.0f - lam) * other[k];
      }
    };
    mix(b.images, b.spec.numel());
    mix(b.labels, b.num_classes);
  }

  Network net_;
  Loss loss_;
  OptimizerOptions opt_options_;
  Generator dropout_rng_;
  std::unique_ptr<AnyOptimizer<T, D>> optimizer_;
  std::unique_ptr<AnyOptimizer<LT, D>> loss_optimizer_;
  double ema_decay_ = 0.0;
  int64_t ema_steps_ = 0;
  std::vector<tensor_type> ema_;
  double mixup_alpha_ = 0.0;
  bool flip_average_ = false;
  bool cuda_graphs_ = false;
  std::string cuda_graphs_off_reason_;
  int64_t graph_steps_ = 0;
#if defined(VTS_WITH_CUDA)
  // Only a CUDA trainer has one: a CPU trainer in a CUDA-enabled program must not need a device.
  std::conditional_t<std::is_same_v<D, Cuda>, cuda::StagedUpload, std::monostate> upload_, labels_upload_;
  struct NoCapture {
    void reset() {}
  };
  // The graphs point at this trainer's network: a moved trainer starts without them and captures
  // again (its next full batch op by op, the one after captured).
  template <class P>
  struct EmptiedOnMove : P {
    EmptiedOnMove() = default;
    EmptiedOnMove(EmptiedOnMove&&) noexcept {}
    EmptiedOnMove& operator=(EmptiedOnMove&&) noexcept {
      this->reset();
      return *this;
    }
  };
  EmptiedOnMove<std::conditional_t<std::is_same_v<D, Cuda>, std::unique_ptr<nn::CapturedNetwork<Network, loss_tensor>>,
                                   NoCapture>>
      captured_;
#endif
};

// Optional first stage (paper §2.3): train the backbone as a classifier on the training split with
// cross-entropy on each item's first label, then hand it to the hash stage. The backbone is the
// caller's (trained in place); the classifier head, its optimizer and the dropout generator are
// this object's, and with the position (an EpochProgress) they are all a stopped pretraining needs
// to go on: io::add_pretraining_state saves them. On CUDA it runs as Trainer::train_epoch does:
// batches staged through pinned buffers, targets uploaded without a wait (cross_entropy), and each
// step's loss read one step late, so the host never stops the device's queue.
template <class Backbone>
class ClassifierPretrainer {
 public:
  using tensor_type = typename Backbone::tensor_type;
  using T = typename tensor_type::value_type;
  using D = typename tensor_type::device_type;
  using head_type = ClassifierHead<T, D>;

  // `classes`: the training split's. The head is drawn from a generator of its own (seed ^ 0xC1A55),
  // which then drives dropout: the backbone's and the hash stage's draws do not depend on it.
  ClassifierPretrainer(Backbone& backbone, int classes, const OptimizerOptions& opt, uint64_t seed)
      : backbone_(backbone), classes_(classes), opt_(opt), gen_(seed ^ 0xC1A55ull),
        head_(Backbone::dim, classes, gen_), optimizer_(make_optimizer<T, D>(opt, all_parameters())) {}
  ClassifierPretrainer(const ClassifierPretrainer&) = delete;
  ClassifierPretrainer& operator=(const ClassifierPretrainer&) = delete;

  // Epoch `epoch` of `total_epochs` from where `progress` stands, until it ends or `stop` (asked
  // before each batch but not after the last) returns true; as Trainer::train_epoch_until. A run
  // stopped this way and continued from the same state ends with the bits of one never stopped.
  bool train_epoch_until(data::Loader& loader, int64_t epoch, int64_t total_epochs, EpochProgress& progress,
                         const std::function<bool()>& stop, const std::function<void(const StepReport&)>& report = {}) {
    detail::check_has_batches(loader, "pretrain_classifier");
    VTS_CHECK(loader.dataset().num_classes() == classes_, "pretrain_classifier: the head has ", classes_,
              " classes, the loader's dataset ", loader.dataset().num_classes());
    const int64_t steps = loader.num_batches();
    detail::check_epoch_progress(progress, steps, "pretrain_classifier");
    loader.start_epoch(epoch, progress.steps);
    nn::Context ctx{true, &gen_};
    data::Batch batch;
    detail::EpochReports<Tensor<LT, D>> reports(epoch, steps, "classifier pretraining", "lower --pretrain-lr", report,
                                                progress);
    for (int64_t next = progress.steps;; ++next) {
      if (next < steps && stop && stop()) {
        progress = reports.progress();
        return false;
      }
      if (!loader.next(batch)) break;
      const auto t0 = std::chrono::steady_clock::now();
      const double lr = scheduled_lr(opt_, epoch * steps + batch.number, steps, total_epochs);
      std::visit([&](auto& o) { o.set_lr(lr); }, optimizer_);
      std::vector<int64_t> targets(static_cast<size_t>(batch.size));
      for (int64_t i = 0; i < batch.size; ++i)
        targets[static_cast<size_t>(i)] = first_argmax(batch.labels.data() + i * classes_, classes_);
      const tensor_type x = images(batch);
      const Tensor<LT, D> l = cross_entropy(cast<LT>(head_.forward(backbone_.forward(x, ctx))), targets);
      std::visit([](auto& o) { o.zero_grad(); }, optimizer_);
      l.backward();
      std::visit([](auto& o) { o.step(); }, optimizer_);
      reports.step_done(l, batch.number, batch.size, lr, t0);
    }
    progress = reports.progress();
    return true;
  }

  // What a checkpoint of the pretraining holds (io::add_pretraining_state).
  Backbone& backbone() { return backbone_; }
  head_type& classifier() { return head_; }
  AnyOptimizer<T, D>& optimizer() { return optimizer_; }
  Generator& dropout_rng() { return gen_; }

 private:
  using LT = acc_t<T>;  // the loss in fp32 also for a bf16 backbone

  std::vector<tensor_type> all_parameters() {
    std::vector<tensor_type> params = nn::parameters(backbone_);
    for (auto& p : nn::parameters(head_)) params.push_back(p);
    return params;
  }
  tensor_type images(const data::Batch& b) {
    const Shape shape{b.size, b.spec.channels, b.spec.height, b.spec.width};
#if defined(VTS_WITH_CUDA)
    if constexpr (std::is_same_v<D, Cuda>) return upload_.template operator()<T>(b.images.data(), shape);
#endif
    return tensor_type::from_vector(std::vector<T>(b.images.begin(), b.images.end()), shape);
  }

  Backbone& backbone_;
  int classes_;
  OptimizerOptions opt_;
  Generator gen_;  // before head_: the head is drawn from it
  head_type head_;
  AnyOptimizer<T, D> optimizer_;
#if defined(VTS_WITH_CUDA)
  std::conditional_t<std::is_same_v<D, Cuda>, cuda::StagedUpload, std::monostate> upload_;
#endif
};

// The whole pretraining in one call: `epochs` epochs of a ClassifierPretrainer. Returns the last
// epoch's mean loss.
template <class Backbone>
double pretrain_classifier(Backbone& backbone, data::Loader& loader, int64_t epochs, const OptimizerOptions& opt,
                           uint64_t seed, const std::function<void(const StepReport&)>& report = {}) {
  ClassifierPretrainer<Backbone> pretrainer(backbone, loader.dataset().num_classes(), opt, seed);
  double last = 0;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    EpochProgress progress;
    pretrainer.train_epoch_until(loader, epoch, epochs, progress, {}, report);
    last = progress.mean_loss();
  }
  return last;
}

}  // namespace vts::hash
