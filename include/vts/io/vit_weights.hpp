#pragma once
// Pretrained weights for nn::ViT<Config>: Google's .npz checkpoints (the ViT-B_16 / ViT-B_32
// imagenet21k files the paper starts from, hashing-spec §6.3) and timm-named safetensors files.
//
//   io::load_pretrained(net.backbone, "ViT-B_32.npz");          // format from the file's content
//   io::load_google_npz(vit, path);  io::load_timm_safetensors(vit, path);
//
// Every load is checked as a whole before the model is touched: each source key is matched to a
// parameter of the model, its dtype must be float32/float16/bfloat16/float64 (converted to the
// model's type), its shape must be the one the model needs, its values finite. Missing keys,
// unexpected keys, wrong shapes, wrong dtypes, NaN or Inf values and unreadable members are
// collected and reported together in one vts::IoError; only when there is none are the parameters
// overwritten (in place, so optimizers holding them stay valid). docs/weights.md has the key tables.
//
// Position embeddings saved for another grid (e.g. 384-pixel fine-tunes, or a model with another
// patch count) are resized as jeonsworld's loader does (§6.4): the class-token row is kept and the
// g_old x g_old grid is resampled to the model's grid with corner-aligned bilinear interpolation
// (scipy.ndimage.zoom, order 1).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vts/autograd/grad_mode.hpp"
#include "vts/io/checkpoint.hpp"  // detail::ProblemList, is_float_dtype
#include "vts/io/file.hpp"
#include "vts/io/npz.hpp"
#include "vts/io/safetensors.hpp"
#include "vts/nn/vit.hpp"

namespace vts::io {

enum class WeightFormat { google_npz, timm_safetensors };

inline const char* format_name(WeightFormat f) {
  return f == WeightFormat::google_npz ? "google npz" : "timm safetensors";
}

struct WeightLoadOptions {
  // Skip the pretraining task's classifier: Google "head/*" and "pre_logits/*", timm "head.*"
  // and "pre_logits.*". Off: those keys count as unexpected.
  bool skip_classifier = true;
  // Hand the skipped arrays back in WeightLoadReport::skipped_arrays (e.g. to reuse a head).
  bool keep_skipped = false;
  // Resize position embeddings saved for another grid; off: a different grid is a shape error.
  bool resize_pos_embed = true;
  // safetensors only: the prefix in front of the timm names ("model.backbone." in a vts
  // checkpoint). Keys outside it are skipped.
  std::string prefix;
};

struct WeightLoadReport {
  WeightFormat format = WeightFormat::google_npz;
  std::string path;
  size_t tensors = 0;                 // model parameters written
  std::vector<std::string> skipped;   // source keys deliberately not used
  std::map<std::string, Array> skipped_arrays;  // with keep_skipped
  int64_t pos_grid_from = 0, pos_grid_to = 0;   // differ when the position embeddings were resized

