#pragma once
// Tensor<T, Device>: a shape, strides and an offset over reference-counted storage, plus the
// autograd fields. Copying a Tensor copies the handle; views share storage.
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "vts/autograd/grad_mode.hpp"
#include "vts/backend/cpu/strided.hpp"
#include "vts/core/device.hpp"
#include "vts/core/dtype.hpp"
#include "vts/core/error.hpp"
#include "vts/core/shape.hpp"
#include "vts/core/storage.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/memory.hpp"
#endif

namespace vts {

template <class T, class D>
class Tensor;
template <class T, class D>
struct Node;

namespace detail {
template <class T, class D>
struct TensorImpl {
  std::shared_ptr<Storage<D>> storage;
  Shape shape;
  Strides strides;
  int64_t offset = 0;
  bool requires_grad = false;
  bool retains_grad = false;
  std::shared_ptr<TensorImpl> grad;     // accumulated gradient (leaves, or retain_grad())
  std::shared_ptr<Node<T, D>> grad_fn;  // the op that produced this tensor, if recorded
};
}  // namespace detail

template <class T, class D = Cpu>
class Tensor {
 public:
  using value_type = T;
  using device_type = D;
  using Impl = detail::TensorImpl<T, D>;

  Tensor() = default;
  explicit Tensor(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

  // ---- creation ---------------------------------------------------------------------------
  static Tensor empty(const Shape& shape) {
    for (int64_t d : shape) VTS_CHECK_SHAPE(d >= 0, "negative dimension in shape ", shape.str());
    auto impl = std::make_shared<Impl>();
    impl->storage = std::make_shared<Storage<D>>(static_cast<size_t>(shape.numel()) * sizeof(T));
    impl->shape = shape;
    impl->strides = contiguous_strides(shape);
    return Tensor(std::move(impl));
  }
  static Tensor full(const Shape& shape, T value) {
    Tensor t = empty(shape);
    fill(D{}, t.data(), t.numel(), value);
    return t;
  }
  static Tensor zeros(const Shape& shape) { return full(shape, T(0)); }
  static Tensor ones(const Shape& shape) { return full(shape, T(1)); }
  static Tensor scalar(T value) { return full(Shape{}, value); }
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
    VTS_CHECK_SHAPE(static_cast<int64_t>(values.size()) == shape.numel(), "from_vector: ", values.size(),
                    " values cannot fill shape ", shape.str(), " (", shape.numel(), " elements)");
    Tensor t = empty(shape);
    copy_from_host(D{}, t.data(), values.data(), values.size() * sizeof(T));
    return t;
  }
  static Tensor from_vector(const std::vector<T>& values) {
    return from_vector(values, Shape{static_cast<int64_t>(values.size())});
  }

  // ---- metadata ----------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return checked().shape; }
  int64_t size(int axis) const { return shape().at(axis); }
  int ndim() const { return shape().ndim(); }
  int64_t numel() const { return shape().numel(); }
  const Strides& strides() const { return checked().strides; }
  int64_t offset() const { return checked().offset; }
  bool is_contiguous() const {
    const auto& s = shape();
    const auto& st = strides();
    int64_t expected = 1;
    for (int i = s.ndim() - 1; i >= 0; --i) {
      if (s[i] != 1 && st[static_cast<size_t>(i)] != expected) return false;
      expected *= s[i];
    }
    return true;
  }
  T* data() const { return static_cast<T*>(checked().storage->data()) + checked().offset; }
  Impl* impl() const { return impl_.get(); }
  const std::shared_ptr<Impl>& impl_ptr() const { return impl_; }
  bool same_storage(const Tensor& other) const { return checked().storage == other.checked().storage; }
  // In-place writes to this tensor's storage so far (shared by its views; see Storage::version).
  uint64_t version() const { return checked().storage->version(); }
  // For code that writes through data() (a custom kernel, an update rule): counts the write, so a
  // backward pass that kept this storage reports it instead of using the new values.
  void bump_version() const { checked().storage->bump_version(); }

