#pragma once
// Our checkpoint: one safetensors file holding every tensor a run needs to continue, and JSON
// metadata under the "vts" key of __metadata__.
//
//   model.<name>     the network's parameters, named as its visit() names them
//   optim.<name>     the optimizer's state() ("step", "<i>.step", "<i>.exp_avg", ...)
//   loss.<name>      the loss's state(): memory banks, centers / targets and tie bits, classifier
//   rng.<name>       a Generator as uint64 [2] = (seed, offset)
//   metadata "vts"   {"format_version", "config", "head", "loss", "bits", "epoch" (epochs done,
//                    which is also the data loader's next epoch), metrics, ...}
//
// Writing goes through write_safetensors, i.e. a temporary file renamed over the destination, so
// an interrupted save never destroys the previous checkpoint. The writer holds the tensors, not
// copies: their values at write() go into the file.
//
// Reading is all-or-nothing. A CheckpointReader is told what to fill (tensor(), layer(),
// optimizer(), loss(), generator(), expect_metadata()); each registration checks its keys at once
// (present, floating dtype, shape; finite values, except in the optimizer's state) and keeps the
// converted values, and commit() adds the keys nobody claimed. If anything is wrong, commit()
// throws one vts::IoError that lists every problem and nothing has been modified; otherwise it
// assigns everything, which can no longer fail.
//
// Tensors are assigned with copy_ into the existing storage, so anything holding a handle to a
// parameter (an optimizer's ParamList) keeps seeing it.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "vts/autograd/grad_mode.hpp"
#include "vts/backend/cpu/parallel.hpp"
#include "vts/core/rng.hpp"
#include "vts/core/tensor.hpp"
#include "vts/io/safetensors.hpp"

namespace vts::io {

// 2: optimizer state, loss state with tie bits, generators and the training epoch (resumable).
// 1: model and loss tensors only (best.safetensors before resuming existed); still readable.
inline constexpr int kCheckpointVersion = 2;

// A tensor's values as an Array in C order (to hand a tensor to write_npy or write_npz), copied
// once into the array's bytes. CheckpointWriter needs no copy: it streams tensors (tensor_source).
template <class T, class D>
Array to_array(const Tensor<T, D>& t) {
  static_assert(std::is_trivially_copyable_v<T>);
  Array a;
  a.dtype = dtype_of<T>();
  a.shape = t.shape().dims();
  const Tensor<T, D> values = t.contiguous_nograd();
  a.bytes.resize(static_cast<size_t>(values.numel()) * sizeof(T));
  if (!a.bytes.empty()) copy_to_host(D{}, a.bytes.data(), values.data(), a.bytes.size());
  return a;
}

inline bool is_float_dtype(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16 || t == DType::f64;
}

namespace detail {

// Problems found while checking a file against what it should fill. Loaders collect them all and
// raise one IoError, so a user fixing a file sees every mismatch in one go.
class ProblemList {
 public:
  void add(std::string problem) { items_.push_back(std::move(problem)); }
  template <class... Parts>
  void addf(Parts&&... parts) {
    items_.push_back(concat(std::forward<Parts>(parts)...));
  }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<std::string>& items() const { return items_; }

  // "<what>: 2 problems; nothing was changed:\n  - first\n  - second"
  void throw_if_any(const std::string& what) const {
    if (items_.empty()) return;
    std::string msg = concat(what, ": ", items_.size(), items_.size() == 1 ? " problem" : " problems",
                             "; nothing was changed:");
    for (const auto& p : items_) msg += "\n  - " + p;
    throw IoError(msg);
  }