  bool resized() const { return pos_grid_from != pos_grid_to; }
  std::string summary() const {
    std::string s = detail::concat("loaded ", tensors, " tensors from '", path, "' (", format_name(format), ")");
    if (!skipped.empty()) s += detail::concat(", skipped ", skipped.size(), " keys");
    if (resized())
      s += detail::concat(", position embeddings resized from a ", pos_grid_from, "x", pos_grid_from, " to a ",
                          pos_grid_to, "x", pos_grid_to, " grid");
    return s;
  }
};

// [1 + g_old², dim] → [1 + g_new², dim] (the leading 1 of the file's shape dropped): row 0 (the
// class token) is copied, the grid is resampled separably along rows then columns. Output index o
// of an axis reads input coordinate o·(g_old − 1)/(g_new − 1), computed as scipy does (the ratio
// first), and interpolates linearly between the two neighbours. A one-wide input or output axis
// reads coordinate 0.
//
// scipy's own zoom (mode 'constant') returns 0 for an output row whose coordinate rounds one ulp
// past the last input row (e.g. 28 → 14, 8 → 26); that is an artefact, and we take the last row.
inline std::vector<double> resize_pos_embed(const std::vector<double>& src, int64_t g_old, int64_t g_new,
                                            int64_t dim) {
  VTS_CHECK(g_old >= 1 && g_new >= 1 && dim >= 1, "resize_pos_embed: grids ", g_old, " -> ", g_new, ", dim ", dim);
  VTS_CHECK_SHAPE(static_cast<int64_t>(src.size()) == (1 + g_old * g_old) * dim, "resize_pos_embed: ", src.size(),
                  " values for 1 + ", g_old, "x", g_old, " rows of ", dim);
  struct Tap {
    int64_t i0;
    double frac;
  };
  std::vector<Tap> taps(static_cast<size_t>(g_new));
  const double zoom = (g_old > 1 && g_new > 1) ? static_cast<double>(g_old - 1) / static_cast<double>(g_new - 1) : 0.0;
  for (int64_t o = 0; o < g_new; ++o) {
    const double x = static_cast<double>(o) * zoom;
    int64_t i0 = static_cast<int64_t>(std::floor(x));
    if (i0 >= g_old - 1) {
      taps[static_cast<size_t>(o)] = {g_old - 1, 0.0};
    } else {
      taps[static_cast<size_t>(o)] = {i0, x - static_cast<double>(i0)};
    }
  }
  auto sample = [&](const Tap& t, auto&& at) {  // at(i) → the value at input index i
    return t.frac == 0.0 ? at(t.i0) : (1.0 - t.frac) * at(t.i0) + t.frac * at(t.i0 + 1);
  };
  const double* grid = src.data() + dim;
  // Rows first: [g_new, g_old, dim].
  std::vector<double> rows(static_cast<size_t>(g_new * g_old * dim));
  for (int64_t r = 0; r < g_new; ++r)
    for (int64_t c = 0; c < g_old; ++c)
      for (int64_t d = 0; d < dim; ++d)
        rows[static_cast<size_t>((r * g_old + c) * dim + d)] =
            sample(taps[static_cast<size_t>(r)], [&](int64_t i) { return grid[(i * g_old + c) * dim + d]; });
  std::vector<double> out(static_cast<size_t>((1 + g_new * g_new) * dim));
  std::copy(src.begin(), src.begin() + dim, out.begin());
  for (int64_t r = 0; r < g_new; ++r)
    for (int64_t c = 0; c < g_new; ++c)
      for (int64_t d = 0; d < dim; ++d)
        out[static_cast<size_t>((1 + r * g_new + c) * dim + d)] =
            sample(taps[static_cast<size_t>(c)], [&](int64_t i) { return rows[static_cast<size_t>((r * g_old + i) * dim + d)]; });
  return out;
}

namespace detail {

// The plan of one load: each model parameter ("destination") is assembled from one or more source
// arrays ("parts"), each with the shapes it may have and a function that writes its values where
// they belong in the destination's buffer. Sources are offered one by one; nothing reaches the
// model until finish() has found no problem.
template <class T, class D>
class WeightPlan {
 public:
  using Place = std::function<void(const std::vector<T>& src, T* dst)>;
  struct Part {
    std::string key;
    std::vector<std::vector<int64_t>> shapes;  // accepted; shapes[0] is the one messages name
    Place place;
    bool pos_embed = false;  // [1, 1 + g², dim] with any g, resized to the model's grid
    bool seen = false;
  };

  WeightPlan(std::string what, const WeightLoadOptions& options, WeightLoadReport& report)
      : what_(std::move(what)), options_(options), report_(report) {}

  void destination(const std::string& name, Tensor<T, D>& target, std::vector<Part> parts) {
    const size_t d = dests_.size();
    dests_.push_back({name, &target, {}});
    for (auto& p : parts) {
      VTS_CHECK(!part_of_.count(p.key), "weight loader: source key '", p.key, "' mapped twice");
      part_of_[p.key] = {d, parts_.size()};
      parts_.push_back(std::move(p));
    }
  }

  bool claims(const std::string& key) const { return part_of_.count(key) != 0; }
  // A claimed key whose data could not be read: its problem is already on the list, so it must
  // not also be reported as missing.
  void unreadable(const std::string& key) {
    const auto it = part_of_.find(key);
    if (it != part_of_.end()) parts_[it->second.second].seen = true;
  }
  void skip(const std::string& key) { report_.skipped.push_back(key); }
  ProblemList& problems() { return problems_; }

  // The position embeddings' grid as the model needs it, for resizing.
  void set_grid(int64_t grid, int64_t dim) {
    grid_ = grid;
    dim_ = dim;
  }

