#pragma once
// The six hashing losses of hashing-spec §2, as policy types for the trainer.
//
// Every loss is called as loss(u, labels, indices, epoch) with u [B, K] the raw network outputs,
// labels [B, C] multi-hot (constants), indices the batch items' positions in the training set
// (for memory banks) and the 0-based epoch. It returns a scalar tensor. Memory banks are written
// before the loss is computed and are constants in backprop. `state(f)` visits the tensors a
// checkpoint must keep (banks, centers or targets with their tie bits, classifier) and keeps what
// f leaves in them, written in place or replaced, so the same visit saves and restores;
// `parameters()` lists the trainable tensors a loss owns (GreedyHash's classifier).
//
// Defaults are the corrected semantics of DeepHash-pytorch HEAD. `reference_compat = true` gives
// the behaviour of the VTS paper's own code where it differs (spec §7.3): DSH's zero-gradient
// quantization term, HashNet's memory-bank loss with the scale fixed at 1, and GreedyHash's
// classifier frozen at its random init (and no imagenet α override).
//
// The random parts (CSQ rows beyond 2K, DPN targets, the multi-label tie bits, GreedyHash's W)
// can be replaced with known values: Csq::set_centers, Dpn::set_targets, set_tie_bits and
// GreedyHash::set_classifier (used by the golden tests to inject PyTorch's draws).
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "vts/hash/centers.hpp"
#include "vts/nn/init.hpp"
#include "vts/ops/elementwise.hpp"
#include "vts/ops/indexing.hpp"
#include "vts/ops/matmul.hpp"
#include "vts/ops/softmax.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/upload.hpp"
#endif