 private:
  std::vector<std::string> items_;
};

inline bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// NaN and Inf weights load without complaint and then make every output NaN (every code the
// same), far from the file that caused it; loaders count them while the values pass by anyway.
template <class T>
int64_t count_non_finite(std::span<const T> values) {
  int64_t n = 0;
  for (const T& v : values) {
    if constexpr (std::is_floating_point_v<T>) n += !std::isfinite(v);
    else n += !std::isfinite(static_cast<float>(v));
  }
  return n;
}
template <class T>
int64_t count_non_finite(const std::vector<T>& values) {
  return count_non_finite(std::span<const T>(values));
}
// Values whose exponent bits are all ones (NaN or ±Inf) among `count` little-endian Bits at p.
template <class Bits>
int64_t count_all_ones_exponent(const uint8_t* p, int64_t count, Bits exponent) {
  int64_t n = 0;
  for (int64_t i = 0; i < count; ++i) n += (load_le<Bits>(p + i * int64_t{sizeof(Bits)}) & exponent) == exponent;
  return n;
}

// The smallest share of a tensor worth a thread when loading (256 KB of floats).
inline constexpr int64_t kParallelLoadElements = int64_t(1) << 16;

// Values a converting loop may hand to cpu::parallel_for: conversion to a floating type never
// throws (to an integer it may, and an exception must not leave an OpenMP region).
template <class T>
inline constexpr bool converts_without_throwing = std::is_floating_point_v<T> || std::is_same_v<T, vts::bf16>;

// body(begin, end) over [0, n): in shares on the library's threads when values of T convert
// without throwing, else in one call on this thread.
template <class T, class Body>
void over_shares(int64_t n, Body&& body) {
  if constexpr (converts_without_throwing<T>)
    cpu::parallel_for(0, n, kParallelLoadElements, body);
  else
    body(int64_t{0}, n);
}

// All of a stored tensor's values converted into out (the first touch of out, page faults
// included, is most of the time for a fresh tensor).
template <class T>
void convert_all(const SafetensorsTensor& stored, T* out) {
  over_shares<T>(stored.numel(), [&](int64_t b, int64_t e) { stored.convert_to(out + b, b, e - b); });
}

// A stored tensor as a new tensor of TensorT: on the CPU converted from the mapping straight into
// it (convert_all), elsewhere through a host vector.
template <class TensorT>
TensorT tensor_of(const SafetensorsTensor& stored) {
  using T = typename TensorT::value_type;
  if constexpr (is_cpu_v<typename TensorT::device_type>) {
    TensorT out = TensorT::empty(Shape(stored.shape));
    convert_all(stored, out.data());
    return out;
  } else {
    return TensorT::from_vector(stored.template as<T>(), Shape(stored.shape));
  }
}

// The same for a stored tensor's values as T, read from the file's mapping (no copy of the whole
// tensor is made), on the library's threads where the count cannot throw. Half, bfloat16 and float
// values convert to float or double exactly, so for those the exponent bits are counted without
// converting; otherwise the values are converted a slice at a time (a double may become Inf as a
// float, a float Inf as a bfloat16).
template <class T>
int64_t count_non_finite(const SafetensorsTensor& stored) {
  constexpr int64_t kSlice = 16384;
  const int64_t n = stored.numel();
  const auto count_range = [&](int64_t begin, int64_t end) -> int64_t {
    const uint8_t* p = stored.data.data() + static_cast<size_t>(begin) * dtype_size(stored.dtype);
    if constexpr (std::is_floating_point_v<T> && sizeof(T) >= 4) {
      switch (stored.dtype) {
        case DType::f32: return count_all_ones_exponent<uint32_t>(p, end - begin, 0x7F800000u);
        case DType::bf16: return count_all_ones_exponent<uint16_t>(p, end - begin, uint16_t{0x7F80});
        case DType::f16: return count_all_ones_exponent<uint16_t>(p, end - begin, uint16_t{0x7C00});
        default: break;
      }
    }
    std::vector<T> slice(static_cast<size_t>(std::min(end - begin, kSlice)));
    int64_t bad = 0;
    for (int64_t first = begin; first < end; first += kSlice) {
      const int64_t count = std::min(kSlice, end - first);
      stored.convert_to(slice.data(), first, count);
      bad += count_non_finite(std::span<const T>(slice.data(), static_cast<size_t>(count)));
    }
    return bad;
  };
  std::atomic<int64_t> bad{0};
  over_shares<T>(n, [&](int64_t b, int64_t e) { bad.fetch_add(count_range(b, e), std::memory_order_relaxed); });
  return bad.load();
}

inline std::string non_finite_problem(const std::string& key, int64_t bad, size_t total) {
  return concat("tensor '", key, "' holds ", bad, " non-finite value", bad == 1 ? "" : "s", " (NaN or Inf) among ",
                total, "; expected finite weights");
}

// What a JSON value is, for messages: its type and, when short, the value itself.
inline std::string json_found(const nlohmann::json& v) {
  std::string text = v.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return concat(text, " (", v.type_name(), ")");
}

// v as a T when it is a JSON integer within T's range, else nothing. nlohmann's get<T>() converts
// whatever number it finds: 4294967297 to a uint32_t or an int as 1, -1 to 4294967295, 64.5 to 64.
template <class T>
std::optional<T> json_integer(const nlohmann::json& v) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
  if (!v.is_number_integer()) return std::nullopt;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    return std::in_range<T>(u) ? std::optional<T>(static_cast<T>(u)) : std::nullopt;
  }
  const int64_t i = v.get<int64_t>();
  return std::in_range<T>(i) ? std::optional<T>(static_cast<T>(i)) : std::nullopt;
}