  void offer(const std::string& key, const Array& a) {
    const auto it = part_of_.find(key);
    if (it == part_of_.end()) {
      problems_.addf("unexpected key '", printable(key), "' (", dtype_name(a.dtype), " ", shape_str(a.shape), ")");
      return;
    }
    const auto [d, p] = it->second;
    Part& part = parts_[p];
    if (part.seen) {
      problems_.addf("key '", printable(key), "' occurs more than once");
      return;
    }
    part.seen = true;
    bool ok = true;
    if (!is_float_dtype(a.dtype)) {
      problems_.addf("key '", key, "' is ", dtype_name(a.dtype), ", expected float32, float16, bfloat16 or float64");
      ok = false;
    }
    bool shape_ok = false;
    for (const auto& s : part.shapes) shape_ok = shape_ok || a.shape == s;
    // The grid the source's position embeddings are laid out on (the model's when they match).
    int64_t g_old = grid_;
    if (!shape_ok && part.pos_embed) {
      g_old = resizable_grid(a.shape);
      shape_ok = g_old > 0;
    }
    if (!shape_ok) {
      std::string alt;
      for (size_t i = 1; i < part.shapes.size(); ++i) alt += " or " + shape_str(part.shapes[i]);
      if (part.pos_embed)
        alt += options_.resize_pos_embed ? concat(" or (1, 1 + g*g, ", dim_, ") to resize") : " (resizing is off)";
      problems_.addf("key '", key, "' has shape ", shape_str(a.shape), ", expected ", shape_str(part.shapes[0]), alt);
      ok = false;
    }
    if (!ok) return;
    Dest& dest = dests_[d];
    if (dest.buffer.empty()) dest.buffer.resize(static_cast<size_t>(dest.target->numel()));
    std::vector<T> values;
    if (part.pos_embed && g_old != grid_) {
      const std::vector<double> source = a.as<double>();
      if (const int64_t bad = count_non_finite(source); bad > 0) {
        problems_.add(non_finite_problem(key, bad, source.size()));
        return;
      }
      const std::vector<double> resized = resize_pos_embed(source, g_old, grid_, dim_);
      values.resize(resized.size());
      for (size_t i = 0; i < values.size(); ++i) values[i] = convert_value<T>(resized[i], static_cast<int64_t>(i));
      report_.pos_grid_from = g_old;
    } else {
      values = a.as<T>();
      if (const int64_t bad = count_non_finite(values); bad > 0) {
        problems_.add(non_finite_problem(key, bad, values.size()));
        return;
      }
    }
    part.place(values, dest.buffer.data());
  }

  // Fatal problems with the file as a whole (cannot open, corrupt directory): report and stop.
  [[noreturn]] void fail(const std::string& problem) {
    problems_.add(problem);
    problems_.throw_if_any(what_);
    throw IoError(what_);  // unreachable: the list is not empty
  }

  void finish() {
    for (const Part& p : parts_)
      if (!p.seen) problems_.addf("missing key '", p.key, "' (expected ", shape_str(p.shapes[0]), ")");
    problems_.throw_if_any(what_);
    NoGradGuard guard;
    for (Dest& d : dests_) {
      d.target->copy_(Tensor<T, D>::from_vector(d.buffer, d.target->shape()));
      std::vector<T>().swap(d.buffer);
    }
    report_.tensors = dests_.size();
    if (report_.pos_grid_from == 0) report_.pos_grid_from = grid_;
    report_.pos_grid_to = grid_;
  }

 private:
  struct Dest {
    std::string name;
    Tensor<T, D>* target;
    std::vector<T> buffer;
  };

  // g when `shape` is [1, 1 + g², dim] and resizing is on; 0 otherwise.
  int64_t resizable_grid(const std::vector<int64_t>& shape) const {
    if (!options_.resize_pos_embed || shape.size() != 3 || shape[0] != 1 || shape[2] != dim_ || shape[1] < 2) return 0;
    const int64_t rows = shape[1] - 1;
    int64_t g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(rows))));
    return g * g == rows ? g : 0;
  }

  std::string what_;
  const WeightLoadOptions& options_;
  WeightLoadReport& report_;
  std::vector<Dest> dests_;
  std::vector<Part> parts_;
  std::map<std::string, std::pair<size_t, size_t>> part_of_;
  ProblemList problems_;
  int64_t grid_ = 0, dim_ = 0;
};