namespace vts::hash::loss {

struct Config {
  int64_t bits = 64;
  int64_t classes = 10;
  int64_t train_size = 0;      // N, rows of the memory banks
  bool multi_label = false;    // CSQ/DPN label→center rule (nuswide_21, nuswide_21_m, coco)
  bool reference_compat = false;
  std::string dataset;         // informational; GreedyHash's imagenet α
};

namespace detail {
// 1 where x > 0, else 0 (similarity from label products). A named functor, not a lambda, so the
// map also runs on CUDA.
template <class T, class D>
Tensor<T, D> positive(const Tensor<T, D>& x) {
  return map(x, fn::GreaterScalar<T>{T(0)});
}

// The memory bank of DSH, HashNet (compat), IDHN and DPN: the latest output U and label row Y of
// every training image, written by dataset index; zero rows are images not seen yet (and count as
// dissimilar, spec §7). Checkpoints keep it as the loss state "U" and "Y".
template <class T, class D>
struct MemoryBank {
  Tensor<T, D> U, Y;
  MemoryBank() = default;
  MemoryBank(int64_t items, int64_t bits, int64_t classes)
      : U(Tensor<T, D>::zeros(Shape{items, bits})), Y(Tensor<T, D>::zeros(Shape{items, classes})) {}
  bool enabled() const { return U.defined(); }
  // Stores a batch at its dataset indices; the outputs are detached (the bank is a constant).
  // An index outside the bank almost always means Config::train_size was left at its default 0
  // or set to another split's size, so the message says that rather than index_copy_'s.
  void store(const char* loss, const std::vector<int64_t>& ind, const Tensor<T, D>& outputs,
             const Tensor<T, D>& labels) {
    const int64_t rows = U.size(0);
    for (size_t i = 0; i < ind.size(); ++i)
      VTS_CHECK(ind[i] >= 0 && ind[i] < rows, loss, ": dataset index ", ind[i], " is outside the memory bank of ",
                rows, " rows; set loss::Config::train_size to the size of the training set");
    index_copy_(U, ind, outputs.detach());
    index_copy_(Y, ind, labels);
  }
  template <class F>
  void state(F& f) {
    if (!enabled()) return;
    f("U", U);
    f("Y", Y);
  }
};

template <class T, class D>
void check_batch(const char* loss, const Tensor<T, D>& u, const Tensor<T, D>& y, const std::vector<int64_t>& ind,
                 int64_t K, int64_t C) {
  VTS_CHECK_SHAPE(u.ndim() == 2 && u.size(1) == K, loss, ": outputs must be [", u.ndim() >= 1 ? u.size(0) : 0, ", ", K,
                  "] (batch, bits), found ", u.shape().str());
  VTS_CHECK_SHAPE(y.ndim() == 2 && y.size(0) == u.size(0) && y.size(1) == C, loss, ": labels must be [",
                  u.size(0), ", ", C, "] (batch, classes) for outputs ", u.shape().str(), ", found ", y.shape().str());
  VTS_CHECK_SHAPE(static_cast<int64_t>(ind.size()) == u.size(0), loss, ": ", ind.size(), " indices for a batch of ",
                  u.size(0));
}

template <class T, class D>
Tensor<T, D> tensor_from_rows(const std::vector<float>& values, int64_t rows, int64_t cols) {
  std::vector<T> v(values.begin(), values.end());
  return Tensor<T, D>::from_vector(v, Shape{rows, cols});
}

// The labels of a batch as host values: `host` when the caller has them (the trainer passes its
// batch's, so a CUDA step need not read y back: that read waits for the whole forward pass), else
// read from y.
template <class T, class D>
std::vector<float> host_labels(const Tensor<T, D>& y, std::span<const float> host) {
  if (host.empty()) {
    const std::vector<T> v = y.to_vector();
    return std::vector<float>(v.begin(), v.end());
  }
  VTS_CHECK(static_cast<int64_t>(host.size()) == y.numel(), "host labels: ", host.size(), " values for labels of shape ",
            y.shape().str());
  return std::vector<float>(host.begin(), host.end());
}

// Per-batch target rows to the device. On CUDA through pinned buffers and an asynchronous copy
// (backend/cuda/upload.hpp; from_vector would wait for the stream); elsewhere from_vector. Copies
// of a loss share the buffers.
template <class T, class D>
class RowUpload {
 public:
  Tensor<T, D> operator()(const std::vector<float>& values, int64_t rows, int64_t cols) const {
#if defined(VTS_WITH_CUDA)
    if constexpr (std::is_same_v<D, Cuda>) {
      if (!staged_) staged_ = std::make_shared<cuda::StagedUpload>();
      return staged_->template operator()<T>(values.data(), Shape{rows, cols});
    }
#endif
    return tensor_from_rows<T, D>(values, rows, cols);
  }

 private:
#if defined(VTS_WITH_CUDA)
  mutable std::shared_ptr<cuda::StagedUpload> staged_;
#endif
};

// state() of an assigner: its centers [C, K] and tie bits [K] live as float rows, not tensors, so
// f sees tensor copies and the assigner adopts what f leaves in them (validated by set_centers /
// set_tie_bits on a copy first, so a rejected value changes nothing).
template <class T, class D, class F>
void visit_assigner(CenterAssigner& assigner, const char* centers_name, F& f) {
  const int64_t C = assigner.classes(), K = assigner.bits();
  std::vector<float> flat;
  for (const auto& row : assigner.centers()) flat.insert(flat.end(), row.begin(), row.end());
  Tensor<T, D> centers = tensor_from_rows<T, D>(flat, C, K);
  Tensor<T, D> ties = Tensor<T, D>::from_vector(std::vector<T>(assigner.tie_bits().begin(), assigner.tie_bits().end()),
                                                Shape{K});
  f(centers_name, centers);
  f("tie_bits", ties);
  VTS_CHECK_SHAPE((centers.shape() == Shape{C, K} && ties.shape() == Shape{K}), centers_name,
                  " and tie_bits must stay [", C, ", ", K, "] and [", K, "], found ", centers.shape().str(),
                  " and ", ties.shape().str());
  const std::vector<T> c = centers.to_vector(), t = ties.to_vector();
  CenterMatrix rows(static_cast<size_t>(C), std::vector<float>(static_cast<size_t>(K)));
  for (int64_t i = 0; i < C * K; ++i) rows[static_cast<size_t>(i / K)][static_cast<size_t>(i % K)] = float(c[static_cast<size_t>(i)]);
  CenterAssigner next = assigner;
  next.set_centers(std::move(rows));
  next.set_tie_bits(std::vector<float>(t.begin(), t.end()));
  assigner = std::move(next);
}
}  // namespace detail

// ---- DSH (§2.1) ---------------------------------------------------------------------------------
template <class T = float, class D = Cpu>
class Dsh {
 public:
  using tensor_type = Tensor<T, D>;
  static constexpr const char* name = "dsh";
  T alpha = T(0.1);