// Calls f(optimizer&) on a plain optimizer or on the alternative a std::variant holds.
template <class Opt, class F>
decltype(auto) with_optimizer(Opt& opt, F&& f) {
  if constexpr (requires { opt.state(); }) return f(opt);
  else return std::visit(std::forward<F>(f), opt);
}

}  // namespace detail

// ---- metadata values ------------------------------------------------------------------------------
// A metadata key read as T: bool, an integer type (a JSON integer that fits), double (a finite
// number) or std::string. A key of another JSON type, or a missing one where no fallback is given,
// throws IoError naming the file, the key, the type expected and what was found, rather than
// nlohmann's type_error, which names neither file nor key.

inline IoError metadata_error(const std::string& file, const std::string& key, const std::string& expected,
                              const std::string& found) {
  return IoError(detail::concat("checkpoint '", file, "': metadata '", key, "': expected ", expected, ", found ",
                                found));
}

template <class T>
std::string metadata_type_name() {
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  else if constexpr (std::is_unsigned_v<T>) return "a whole number of 0 or more";
  else if constexpr (std::is_integral_v<T>) return "a whole number";
  else if constexpr (std::is_floating_point_v<T>) return "a finite number";
  else return "a string";
}

template <class T>
T metadata_value(const nlohmann::json& m, const std::string& key, const std::string& file) {
  static_assert(std::is_same_v<T, bool> || std::is_integral_v<T> || std::is_floating_point_v<T> ||
                std::is_same_v<T, std::string>);
  const auto it = m.find(key);
  if (it == m.end()) throw metadata_error(file, key, metadata_type_name<T>(), "no such key");
  const nlohmann::json& v = *it;
  const auto wrong = [&] { return metadata_error(file, key, metadata_type_name<T>(), detail::json_found(v)); };
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) throw wrong();
    return v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) throw wrong();
    const std::optional<T> x = detail::json_integer<T>(v);
    if (!x)
      throw metadata_error(file, key,
                           detail::concat("a whole number from ", +std::numeric_limits<T>::min(), " to ",
                                          +std::numeric_limits<T>::max()),
                           detail::json_found(v));
    return *x;
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number() || !std::isfinite(v.get<double>())) throw wrong();
    return static_cast<T>(v.get<double>());
  } else {
    if (!v.is_string()) throw wrong();
    return v.get<std::string>();
  }
}

// The same, with `fallback` for a missing key (older checkpoints lack some).
template <class T>
T metadata_value(const nlohmann::json& m, const std::string& key, const std::string& file, T fallback) {
  return m.contains(key) ? metadata_value<T>(m, key, file) : fallback;
}