// Writers of one source array into a destination buffer (row-major everywhere).
template <class T>
std::function<void(const std::vector<T>&, T*)> place_copy(size_t offset = 0) {
  return [offset](const std::vector<T>& src, T* dst) { std::copy(src.begin(), src.end(), dst + offset); };
}
// src [rows, cols] → dst[offset + c·rows + r] (a transpose, written at `offset`). In 32 × 32
// tiles, so that reads and writes both stay in cache lines already fetched: row by row, every
// write of a 768- or 3072-wide kernel landed in a different line, a third of the time of loading
// ViT-B/16's npz (docs/perf.md, "Loading a model").
template <class T>
std::function<void(const std::vector<T>&, T*)> place_transposed(int64_t rows, int64_t cols, size_t offset = 0) {
  return [=](const std::vector<T>& src, T* dst) {
    constexpr int64_t kTile = 32;
    T* out = dst + offset;
    for (int64_t r0 = 0; r0 < rows; r0 += kTile)
      for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
        for (int64_t c = c0; c < c1; ++c)
          for (int64_t r = r0; r < r1; ++r) out[c * rows + r] = src[static_cast<size_t>(r * cols + c)];
      }
  };
}
// HWIO convolution kernel (P, P, C, D) → our patch projection [D, C·P·P] in (channel, row, col)
// order, i.e. the PyTorch conv weight (D, C, P, P) flattened.
template <class T>
std::function<void(const std::vector<T>&, T*)> place_hwio(int64_t P, int64_t C, int64_t Dm) {
  return [=](const std::vector<T>& src, T* dst) {
    for (int64_t r = 0; r < P; ++r)
      for (int64_t q = 0; q < P; ++q)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t d = 0; d < Dm; ++d)
            dst[d * C * P * P + (c * P + r) * P + q] = src[static_cast<size_t>(((r * P + q) * C + c) * Dm + d)];
  };
}

// Splits "blocks.<i>.<rest>"; false for other names.
inline bool block_name(const std::string& name, int64_t& index, std::string& rest) {
  if (name.rfind("blocks.", 0) != 0) return false;
  const size_t dot = name.find('.', 7);
  if (dot == std::string::npos) return false;
  index = std::stoll(name.substr(7, dot - 7));
  rest = name.substr(dot + 1);
  return true;
}

template <class Config, class T, class D>
std::vector<typename WeightPlan<T, D>::Part> google_parts(const std::string& name) {
  using Part = typename WeightPlan<T, D>::Part;
  constexpr int64_t Dm = Config::dim, H = Config::heads, Dh = Config::dim / Config::heads, M = Config::mlp,
                    P = Config::patch, C = Config::channels, N = nn::ViT<Config, T, D>::tokens;
  auto copy = [](std::string key, std::vector<int64_t> shape) {
    return Part{std::move(key), {std::move(shape)}, place_copy<T>()};
  };
  if (name == "patch_embed.proj.weight") return {Part{"embedding/kernel", {{P, P, C, Dm}}, place_hwio<T>(P, C, Dm)}};
  if (name == "patch_embed.proj.bias") return {copy("embedding/bias", {Dm})};
  if (name == "cls_token") return {copy("cls", {1, 1, Dm})};
  if (name == "pos_embed") {
    Part p = copy("Transformer/posembed_input/pos_embedding", {1, N, Dm});
    p.pos_embed = true;
    return {p};
  }
  if (name == "norm.weight") return {copy("Transformer/encoder_norm/scale", {Dm})};
  if (name == "norm.bias") return {copy("Transformer/encoder_norm/bias", {Dm})};
  int64_t i = 0;
  std::string rest;
  if (block_name(name, i, rest)) {
    const std::string b = concat("Transformer/encoderblock_", i, "/");
    const std::string att = b + "MultiHeadDotProductAttention_1/";
    if (rest == "norm1.weight") return {copy(b + "LayerNorm_0/scale", {Dm})};
    if (rest == "norm1.bias") return {copy(b + "LayerNorm_0/bias", {Dm})};
    if (rest == "norm2.weight") return {copy(b + "LayerNorm_2/scale", {Dm})};
    if (rest == "norm2.bias") return {copy(b + "LayerNorm_2/bias", {Dm})};
    if (rest == "attn.qkv.weight" || rest == "attn.qkv.bias") {
      // Our packed projection holds q, k, v rows one after the other; each Flax kernel is
      // [in, heads, head_dim] = [in, out] with out = h·Dh + d, i.e. the transposed Linear weight.
      const bool weight = rest == "attn.qkv.weight";
      std::vector<Part> parts;
      const char* names[3] = {"query", "key", "value"};
      for (size_t s = 0; s < 3; ++s) {
        if (weight)
          parts.push_back(Part{att + names[s] + "/kernel", {{Dm, H, Dh}},
                               place_transposed<T>(Dm, Dm, s * static_cast<size_t>(Dm * Dm))});
        else
          parts.push_back(Part{att + names[s] + "/bias", {{H, Dh}}, place_copy<T>(s * static_cast<size_t>(Dm))});
      }
      return parts;
    }
    if (rest == "attn.proj.weight") return {Part{att + "out/kernel", {{H, Dh, Dm}}, place_transposed<T>(Dm, Dm)}};
    if (rest == "attn.proj.bias") return {copy(att + "out/bias", {Dm})};
    if (rest == "mlp.fc1.weight") return {Part{b + "MlpBlock_3/Dense_0/kernel", {{Dm, M}}, place_transposed<T>(Dm, M)}};
    if (rest == "mlp.fc1.bias") return {copy(b + "MlpBlock_3/Dense_0/bias", {M})};
    if (rest == "mlp.fc2.weight") return {Part{b + "MlpBlock_3/Dense_1/kernel", {{M, Dm}}, place_transposed<T>(M, Dm)}};
    if (rest == "mlp.fc2.bias") return {copy(b + "MlpBlock_3/Dense_1/bias", {Dm})};
  }
  throw Error(concat("load_google_npz: no Google key is known for model parameter '", name, "'"));
}