  Dsh(const Config& cfg, Generator&)
      : cfg_(cfg), margin_(T(2 * cfg.bits)), bank_(cfg.train_size, cfg.bits, cfg.classes) {}
  template <class F>
  void hyperparameters(F&& f) {
    f("alpha", alpha);
  }

  tensor_type operator()(const tensor_type& u, const tensor_type& y, const std::vector<int64_t>& ind, int) {
    detail::check_batch(name, u, y, ind, cfg_.bits, cfg_.classes);
    bank_.store(name, ind, u, y);
    const tensor_type similar = detail::positive(matmul(y, bank_.Y.t()));
    const tensor_type bank_sq = sum(bank_.U * bank_.U, {1}).reshape(Shape{1, -1});
    const tensor_type dist = sum(u * u, {1}, true) - T(2) * matmul(u, bank_.U.t()) + bank_sq;
    const tensor_type pair = T(0.5) * similar * dist + T(0.5) * (T(1) - similar) * clamp_min(margin_ - dist, T(0));
    // Reference code: α·mean|1 − sign(u)|, whose gradient is zero.
    const tensor_type quant = cfg_.reference_compat ? abs(T(1) - sign(u)) : abs(T(1) - abs(u));
    return mean(pair) + alpha * mean(quant);
  }
  std::vector<tensor_type> parameters() { return {}; }
  template <class F>
  void state(F&& f) {
    bank_.state(f);
  }

 private:
  Config cfg_;
  T margin_;
  detail::MemoryBank<T, D> bank_;
};

// ---- HashNet (§2.2) ---------------------------------------------------------------------------
template <class T = float, class D = Cpu>
class HashNet {
 public:
  using tensor_type = Tensor<T, D>;
  static constexpr const char* name = "hashnet";
  T alpha = T(0.1);
  int step_continuation = 20;

  HashNet(const Config& cfg, Generator&) : cfg_(cfg) {
    if (cfg.reference_compat) bank_ = detail::MemoryBank<T, D>(cfg.train_size, cfg.bits, cfg.classes);
  }
  template <class F>
  void hyperparameters(F&& f) {
    f("alpha", alpha);
    f("step_continuation", step_continuation);
  }

  // tanh(scale·u) with scale = √(⌊epoch/20⌋ + 1); the reference code never updates it (scale 1).
  T scale(int epoch) const {
    return cfg_.reference_compat ? T(1) : std::sqrt(T(epoch / step_continuation + 1));
  }