// A count or an epoch number: a whole number of 0 or more that fits int64_t. `shown` names the
// value in the message (a key, or an element such as "evaluations[3].epoch").
inline int64_t metadata_count_value(const nlohmann::json& v, const std::string& file, const std::string& shown) {
  const std::optional<int64_t> count = detail::json_integer<int64_t>(v);
  if (!count || *count < 0) throw metadata_error(file, shown, "a whole number of 0 or more", detail::json_found(v));
  return *count;
}
inline int64_t metadata_count(const nlohmann::json& m, const std::string& key, const std::string& file,
                              int64_t fallback) {
  return m.contains(key) ? metadata_count_value(m[key], file, key) : fallback;
}

// A tensor as a source for write_safetensors_streamed: its values are read when the file is
// written. A contiguous CPU tensor goes from its own memory into the file; a strided one is made
// contiguous first (that tensor only), and a device tensor comes to the host 64 MiB at a time.
template <class T, class D>
SafetensorsSource tensor_source(const Tensor<T, D>& t) {
  static_assert(std::is_trivially_copyable_v<T>);
  return {dtype_of<T>(), t.shape().dims(), [t](const SafetensorsSource::Sink& sink) {
            const Tensor<T, D> values = t.contiguous_nograd();
            const size_t bytes = static_cast<size_t>(values.numel()) * sizeof(T);
            if (bytes == 0) return;
            const auto* src = reinterpret_cast<const uint8_t*>(values.data());
            if constexpr (is_cpu_v<D>) {
              sink(src, bytes);
            } else {
              constexpr size_t kPiece = size_t{64} << 20;
              std::vector<uint8_t> staging(std::min(bytes, kPiece));
              for (size_t done = 0; done < bytes;) {
                const size_t n = std::min(staging.size(), bytes - done);
                copy_to_host(D{}, staging.data(), src + done, n);
                sink(staging.data(), n);
                done += n;
              }
            }
          }};
}

// Tensors are read when write() runs, not copied when they are added: like a PyTorch state_dict,
// the writer refers to the model's and the optimizer's own tensors, and their bytes go straight
// into the file (a B/16 training state is 2.9 GB, which a copy of everything beforehand held
// twice). So add and write with nothing in between that changes them: write() refuses a tensor
// written to since its add() (its version moved: a training step, a copy_, swapping in the
// averaged weights), as the file would mix values of two moments. The averaged weights are saved
// by adding and writing inside Trainer::with_eval_weights.
class CheckpointWriter {
 public:
  template <class T, class D>
  void add(const std::string& name, const Tensor<T, D>& t) {
    SafetensorsSource source = tensor_source(t);
    const uint64_t version = t.version();
    source.write = [t, version, name, write = std::move(source.write)](const SafetensorsSource::Sink& sink) {
      VTS_CHECK(t.version() == version, "checkpoint: tensor '", name, "' was written to after it was added to the ",
                "writer (version ", version, ", now ", t.version(), "); the writer reads tensors at write(), so add ",
                "them after the last change");
      write(sink);
    };
    add_source(name, std::move(source));
  }
  void add_array(const std::string& name, Array a) {
    auto held = std::make_shared<const Array>(std::move(a));
    add_source(name, {held->dtype, held->shape, [held](const SafetensorsSource::Sink& sink) {
                        sink(held->bytes.data(), held->bytes.size());
                      }});
  }
  void add_source(const std::string& name, SafetensorsSource source) {
    VTS_CHECK(!sources_.count(name), "checkpoint: tensor '", name, "' added twice");
    sources_.emplace(name, std::move(source));
  }
  // Adds every tensor a layer visits, under prefix.
  template <class Layer>
  void add_layer(const std::string& prefix, Layer& layer) {
    layer.visit(prefix, [&](const std::string& name, auto& t) { add(name, t); });
  }
  // An optimizer's state (or that of the optimizer a std::variant holds), as prefix.<name>: its
  // own buffers where it offers them uncopied (state_view()), else the copies state() returns.
  template <class Opt>
  void add_optimizer(const std::string& prefix, Opt& opt) {
    detail::with_optimizer(opt, [&](auto& o) {
      if constexpr (requires { o.state_view(); }) {
        for (const auto& [name, t] : o.state_view()) add(prefix + "." + name, t);
      } else {
        for (const auto& [name, t] : o.state()) add(prefix + "." + name, t);
      }
    });
  }
  // Whatever a loss (or any object with state(f)) visits, as prefix.<name>.
  template <class Stateful>
  void add_state(const std::string& prefix, Stateful& s) {
    s.state([&](const std::string& name, auto& t) { add(prefix + "." + name, t); });
  }
  void add_generator(const std::string& name, const Generator& g) {
    add_array(name, make_array(std::vector<uint64_t>{g.seed(), g.offset()}, {2}));
  }
  nlohmann::json& metadata() { return meta_; }
  // Every tensor's current values, copied (for inspection and tests; write() needs no copy).
  std::map<std::string, Array> arrays() const {
    std::map<std::string, Array> out;
    for (const auto& [name, source] : sources_) {
      Array& a = out[name];
      a.dtype = source.dtype;
      a.shape = source.shape;
      source.write([&](const void* data, size_t size) {
        const auto* p = static_cast<const uint8_t*>(data);
        a.bytes.insert(a.bytes.end(), p, p + size);
      });
    }
    return out;
  }
  void write(const std::string& path) const {
    nlohmann::json meta = meta_;
    meta["format_version"] = kCheckpointVersion;
    write_safetensors_streamed(path, sources_, {{"vts", meta.dump()}});
  }