  // ---- host access -------------------------------------------------------------------------
  std::vector<T> to_vector() const {
    Tensor c = contiguous_nograd();
    std::vector<T> out(static_cast<size_t>(c.numel()));
    copy_to_host(D{}, out.data(), c.data(), out.size() * sizeof(T));
    return out;
  }
  T item() const {
    VTS_CHECK_SHAPE(numel() == 1, "item() needs a tensor with one element, found shape ", shape().str());
    T v;
    copy_to_host(D{}, &v, data(), sizeof(T));
    return v;
  }
  // Element at a multi-index (host round-trip: for tests and small reads, not for loops).
  T at(std::initializer_list<int64_t> index) const {
    VTS_CHECK_SHAPE(static_cast<int>(index.size()) == ndim(), "at(): ", index.size(), " indices for shape ",
                    shape().str());
    int64_t off = 0;
    int d = 0;
    for (int64_t i : index) {
      VTS_CHECK_SHAPE(i >= 0 && i < shape()[d], "at(): index ", i, " out of range for dimension ", d,
                      " of shape ", shape().str());
      off += i * strides()[static_cast<size_t>(d++)];
    }
    T v;
    copy_to_host(D{}, &v, data() + off, sizeof(T));
    return v;
  }

  // ---- in-place writes (never recorded; used by optimizers, banks and initialisers) ---------
  // Each counts a version (bump_version): a tensor an op kept for its backward pass that is
  // written after the forward makes backward() throw rather than return wrong gradients.
  Tensor& fill_(T value) {
    bump_version();
    if (is_contiguous()) {
      fill(D{}, data(), numel(), value);
    } else {
      Tensor src = full(Shape{}, value);
      Strides zero(static_cast<size_t>(ndim()), 0);
      copy_strided(D{}, shape(), src.data(), zero.data(), data(), strides().data());
    }
    return *this;
  }
  Tensor& zero_() { return fill_(T(0)); }
  // Copies values from `src` (same shape, any strides) into this tensor's memory.
  Tensor& copy_(const Tensor& src) {
    VTS_CHECK_SHAPE(src.shape() == shape(), "copy_: source shape ", src.shape().str(), " does not match ",
                    shape().str());
    // A broadcast view (expand: stride 0 along an axis longer than 1) stores one element for many
    // positions; copying distinct values into it would silently keep whichever was written last.
    for (int i = 0; i < ndim(); ++i)
      VTS_CHECK_SHAPE(shape()[i] <= 1 || strides()[static_cast<size_t>(i)] != 0, "copy_: destination ",
                      shape().str(), " is a broadcast view (stride 0 along dimension ", i,
                      "); write into the tensor it was expanded from");
    bump_version();
    copy_strided(D{}, shape(), src.data(), src.strides().data(), data(), strides().data());
    return *this;
  }
  // A new tensor with its own contiguous copy of the data, outside the graph.
  Tensor clone_nograd() const {
    Tensor out = empty(shape());
    copy_strided(D{}, shape(), data(), strides().data(), out.data(), out.strides().data());
    return out;
  }
  Tensor contiguous_nograd() const { return is_contiguous() ? detach() : clone_nograd(); }

  // ---- autograd ----------------------------------------------------------------------------
  bool requires_grad() const { return checked().requires_grad; }
  Tensor& requires_grad_(bool on = true) {
    VTS_CHECK(!checked().grad_fn || on, "requires_grad_(false) on a tensor produced by an op; use detach()");
    impl_->requires_grad = on;
    return *this;
  }
  bool is_leaf() const { return checked().grad_fn == nullptr; }
  // The accumulated gradient; undefined until a backward pass reaches this tensor.
  Tensor grad() const { return checked().grad ? Tensor(checked().grad) : Tensor(); }
  void set_grad(const Tensor& g) {
    VTS_CHECK_SHAPE(!g.defined() || g.shape() == shape(), "set_grad: gradient shape ", g.shape().str(),
                    " does not match tensor shape ", shape().str());
    checked().grad = g.impl_;
  }
  void zero_grad() { checked().grad.reset(); }
  Tensor& retain_grad() {
    checked().retains_grad = true;
    return *this;
  }
  const std::shared_ptr<Node<T, D>>& grad_fn() const { return checked().grad_fn; }
  // Same data, outside the graph.
  Tensor detach() const {
    auto impl = std::make_shared<Impl>();
    impl->storage = checked().storage;
    impl->shape = shape();
    impl->strides = strides();
    impl->offset = offset();
    return Tensor(std::move(impl));
  }
  void backward() const;                    // from a one-element tensor, seed 1
  void backward(const Tensor& seed) const;  // with an explicit seed of this tensor's shape