  tensor_type operator()(const tensor_type& u, const tensor_type& y, const std::vector<int64_t>& ind, int epoch) {
    detail::check_batch(name, u, y, ind, cfg_.bits, cfg_.classes);
    const tensor_type h = tanh(u * scale(epoch));
    tensor_type similar, theta;
    if (cfg_.reference_compat) {
      bank_.store(name, ind, h, y);
      similar = detail::positive(matmul(y, bank_.Y.t()));
      theta = alpha * matmul(h, bank_.U.t());
    } else {
      similar = detail::positive(matmul(y, y.t()));
      theta = alpha * matmul(h, h.t());  // gradient through both factors
    }
    const tensor_type pair = softplus(theta) - similar * theta;
    // mean over positive pairs + mean over negative pairs (the class-balance weighting). A side
    // with no pairs contributes nothing (the reference reweights an empty selection); a positive
    // side can be empty when every label row of the batch is zero.
    const T positives = sum(similar).item(), negatives = T(similar.numel()) - positives;
    tensor_type loss = tensor_type::scalar(T(0));
    if (positives > T(0)) loss = loss + sum(pair * similar) / positives;
    if (negatives > T(0)) loss = loss + sum(pair * (T(1) - similar)) / negatives;
    return loss;
  }
  std::vector<tensor_type> parameters() { return {}; }
  template <class F>
  void state(F&& f) {
    bank_.state(f);
  }

 private:
  Config cfg_;
  detail::MemoryBank<T, D> bank_;
};

// ---- GreedyHash (§2.3) ------------------------------------------------------------------------
template <class T = float, class D = Cpu>
class GreedyHash {
 public:
  using tensor_type = Tensor<T, D>;
  static constexpr const char* name = "greedyhash";
  T alpha = T(0.1);

  GreedyHash(const Config& cfg, Generator& gen)
      : cfg_(cfg), W_(tensor_type::empty(Shape{cfg.classes, cfg.bits})) {
    // PyTorch's default Linear init without bias: U(−1/√K, 1/√K).
    nn::init::linear_(W_, tensor_type(), gen);
    if (!cfg.reference_compat) W_.requires_grad_();
    // HEAD raises α to 1 for imagenet (§2.3); the VTS code has no such override (§7.3).
    if (!cfg.reference_compat && cfg.dataset == "imagenet") alpha = T(1);
  }
  template <class F>
  void hyperparameters(F&& f) {
    f("alpha", alpha);
  }

  // Overwrites the classifier's values in place (the tensor, and so any optimizer holding it,
  // stays the same), e.g. with another implementation's random init.
  void set_classifier(const tensor_type& w) {
    VTS_CHECK_SHAPE(w.shape() == W_.shape(), name, ": classifier must be ", W_.shape().str(),
                    " (classes, bits), found ", w.shape().str());
    W_.detach().copy_(w);
  }
  const tensor_type& classifier() const { return W_; }

  // host_labels: y's values, when the caller has them on the host (see detail::host_labels).
  tensor_type operator()(const tensor_type& u, const tensor_type& y, const std::vector<int64_t>& ind, int,
                         std::span<const float> host_labels = {}) {
    detail::check_batch(name, u, y, ind, cfg_.bits, cfg_.classes);
    const tensor_type b = sign_ste(u);
    const std::vector<float> labels = detail::host_labels(y, host_labels);
    std::vector<int64_t> targets(static_cast<size_t>(u.size(0)));
    std::vector<float> row(static_cast<size_t>(cfg_.classes));
    for (int64_t i = 0; i < u.size(0); ++i) {
      for (int64_t c = 0; c < cfg_.classes; ++c) row[static_cast<size_t>(c)] = float(labels[static_cast<size_t>(i * cfg_.classes + c)]);
      targets[static_cast<size_t>(i)] = first_argmax(row.data(), cfg_.classes);
    }
    const tensor_type ce = cross_entropy(linear(b, W_), targets);
    return ce + alpha * mean(pow(abs(abs(u) - T(1)), T(3)));
  }
  // The classifier trains with the network (HEAD); the reference code leaves it out (frozen).
  std::vector<tensor_type> parameters() {
    return cfg_.reference_compat ? std::vector<tensor_type>{} : std::vector<tensor_type>{W_};
  }
  template <class F>
  void state(F&& f) {
    f("W", W_);
  }

 private:
  Config cfg_;
  tensor_type W_;
};

// ---- IDHN (§2.4) ------------------------------------------------------------------------------
template <class T = float, class D = Cpu>
class Idhn {
 public:
  using tensor_type = Tensor<T, D>;
  static constexpr const char* name = "idhn";
  T alpha = T(0.5), gamma = T(0.1), lambda = T(0.1);