 private:
  std::map<std::string, SafetensorsSource> sources_;
  nlohmann::json meta_ = nlohmann::json::object();
};

class CheckpointReader {
 public:
  // Opens and validates the container and its metadata. A file that is not a readable vts
  // checkpoint (truncated, corrupt header, newer format) throws IoError here.
  explicit CheckpointReader(std::string path) : path_(std::move(path)), st_(Safetensors::open(path_)) {
    const auto it = st_.metadata().find("vts");
    if (it == st_.metadata().end())
      throw IoError(detail::concat("checkpoint '", path_, "': no \"vts\" metadata; not a vts checkpoint (for "
                                                          "pretrained weights use io::load_pretrained)"));
    try {
      meta_ = nlohmann::json::parse(it->second);
    } catch (const nlohmann::json::exception& e) {
      throw IoError(detail::concat("checkpoint '", path_, "': \"vts\" metadata is not valid JSON: ", e.what()));
    }
    if (!meta_.is_object())
      throw IoError(detail::concat("checkpoint '", path_, "': \"vts\" metadata is not a JSON object"));
    const auto v = meta_.find("format_version");
    if (v == meta_.end() || !v->is_number_integer())
      throw IoError(detail::concat("checkpoint '", path_, "': metadata has no integer format_version"));
    const std::optional<int> version = detail::json_integer<int>(*v);  // get<int>() read 4294967297 as 1
    if (!version || *version < 1 || *version > kCheckpointVersion)
      throw IoError(detail::concat("checkpoint '", path_, "': format_version ", v->dump(),
                                   " is not one this build reads (1..", kCheckpointVersion, ")"));
    version_ = *version;
  }

  const std::string& path() const { return path_; }
  const nlohmann::json& metadata() const { return meta_; }
  int version() const { return version_; }
  bool contains(const std::string& name) const { return st_.contains(name); }
  const Safetensors& file() const { return st_; }

  // ---- registrations: check now, assign at commit() ------------------------------------------
  // The referenced objects must stay alive until commit().
  template <class T, class D>
  void tensor(const std::string& name, Tensor<T, D>& dst) {
    // A name already claimed (a visit() that names two layers alike) would fill two tensors from
    // the one stored tensor; the writer refuses such a model, so the reader does too.
    if (claimed_.count(name)) {
      problems_.addf("tensor '", name, "' is registered twice (two tensors of the model share this name)");
      return;
    }
    const SafetensorsTensor* stored = check_stored<T>(name, dst.shape());
    if (!stored) return;
    Tensor<T, D>* target = &dst;
    apply_.push_back([target, stored] {
      NoGradGuard guard;
      if constexpr (is_cpu_v<D>) {
        // Straight from the file's mapping into the parameter: one pass over a B/16 model's
        // 963 MB instead of four (a copy of the bytes, the converted vector, a tensor of it, then
        // the parameter) and none of those copies' memory held until commit.
        if (target->is_contiguous()) {
          target->bump_version();
          detail::convert_all(*stored, target->data());
          return;
        }
      }
      target->copy_(Tensor<T, D>::from_vector(stored->template as<T>(), target->shape()));
    });
  }