template <class Config, class T, class D>
std::vector<typename WeightPlan<T, D>::Part> timm_parts(const std::string& name, const std::vector<int64_t>& shape,
                                                       const std::string& prefix) {
  using Part = typename WeightPlan<T, D>::Part;
  Part p{prefix + name, {shape}, place_copy<T>()};
  // timm keeps the patch projection as the convolution's (D, C, P, P); ours is the same memory
  // flattened to [D, C·P·P]. Both are accepted, so a vts checkpoint's backbone loads too.
  if (name == "patch_embed.proj.weight")
    p.shapes.insert(p.shapes.begin(), {Config::dim, Config::channels, Config::patch, Config::patch});
  p.pos_embed = name == "pos_embed";
  return {p};
}

template <class Config, class T, class D>
void plan_model(WeightPlan<T, D>& plan, nn::ViT<Config, T, D>& model, WeightFormat format, const std::string& prefix) {
  plan.set_grid(nn::ViT<Config, T, D>::grid, Config::dim);
  model.visit("", [&](const std::string& name, Tensor<T, D>& t) {
    plan.destination(name, t,
                     format == WeightFormat::google_npz ? google_parts<Config, T, D>(name)
                                                        : timm_parts<Config, T, D>(name, t.shape().dims(), prefix));
  });
}

inline bool is_classifier_key(WeightFormat f, const std::string& key) {
  if (f == WeightFormat::google_npz) return starts_with(key, "head/") || starts_with(key, "pre_logits/");
  return starts_with(key, "head.") || starts_with(key, "pre_logits.");
}

template <class Config>
std::string load_title(WeightFormat f, const std::string& path) {
  return concat("pretrained weights '", path, "' (", format_name(f), ") for ViT<", Config::name, ">");
}

}  // namespace detail

// Reads the first bytes: a zip local-file or end-of-archive record → npz; an 8-byte length
// followed by '{' → safetensors. Anything else is an IoError naming what was found.
inline WeightFormat detect_format(const std::string& path) {
  detail::InputFile f(path);
  uint8_t head[9] = {};
  const size_t n = f.read(head, sizeof head);
  if (n >= 4 && head[0] == 'P' && head[1] == 'K' &&
      ((head[2] == 3 && head[3] == 4) || (head[2] == 5 && head[3] == 6)))
    return WeightFormat::google_npz;
  if (n == 9 && head[8] == '{') {
    uint64_t len = 0;
    for (int i = 7; i >= 0; --i) len = (len << 8) | head[i];
    if (len >= 2 && len <= f.size() - 8) return WeightFormat::timm_safetensors;
  }
  throw IoError(detail::concat("'", path, "' is neither an npz (zip) nor a safetensors file: it starts with \"",
                               detail::printable(std::string_view(reinterpret_cast<const char*>(head), n)), "\""));
}