  Idhn(const Config& cfg, Generator&)
      : cfg_(cfg), bank_(cfg.train_size, cfg.bits, cfg.classes) {}
  template <class F>
  void hyperparameters(F&& f) {
    f("alpha", alpha);
    f("gamma", gamma);
    f("lambda", lambda);
  }

  tensor_type operator()(const tensor_type& u, const tensor_type& y, const std::vector<int64_t>& ind, int) {
    detail::check_batch(name, u, y, ind, cfg_.bits, cfg_.classes);
    const T K = T(cfg_.bits);
    const tensor_type v = softsign(u);
    bank_.store(name, ind, v, y);
    const tensor_type y_norm = sqrt(sum(y * y, {1}, true));
    const tensor_type bank_norm = sqrt(sum(bank_.Y * bank_.Y, {1})).reshape(Shape{1, -1});
    const tensor_type s = matmul(y, bank_.Y.t()) / (matmul(y_norm, bank_norm) + T(1e-5));
    const tensor_type hard = map(s, fn::Outside<T>{T(0.01), T(0.99)});
    const tensor_type theta = alpha * matmul(v, bank_.U.t());
    const tensor_type ce = softplus(theta) - s * theta;
    const tensor_type mse = pow(theta + (K - T(2) * K * s), T(2));
    const tensor_type pair = hard * ce + gamma * (T(1) - hard) * mse;
    return mean(pair) + lambda * mean(abs(abs(v) - T(1)));
  }
  std::vector<tensor_type> parameters() { return {}; }
  template <class F>
  void state(F&& f) {
    bank_.state(f);
  }

 private:
  Config cfg_;
  detail::MemoryBank<T, D> bank_;
};

// ---- CSQ (§2.5) -------------------------------------------------------------------------------
template <class T = float, class D = Cpu>
class Csq {
 public:
  using tensor_type = Tensor<T, D>;
  static constexpr const char* name = "csq";
  static constexpr bool soft_labels = true;  // mixed label rows give mixed centers (CenterAssigner)
  T lambda = T(1e-4);

  Csq(const Config& cfg, Generator& gen)
      : cfg_(cfg), assigner_(csq_centers(cfg.classes, cfg.bits, gen), cfg.multi_label, gen) {}
  template <class F>
  void hyperparameters(F&& f) {
    f("lambda", lambda);
  }

  // host_labels: y's values, when the caller has them on the host (see detail::host_labels).
  tensor_type operator()(const tensor_type& u, const tensor_type& y, const std::vector<int64_t>& ind, int,
                         std::span<const float> host_labels = {}) {
    detail::check_batch(name, u, y, ind, cfg_.bits, cfg_.classes);
    // BCE((tanh u + 1)/2, (c + 1)/2) + λ·mean((|tanh u| − 1)²), fused (ops/softmax.hpp).
    return csq_loss(u, centers_for(y, host_labels), lambda);
  }
  // Each label row's center (CenterAssigner), as a [B, K] tensor.
  tensor_type centers_for(const tensor_type& y, std::span<const float> host_labels = {}) const {
    return upload_(assigner_.assign(detail::host_labels(y, host_labels), y.size(0)), y.size(0), cfg_.bits);
  }
  const CenterAssigner& assigner() const { return assigner_; }
  // Replace the random parts (rows beyond 2K, the multi-label tie bits) with known values.
  void set_centers(CenterMatrix centers) { assigner_.set_centers(std::move(centers)); }
  void set_tie_bits(std::vector<float> bits_01) { assigner_.set_tie_bits(std::move(bits_01)); }
  std::vector<tensor_type> parameters() { return {}; }
  template <class F>
  void state(F&& f) {
    detail::visit_assigner<T, D>(assigner_, "centers", f);
  }