  template <class Layer>
  void layer(const std::string& prefix, Layer& layer) {
    layer.visit(prefix, [&](const std::string& name, auto& t) { tensor(name, t); });
  }

  // Every key under prefix. goes to the optimizer's load_state(). It is first loaded into a copy
  // of the optimizer, so a state that load_state rejects (another optimizer's buffers, shapes of
  // other parameters) becomes a problem on the list, and the optimizer itself is only replaced at
  // commit(). Works with a std::variant of optimizers too.
  template <class Opt>
  void optimizer(const std::string& prefix, Opt& opt) {
    detail::with_optimizer(opt, [&](auto& o) {
      using O = std::remove_reference_t<decltype(o)>;
      using tensor_type = typename O::state_tensor;  // fp32 for a bf16 model's optimizer (masters)
      const std::string head = prefix + ".";
      std::vector<std::pair<std::string, tensor_type>> entries;
      bool ok = true;
      for (const auto& [key, t] : st_.tensors()) {
        if (!detail::starts_with(key, head)) continue;
        claimed_.insert(key);
        if (!is_float_dtype(t.dtype)) {
          problems_.addf("tensor '", key, "' is ", dtype_name(t.dtype), ", expected a floating type");
          ok = false;
          continue;
        }
        entries.emplace_back(key.substr(head.size()), detail::tensor_of<tensor_type>(t));
      }
      if (!st_.contains(head + "step")) {
        problems_.addf("missing optimizer state (no '", head, "step')");
        ok = false;
      }
      if (!ok) return;
      auto probe = std::make_shared<O>(o);
      try {
        probe->adopt_state(std::move(entries));  // the optimizer keeps these tensors, uncopied
      } catch (const Error& e) {
        problems_.addf("optimizer state under '", head, "': ", e.what());
        return;
      }
      O* target = &o;
      apply_.push_back([target, probe] { *target = std::move(*probe); });
    });
  }

  // A loss's state(f) (or any object with one). The visit runs first on a copy, with f replacing
  // each tensor by the loaded one, so the loss's own checks (CSQ/DPN centers must hold -1, 0, +1)
  // run before anything changes; at commit() the real visit copies the values in place.
  template <class Loss>
  void loss(const std::string& prefix, Loss& l) {
    using tensor_type = typename Loss::tensor_type;
    using T = typename tensor_type::value_type;
    auto values = std::make_shared<std::map<std::string, tensor_type>>();
    Loss probe = l;
    const size_t before = problems_.size();
    try {
      probe.state([&](const std::string& name, tensor_type& t) {
        auto v = take<T>(prefix + "." + name, t.shape());
        if (!v) return;
        tensor_type loaded = tensor_type::from_vector(*v, t.shape());
        (*values)[name] = loaded;
        t = loaded.clone_nograd();  // rebinds the copy's handle; the live loss is untouched
      });
    } catch (const Error& e) {
      problems_.addf("loss state under '", prefix, ".': ", e.what());
    }
    if (problems_.size() != before) return;
    Loss* target = &l;
    apply_.push_back([target, values] {
      NoGradGuard guard;
      target->state([&](const std::string& name, tensor_type& t) { t.copy_(values->at(name)); });
    });
  }

  void generator(const std::string& name, Generator& g) {
    const auto v = take_integers<uint64_t>(name, "generator state", DType::u64, 2);
    if (!v) return;
    Generator* target = &g;
    apply_.push_back([target, v] { target->set_state((*v)[0], (*v)[1]); });
  }