template <class Config, class T, class D>
WeightLoadReport load_google_npz(nn::ViT<Config, T, D>& model, const std::string& path,
                                 const WeightLoadOptions& options = {}) {
  WeightLoadReport report;
  report.format = WeightFormat::google_npz;
  report.path = path;
  detail::WeightPlan<T, D> plan(detail::load_title<Config>(report.format, path), options, report);
  detail::plan_model(plan, model, report.format, "");
  std::unique_ptr<detail::ZipReader> zip;
  try {
    zip = std::make_unique<detail::ZipReader>(path);
  } catch (const IoError& e) {
    plan.fail(detail::concat("cannot read the file: ", e.what()));
  }
  std::set<std::string> keys;
  for (zip_uint64_t i = 0; i < zip->count(); ++i) {
    std::string key;
    try {
      const zip_stat_t st = zip->stat(i);
      if (detail::ZipReader::is_directory(st)) continue;
      key = detail::ZipReader::key_of(st.name);
      if (!keys.insert(key).second) {
        plan.problems().addf("key '", detail::printable(key), "' occurs more than once");
        continue;
      }
      const bool classifier = options.skip_classifier && detail::is_classifier_key(report.format, key);
      if (classifier && !options.keep_skipped) {
        plan.skip(key);  // not read at all: the in21k head alone is 67 MB
        continue;
      }
      Array a = zip->read(i);  // CRC-checked
      if (classifier) {
        plan.skip(key);
        report.skipped_arrays.emplace(key, std::move(a));
      } else {
        plan.offer(key, a);
      }
    } catch (const IoError& e) {
      // One unreadable member (bad CRC, truncated data, malformed npy header) is one problem.
      plan.problems().add(key.empty() ? std::string(e.what()) : detail::concat("key '", detail::printable(key), "': ", e.what()));
      plan.unreadable(key);
    }
  }
  plan.finish();
  return report;
}

template <class Config, class T, class D>
WeightLoadReport load_timm_safetensors(nn::ViT<Config, T, D>& model, const std::string& path,
                                       const WeightLoadOptions& options = {}) {
  WeightLoadReport report;
  report.format = WeightFormat::timm_safetensors;
  report.path = path;
  detail::WeightPlan<T, D> plan(detail::load_title<Config>(report.format, path), options, report);
  detail::plan_model(plan, model, report.format, options.prefix);
  std::optional<Safetensors> st;
  try {
    st.emplace(Safetensors::open(path));
  } catch (const IoError& e) {
    plan.fail(detail::concat("cannot read the file: ", e.what()));
  }
  for (const auto& [key, t] : st->tensors()) {
    const bool outside = !options.prefix.empty() && !detail::starts_with(key, options.prefix);
    const bool classifier =
        !outside && options.skip_classifier && detail::is_classifier_key(report.format, key.substr(options.prefix.size()));
    if (outside || classifier) {
      plan.skip(key);
      if (options.keep_skipped) report.skipped_arrays.emplace(key, t.to_array());
      continue;
    }
    plan.offer(key, t.to_array());
  }
  plan.finish();
  return report;
}

// Detects the format and loads. A safetensors file written by vts (it carries "vts" metadata) is
// read as a checkpoint: the backbone's tensors are under "model.backbone.".
template <class Config, class T, class D>
WeightLoadReport load_pretrained(nn::ViT<Config, T, D>& model, const std::string& path,
                                 WeightLoadOptions options = {}) {
  const WeightFormat f = detect_format(path);
  if (f == WeightFormat::google_npz) return load_google_npz(model, path, options);
  if (options.prefix.empty()) {
    // Only the header is parsed here; the data stay mapped, not read. A file that cannot be
    // opened is reported by the load itself, in the same form as every other problem.
    try {
      if (Safetensors::open(path).metadata().count("vts")) options.prefix = "model.backbone.";
    } catch (const IoError&) {
    }
  }
  return load_timm_safetensors(model, path, options);
}

}  // namespace vts::io