  // ---- views (differentiable; defined in ops/view.hpp) -------------------------------------
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const { return reshape(shape); }
  Tensor flatten(int start_axis = 0, int end_axis = -1) const;
  Tensor permute(const std::vector<int>& axes) const;
  Tensor transpose(int a, int b) const;
  Tensor t() const { return transpose(-2, -1); }
  Tensor slice(int axis, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int axis, int64_t index) const;
  Tensor expand(const Shape& shape) const;
  Tensor unsqueeze(int axis) const;
  Tensor squeeze(int axis) const;
  Tensor contiguous() const;

  std::string str() const;

 private:
  Impl& checked() const {
    VTS_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<Impl> impl_;
};

// One recorded op. `backward` maps the output gradient to one gradient per input (an undefined
// tensor where that input needs none). Saved state lives in the closure and is dropped once the
// backward pass has used it.
template <class T, class D>
struct Node {
  const char* name = "op";
  std::vector<std::shared_ptr<detail::TensorImpl<T, D>>> inputs;  // null: input needs no gradient
  std::function<std::vector<Tensor<T, D>>(const Tensor<T, D>&)> backward;
  bool released = false;
};

// A tensor an op keeps for its backward pass, with its storage's version at that moment. get()
// refuses the tensor once an in-place write (fill_, copy_, index_copy_, an initialiser, an
// optimizer step) has changed it, since the backward would then compute the gradient of a
// different function without a word; the engine names the op. Saved tensors the op made itself
// (statistics, masks) need no wrapper: nothing else can write them.
template <class T, class D>
class Saved {
 public:
  Saved() = default;
  explicit Saved(const Tensor<T, D>& t) : tensor_(t.defined() ? t.detach() : t), version_(t.defined() ? t.version() : 0) {}

  const Tensor<T, D>& get() const {
    if (tensor_.defined() && tensor_.version() != version_)
      throw ModifiedSavedTensorError(detail::concat(
          "a tensor of shape ", tensor_.shape().str(), " that it saved was written in place after the forward "
          "pass (version ", tensor_.version(), ", saved at version ", version_,
          "); write into a copy (clone_nograd) instead, or run the forward pass again after the write"));
    return tensor_;
  }
  bool defined() const { return tensor_.defined(); }

 private:
  Tensor<T, D> tensor_;
  uint64_t version_ = 0;
};

namespace detail {
template <class T, class D>
bool any_requires_grad(std::initializer_list<const Tensor<T, D>*> inputs) {
  if (!grad_enabled()) return false;
  for (const auto* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}
}  // namespace detail

// Records `out` as produced by an op from `inputs` when grad mode is on and any input needs a
// gradient; otherwise does nothing and `fn` is never built. Returns `out`.
template <class T, class D, class BackwardFn>
Tensor<T, D> record(Tensor<T, D> out, const char* name, std::initializer_list<const Tensor<T, D>*> inputs,
                    BackwardFn&& fn) {
  if (!detail::any_requires_grad<T, D>(inputs)) return out;
  auto node = std::make_shared<Node<T, D>>();
  node->name = name;
  for (const auto* t : inputs)
    node->inputs.push_back(t->defined() && t->requires_grad() ? t->impl_ptr() : nullptr);
  node->backward = std::forward<BackwardFn>(fn);
  out.impl()->requires_grad = true;
  out.impl()->grad_fn = std::move(node);
  return out;
}

// Whether input `i` of the node being built needs a gradient (for skipping work in backward).
template <class T, class D>
bool needs_grad(const Tensor<T, D>& t) {
  return t.defined() && t.requires_grad();
}

template <class T, class D>
std::string Tensor<T, D>::str() const {
  std::string s = std::string("Tensor<") + dtype_traits<T>::name + ", " + D::name + ">" + shape().str();
  if constexpr (is_cpu_v<D> && (std::is_same_v<T, float> || std::is_same_v<T, double>)) {
    if (numel() <= 16) {
      s += " {";
      auto v = to_vector();
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
      s += "}";
    }
  }
  return s;
}

}  // namespace vts

#include "vts/autograd/engine.hpp"
#include "vts/ops/view.hpp"