  // A single int64 (a step count), shape (1,).
  void counter(const std::string& name, int64_t& value) {
    const auto v = take_integers<int64_t>(name, "counter", DType::i64, 1);
    if (!v) return;
    int64_t* target = &value;
    apply_.push_back([target, v] { *target = (*v)[0]; });
  }

  // A metadata entry that must equal `value` (e.g. the model config a checkpoint was made for).
  void expect_metadata(const std::string& key, const nlohmann::json& value) {
    const auto it = meta_.find(key);
    if (it == meta_.end())
      problems_.addf("metadata has no '", key, "' (expected ", value.dump(), ")");
    else if (*it != value)
      problems_.addf("metadata '", key, "' is ", it->dump(), ", expected ", value.dump());
  }

  // Keys under prefix are neither loaded nor reported as unexpected (e.g. "optim." when only the
  // model is wanted).
  void ignore(const std::string& prefix) { ignored_.push_back(prefix); }

  // Throws one IoError listing every problem (nothing assigned), or assigns everything.
  void commit() {
    VTS_CHECK(!committed_, "CheckpointReader::commit called twice for '", path_, "'");
    for (const auto& [name, t] : st_.tensors()) {
      const std::string& key = name;  // a structured binding cannot be captured before clang 16
      if (claimed_.count(key)) continue;
      if (std::any_of(ignored_.begin(), ignored_.end(), [&](const std::string& p) { return detail::starts_with(key, p); }))
        continue;
      problems_.addf("unexpected tensor '", key, "' (", dtype_name(t.dtype), " ", detail::shape_str(t.shape), ")");
    }
    problems_.throw_if_any(detail::concat("checkpoint '", path_, "'"));
    for (auto& f : apply_) f();
    committed_ = true;
  }

  const std::vector<std::string>& problems() const { return problems_.items(); }

 private:
  // Checks one key against the expected shape and returns its values as T, or null after
  // recording a problem.
  template <class T>
  std::shared_ptr<std::vector<T>> take(const std::string& name, const Shape& shape) {
    const SafetensorsTensor* stored = check_stored<T>(name, shape);
    if (!stored) return nullptr;
    return std::make_shared<std::vector<T>>(stored->template as<T>());
  }

  // Checks one key against the expected shape, and its values (as T) for NaN and Inf, on the
  // file's mapping; returns the stored tensor, which lives as long as this reader, or null after
  // recording a problem.
  template <class T>
  const SafetensorsTensor* check_stored(const std::string& name, const Shape& shape) {
    claimed_.insert(name);
    if (!st_.contains(name)) {
      problems_.addf("missing tensor '", name, "' (expected shape ", detail::shape_str(shape.dims()), ")");
      return nullptr;
    }
    const SafetensorsTensor& t = st_.at(name);
    bool ok = true;
    if (!is_float_dtype(t.dtype)) {
      problems_.addf("tensor '", name, "' is ", dtype_name(t.dtype), ", expected a floating type");
      ok = false;
    }
    if (t.shape != shape.dims()) {
      problems_.addf("tensor '", name, "' has shape ", detail::shape_str(t.shape), ", expected ",
                     detail::shape_str(shape.dims()));
      ok = false;
    }
    if (!ok) return nullptr;
    if (const int64_t bad = detail::count_non_finite<T>(t); bad > 0) {
      problems_.add(detail::non_finite_problem(name, bad, static_cast<size_t>(t.numel())));
      return nullptr;
    }
    return &t;
  }