 private:
  Config cfg_;
  CenterAssigner assigner_;
  detail::RowUpload<T, D> upload_;
};

// ---- DPN (§2.6) -------------------------------------------------------------------------------
template <class T = float, class D = Cpu>
class Dpn {
 public:
  using tensor_type = Tensor<T, D>;
  static constexpr const char* name = "dpn";
  T margin = T(1);
  // Fraction of −1 entries per target row (spec: 0.5). The constructor draws the targets with it,
  // so changing it afterwards has no effect.
  double p = 0.5;
  bool adaptive_targets = false;  // the "-A" variant: targets re-estimated from the bank each epoch

  Dpn(const Config& cfg, Generator& gen)
      : cfg_(cfg), assigner_(dpn_targets(cfg.classes, cfg.bits, p, gen), cfg.multi_label, gen),
        bank_(cfg.train_size, cfg.bits, cfg.classes) {}
  // p is not among them: the constructor has drawn the targets with it.
  template <class F>
  void hyperparameters(F&& f) {
    f("margin", margin);
    f("adaptive_targets", adaptive_targets);
  }

  // host_labels: y's values, when the caller has them on the host (see detail::host_labels).
  tensor_type operator()(const tensor_type& u, const tensor_type& y, const std::vector<int64_t>& ind, int,
                         std::span<const float> host_labels = {}) {
    detail::check_batch(name, u, y, ind, cfg_.bits, cfg_.classes);
    bank_.store(name, ind, u, y);
    const tensor_type t =
        upload_(assigner_.assign(detail::host_labels(y, host_labels), y.size(0)), y.size(0), cfg_.bits);
    return mean(clamp_min(margin - u * t, T(0)));
  }

  // DPN-A: U ← sign(U)·1[|U| > m], then each class target ← sign(Σ of its images' ternary codes).
  void end_epoch() {
    if (!adaptive_targets) return;
    NoGradGuard guard;
    const T m = margin;
    bank_.U.copy_(map(bank_.U, fn::Ternarize<T>{m}));
    const std::vector<T> sums = matmul(bank_.Y.t(), bank_.U).to_vector();
    auto& centers = assigner_.centers();
    for (int64_t c = 0; c < cfg_.classes; ++c)
      for (int64_t k = 0; k < cfg_.bits; ++k) {
        const T s = sums[static_cast<size_t>(c * cfg_.bits + k)];
        centers[static_cast<size_t>(c)][static_cast<size_t>(k)] = static_cast<float>((s > 0) - (s < 0));
      }
  }
  const CenterAssigner& assigner() const { return assigner_; }
  const CenterMatrix& targets() const { return assigner_.centers(); }
  // Replace the random targets and tie bits with known values.
  void set_targets(CenterMatrix targets) { assigner_.set_centers(std::move(targets)); }
  void set_tie_bits(std::vector<float> bits_01) { assigner_.set_tie_bits(std::move(bits_01)); }
  std::vector<tensor_type> parameters() { return {}; }
  template <class F>
  void state(F&& f) {
    bank_.state(f);
    detail::visit_assigner<T, D>(assigner_, "targets", f);  // DPN-A changes them every epoch
  }

 private:
  Config cfg_;
  CenterAssigner assigner_;
  detail::MemoryBank<T, D> bank_;
  detail::RowUpload<T, D> upload_;
};

// ---- hyperparameters by name ---------------------------------------------------------------------
// Every loss lists the scalars a user may set (`hyperparameters(f)` calls f(name, member) for each):
// a weight, scale or margin (a real number, 0 or more: every one of them is a penalty's weight or a
// distance, which a negative value would turn around), a count of epochs (a whole number, 1 or
// more) or a switch (0 or 1). `vts train --loss-param NAME=VALUE` sets them through these.
enum class HyperparameterKind { real, count, flag };

struct Hyperparameter {
  std::string name;
  double value = 0;
  HyperparameterKind kind = HyperparameterKind::real;
};

namespace detail {
template <class V>
constexpr HyperparameterKind kind_of() {
  if constexpr (std::is_same_v<V, bool>) return HyperparameterKind::flag;
  else if constexpr (std::is_integral_v<V>) return HyperparameterKind::count;
  else return HyperparameterKind::real;
}
inline std::string short_number(double v) {  // %g: 0.1, 20, 1e-05, 3.40282e+38
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}
// A float member as the double of its shortest decimal form (0.1f as 0.1, not 0.10000000149...),
// so that metrics.json and checkpoints show what was asked for.
template <class V>
double decimal_value(V v) {
  if constexpr (std::is_same_v<V, float>) {
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text, v).ptr;
    double d = 0;
    std::from_chars(text, end, d);
    return d;
  } else {
    return static_cast<double>(v);
  }
}
}  // namespace detail

