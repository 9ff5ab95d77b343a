// libFuzzer target for the checkpoint and weight loaders (vts/io/checkpoint.hpp, vit_weights.hpp)
// on a small hash model: what `vts train --resume` (io::read_training_state), `vts encode` (the
// model alone, under "model.") and `vts train --pretrained` (io::load_pretrained into the ViT
// backbone) do with a file the user names. The input is written to a temporary file.
//
// Oracle: each load either throws vts::IoError, or succeeds; nothing else is thrown. A refused
// load changes nothing (every parameter, the optimizer's state, the loss's state and the dropout
// generator keep their bytes: "nothing was changed", as the messages say). A model loaded from the
// file holds the file's values (converted to float). The metadata readers (metadata_value,
// metadata_count) return a value or throw IoError for any JSON. Any other exception, a sanitizer
// report, an allocation past -malloc_limit_mb or a mismatch is a crash.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "vts/hash/trainer.hpp"
#include "vts/io/checkpoint.hpp"
#include "vts/io/vit_weights.hpp"

using vts_fuzz::fail;
namespace io = vts::io;

namespace {

// VTS_FUZZ_VERBOSE=1 says what each load did with the input (to read a reproducer).
void note(const char* what, const char* outcome, const std::string& detail = {}) {
  static const bool verbose = std::getenv("VTS_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "%s: %s%s%s\n", what, outcome, detail.empty() ? "" : ": ", detail.c_str());
}

// One 4x4 grey patch, one block: a few hundred weights, so checkpoints stay a few KB.
struct Tiny4 {
  static constexpr const char* name = "tiny4";
  static constexpr int64_t image = 4, channels = 1, patch = 4, dim = 8, depth = 1, heads = 2, mlp = 8;
};
using Net = vts::hash::HashNetwork<vts::nn::ViT<Tiny4>, vts::hash::AllTokenHead<4>>;
using Loss = vts::hash::loss::Dpn<>;  // memory bank, targets and tie bits: the most loss state
using Trainer = vts::hash::Trainer<Net, Loss>;
constexpr int64_t kBits = 8;

std::unique_ptr<Trainer> make_trainer(bool ema) {
  vts::Generator gen(7);
  Net net(kBits, gen);
  vts::hash::loss::Config cfg;
  cfg.bits = kBits;
  cfg.classes = 3;
  cfg.train_size = 4;
  Loss loss(cfg, gen);
  vts::hash::OptimizerOptions opt{.name = "adamw", .lr = 1e-3, .weight_decay = 0.05};
  auto t = std::make_unique<Trainer>(std::move(net), std::move(loss), opt, 11);
  if (ema) t->set_ema(0.9);
  return t;
}

using Bytes = std::map<std::string, std::vector<uint8_t>>;

void put(Bytes& out, const std::string& name, const vts::Tensor<float>& x) {
  const std::vector<float> v = x.to_vector();
  std::vector<uint8_t> b(v.size() * sizeof(float));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  out[name] = std::move(b);
}

// Every byte a training run owns: parameters, optimizer state, loss state, EMA, the generator.
Bytes everything(Trainer& t) {
  Bytes out;
  t.network().visit("model", [&](const std::string& n, vts::Tensor<float>& x) { put(out, n, x); });
  std::visit([&](auto& o) {
    for (const auto& [n, x] : o.state()) put(out, "optim." + n, x);
  }, t.optimizer());
  t.loss().state([&](const std::string& n, vts::Tensor<float>& x) { put(out, "loss." + n, x); });
  if (t.ema_enabled()) {
    auto ema = t.ema_weights();
    ema.visit("ema", [&](const std::string& n, vts::Tensor<float>& x) { put(out, n, x); });
    const int64_t steps = t.ema_steps();
    out["ema_steps"].assign(reinterpret_cast<const uint8_t*>(&steps), reinterpret_cast<const uint8_t*>(&steps) + 8);
  }
  const uint64_t rng[2] = {t.dropout_rng().seed(), t.dropout_rng().offset()};
  out["rng"].assign(reinterpret_cast<const uint8_t*>(rng), reinterpret_cast<const uint8_t*>(rng) + 16);
  return out;
}

Bytes parameters(Net& net, const std::string& prefix) {
  Bytes out;
  net.visit(prefix, [&](const std::string& n, vts::Tensor<float>& x) { put(out, n, x); });
  return out;
}

// The file's value of `name` as float bytes, as a loaded model must hold them.
std::vector<uint8_t> file_floats(const io::CheckpointReader& r, const std::string& name) {
  const std::vector<float> v = r.file().at(name).to_array().as<float>();
  std::vector<uint8_t> b(v.size() * sizeof(float));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

void metadata_readers(const nlohmann::json& m, const std::string& path) {
  auto attempt = [&](auto&& f) {
    try {
      (void)f();
    } catch (const vts::IoError&) {
    }
  };
  for (const char* key : {"config", "head", "loss", "dataset", "bits", "epoch", "seed", "flip_average", "lr",
                          "format_version"}) {
    attempt([&] { return io::metadata_value<std::string>(m, key, path, ""); });
    attempt([&] { return io::metadata_value<int64_t>(m, key, path, 0); });
    attempt([&] { return io::metadata_value<uint64_t>(m, key, path, 0); });
    attempt([&] { return io::metadata_value<int>(m, key, path, 0); });
    attempt([&] { return io::metadata_value<bool>(m, key, path, false); });
    attempt([&] { return io::metadata_value<double>(m, key, path, 0.0); });
    attempt([&] { return io::metadata_count(m, key, path, 0); });
  }
}

void write_seeds(const std::string& dir) {
  for (const bool ema : {false, true}) {
    auto t = make_trainer(ema);
    io::CheckpointWriter w;
    io::add_training_state(w, *t);
    w.metadata() = {{"config", Tiny4::name}, {"head", "all"}, {"loss", Loss::name}, {"bits", kBits},
                    {"epoch", 2},           {"dataset", "x"},  {"seed", 1},         {"flip_average", false}};
    w.write(dir + (ema ? "/last_ema.safetensors" : "/last.safetensors"));
  }
  {  // best.safetensors: the model alone, version 1
    auto t = make_trainer(false);
    io::CheckpointWriter w;
    w.add_layer("model", t->network());
    w.metadata() = {{"config", Tiny4::name}, {"bits", kBits}};
    w.write(dir + "/best.safetensors");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vts::cpu::set_num_threads(1);
  return vts_fuzz::write_seeds_if_asked(write_seeds);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = vts_fuzz::input_file("checkpoint", data, size);

  // vts train --pretrained FILE: the backbone alone; a refused file leaves it as it was.
  {
    auto t = make_trainer(false);
    const Bytes before = parameters(t->network(), "model");
    try {
      note("load_pretrained", "loaded", io::load_pretrained(t->network().backbone, path).summary());
    } catch (const vts::IoError& e) {
      note("load_pretrained", "refused", e.what());
      if (parameters(t->network(), "model") != before) fail("a refused load_pretrained changed the model");
    }
  }

  std::unique_ptr<io::CheckpointReader> reader;
  try {
    reader = std::make_unique<io::CheckpointReader>(path);
  } catch (const vts::IoError& e) {
    note("CheckpointReader", "refused", e.what());
    return 0;
  }
  metadata_readers(reader->metadata(), path);

  // vts train --resume: everything or nothing.
  for (const bool ema : {false, true}) {
    io::CheckpointReader r(path);  // it opened once, it opens again
    auto t = make_trainer(ema);
    const Bytes before = everything(*t);
    bool loaded = true;
    try {
      io::read_training_state(r, *t);
      r.commit();
    } catch (const vts::IoError& e) {
      note(ema ? "read_training_state (EMA on)" : "read_training_state", "refused", e.what());
      loaded = false;
    }
    const Bytes after = everything(*t);
    if (!loaded) {
      if (after != before) fail("a refused checkpoint changed the training state");
      continue;
    }
    for (const auto& [name, bytes] : parameters(t->network(), "model"))
      if (bytes != file_floats(r, name)) fail("a loaded parameter differs from the file");
    const std::vector<uint64_t> rng = r.file().at("rng.dropout").to_array().as<uint64_t>();
    if (rng.size() != 2 || t->dropout_rng().seed() != rng[0] || t->dropout_rng().offset() != rng[1])
      fail("the loaded generator differs from the file");
    note(ema ? "read_training_state (EMA on)" : "read_training_state", "loaded");
  }

  // vts encode: the model alone, the other keys of a last.safetensors ignored.
  {
    io::CheckpointReader r(path);
    auto t = make_trainer(false);
    const Bytes before = parameters(t->network(), "model");
    r.layer("model", t->network());
    for (const auto& [key, tensor] : r.file().tensors())
      if (key.rfind("model.", 0) != 0) r.ignore(key);
    try {
      r.commit();
    } catch (const vts::IoError& e) {
      note("model", "refused", e.what());
      if (parameters(t->network(), "model") != before) fail("a refused model load changed the model");
      return 0;
    }
    note("model", "loaded");
    for (const auto& [name, bytes] : parameters(t->network(), "model"))
      if (bytes != file_floats(r, name)) fail("a loaded parameter differs from the file");
  }
  return 0;
}