  // An integer vector of exactly `count` values of dtype `dtype`, or null after recording a
  // problem that calls it `what`.
  template <class I>
  std::shared_ptr<std::vector<I>> take_integers(const std::string& name, const char* what, DType dtype, int64_t count) {
    claimed_.insert(name);
    const std::string expected = detail::concat(dtype_name(dtype), " (", count, ",)");
    if (!st_.contains(name)) {
      problems_.addf("missing ", what, " '", name, "' (expected ", expected, ")");
      return nullptr;
    }
    const SafetensorsTensor& t = st_.at(name);
    if (t.dtype != dtype || t.shape != std::vector<int64_t>{count}) {
      problems_.addf(what, " '", name, "' is ", dtype_name(t.dtype), " ", detail::shape_str(t.shape), ", expected ",
                     expected);
      return nullptr;
    }
    return std::make_shared<std::vector<I>>(t.as<I>());
  }

  std::string path_;
  Safetensors st_;
  nlohmann::json meta_;
  int version_ = 0;
  std::set<std::string> claimed_;
  std::vector<std::string> ignored_;
  detail::ProblemList problems_;
  std::vector<std::function<void()>> apply_;
  bool committed_ = false;
};

// ---- a Trainer's whole state ---------------------------------------------------------------------
// Duck-typed on hash::Trainer (network(), optimizer(), loss(), dropout_rng()) so vts::io does not
// depend on vts::hash. The data loader needs no tensors: its order and augmentation are functions
// of (seed, epoch), so the epoch number in the metadata is its whole state.

template <class Trainer>
void add_training_state(CheckpointWriter& w, Trainer& tr) {
  w.add_layer("model", tr.network());
  w.add_optimizer("optim", tr.optimizer());
  if constexpr (requires { tr.loss_optimizer(); })
    if (auto* lo = tr.loss_optimizer()) w.add_optimizer("optim_loss", *lo);
  w.add_state("loss", tr.loss());
  w.add_generator("rng.dropout", tr.dropout_rng());
  if constexpr (requires { tr.ema_enabled(); }) {
    if (tr.ema_enabled()) {  // the weight average and its step count (the decay's warm-up)
      auto ema = tr.ema_weights();
      w.add_layer("ema", ema);
      w.add_array("ema_steps", make_array(std::vector<int64_t>{tr.ema_steps()}, {1}));
    }
  }
}

// With EMA on, the average comes back too when the checkpoint has one; has_ema_state() tells the
// caller whether it did (a checkpoint from a run without EMA leaves the trainer's fresh average).
inline bool has_ema_state(const CheckpointReader& r) { return r.contains("ema_steps"); }

template <class Trainer>
void read_training_state(CheckpointReader& r, Trainer& tr) {
  r.layer("model", tr.network());
  r.optimizer("optim", tr.optimizer());
  if constexpr (requires { tr.loss_optimizer(); })
    if (auto* lo = tr.loss_optimizer()) r.optimizer("optim_loss", *lo);
  r.loss("loss", tr.loss());
  r.generator("rng.dropout", tr.dropout_rng());
  if constexpr (requires { tr.ema_enabled(); }) {
    if (tr.ema_enabled() && has_ema_state(r)) {
      auto ema = tr.ema_weights();
      r.layer("ema", ema);
      r.counter("ema_steps", tr.ema_steps());
    } else {
      r.ignore("ema.");
      r.ignore("ema_steps");
    }
  }
}

// ---- a stopped classifier pretraining -----------------------------------------------------------
// Duck-typed on hash::ClassifierPretrainer (backbone(), classifier(), optimizer(), dropout_rng()).
// The hash head and the loss are not in it: the pretraining does not touch them, and a resumed run
// draws them again from the same seed.

template <class Pretrainer>
void add_pretraining_state(CheckpointWriter& w, Pretrainer& p) {
  w.add_layer("pretrain.backbone", p.backbone());
  w.add_layer("pretrain.classifier", p.classifier());
  w.add_optimizer("pretrain.optim", p.optimizer());
  w.add_generator("pretrain.rng", p.dropout_rng());
}

template <class Pretrainer>
void read_pretraining_state(CheckpointReader& r, Pretrainer& p) {
  r.layer("pretrain.backbone", p.backbone());
  r.layer("pretrain.classifier", p.classifier());
  r.optimizer("pretrain.optim", p.optimizer());
  r.generator("pretrain.rng", p.dropout_rng());
}

}  // namespace vts::io