// The loss's hyperparameters with their current values, in the loss's order.
template <class Loss>
std::vector<Hyperparameter> hyperparameters(Loss& loss) {
  std::vector<Hyperparameter> all;
  loss.hyperparameters([&]<class V>(const char* name, V& member) {
    all.push_back({name, detail::decimal_value(member), detail::kind_of<V>()});
  });
  return all;
}

// "alpha 0.1, step_continuation 20", for messages and logs.
inline std::string describe(const std::vector<Hyperparameter>& all) {
  std::string text;
  for (const auto& h : all) text += (text.empty() ? "" : ", ") + h.name + " " + detail::short_number(h.value);
  return text;
}

// Sets the hyperparameter `name` of `loss` to `value`. Throws when the loss has no such one (the
// message lists those it has, with their values) or when `value` is not of its kind.
template <class Loss>
void set_hyperparameter(Loss& loss, const std::string& name, double value) {
  bool found = false;
  loss.hyperparameters([&]<class V>(const char* own_name, V& member) {
    if (name != own_name) return;
    found = true;
    const auto refuse = [&](const std::string& expected) {
      throw Error(vts::detail::concat(Loss::name, " loss: ", name, " = ", detail::short_number(value), "; expected ",
                                      expected));
    };
    constexpr HyperparameterKind kind = detail::kind_of<V>();
    if constexpr (kind == HyperparameterKind::flag) {
      if (value != 0 && value != 1) refuse("0 (off) or 1 (on)");
    } else if constexpr (kind == HyperparameterKind::count) {
      if (!(value >= 1 && value <= 1e6 && value == std::floor(value))) refuse("a whole number from 1 to 1000000");
    } else {  // within V too: 1e300 is a double, not a float
      constexpr double largest = static_cast<double>(std::numeric_limits<V>::max());
      if (!(value >= 0 && value <= largest)) refuse("a number from 0 to " + detail::short_number(largest));
    }
    member = static_cast<V>(value);
  });
  if (!found)
    throw Error(vts::detail::concat(Loss::name, " loss has no hyperparameter '", name, "'; its hyperparameters: ",
                                    describe(hyperparameters(loss))));
}

// Calls f.template operator()<Loss>() with the loss type registered under `name`, so a name from
// a command line becomes a type at compile time.
template <class T, class D, class F>
decltype(auto) dispatch(const std::string& name, F&& f) {
  if (name == "dsh") return f.template operator()<Dsh<T, D>>();
  if (name == "hashnet") return f.template operator()<HashNet<T, D>>();
  if (name == "greedyhash") return f.template operator()<GreedyHash<T, D>>();
  if (name == "idhn") return f.template operator()<Idhn<T, D>>();
  if (name == "csq") return f.template operator()<Csq<T, D>>();
  if (name == "dpn") return f.template operator()<Dpn<T, D>>();
  throw Error("unknown loss '" + name + "'; expected one of dsh, hashnet, greedyhash, idhn, csq, dpn");
}

inline const std::vector<std::string>& names() {
  static const std::vector<std::string> all{"dsh", "hashnet", "greedyhash", "idhn", "csq", "dpn"};
  return all;
}

}  // namespace vts::hash::loss
