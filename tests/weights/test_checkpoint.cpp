// Checkpoints (include/vts/io/checkpoint.hpp): what is written comes back exactly — parameters,
// optimizer state, loss state (banks, CSQ centers, DPN targets, tie bits), generators — and a
// checkpoint that does not fit is refused as a whole, with every mismatch in one message and the
// objects untouched.
#include <catch2/catch.hpp>

#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vts/hash/heads.hpp"
#include "vts/hash/losses.hpp"
#include "vts/io/checkpoint.hpp"
#include "vts/optim/optim.hpp"
#include "weights_test_util.hpp"

using namespace vts_weights_test;
using Catch::Matchers::Contains;
namespace io = vts::io;
namespace hl = vts::hash::loss;
using vts::Shape;
using Tf = vts::Tensor<float>;

namespace {

using CheckpointNet = vts::hash::HashNetwork<vts::nn::ViT<Tiny8>, vts::hash::AllTokenHead<8>>;

Tf batch_images(uint64_t seed) {
  vts::Generator g(seed);
  std::vector<float> v(4 * 64);
  for (float& x : v) x = static_cast<float>(g.next_double() * 2 - 1);
  return Tf::from_vector(v, Shape{4, 1, 8, 8});
}
Tf batch_labels() { return Tf::from_vector({1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0}, Shape{4, 3}); }

hl::Config loss_config(int64_t bits = 8) {
  hl::Config c;
  c.bits = bits;
  c.classes = 3;
  c.train_size = 10;
  return c;
}

// A few optimizer steps on the loss of one batch, so that parameters, Adam's moments, the banks
// and the generator all hold non-initial values.
template <class Loss, class Opt>
void train_steps(CheckpointNet& net, Loss& loss, Opt& opt, vts::Generator& rng, int steps) {
  vts::nn::Context ctx{true, &rng};
  for (int s = 0; s < steps; ++s) {
    const Tf l = loss(net.forward(batch_images(100 + s), ctx), batch_labels(), {1, 4, 7, 9}, 0);
    opt.zero_grad();
    l.backward();
    opt.step();
  }
}

template <class Stateful>
std::map<std::string, std::vector<float>> state_of(Stateful& s) {
  std::map<std::string, std::vector<float>> out;
  s.state([&](const std::string& name, Tf& t) { out[name] = t.to_vector(); });
  return out;
}
template <class Opt>
std::map<std::string, std::vector<float>> optim_state(const Opt& o) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, t] : o.state()) out[name] = t.to_vector();
  return out;
}

void save(const std::string& path, CheckpointNet& net, vts::optim::Adam<float>& opt, hl::Dsh<float>& loss, vts::Generator& g) {
  io::CheckpointWriter w;
  w.add_layer("model", net);
  w.add_optimizer("optim", opt);
  w.add_state("loss", loss);
  w.add_generator("rng.dropout", g);
  w.metadata() = {{"config", Tiny8::name}, {"loss", "dsh"}, {"bits", 8}, {"epoch", 3}};
  w.write(path);
}

}  // namespace

TEST_CASE("checkpoint: model, optimizer, loss banks and generator come back exactly", "[checkpoint]") {
  TempDir dir;
  vts::Generator gen(1), rng(77);
  CheckpointNet net(8, gen);
  hl::Dsh<float> loss(loss_config(), gen);
  vts::optim::Adam<float> opt(vts::nn::parameters(net), {.lr = 1e-2});
  train_steps(net, loss, opt, rng, 3);
  save(dir / "ckpt.safetensors", net, opt, loss, rng);

  vts::Generator gen2(2), rng2(5);
  CheckpointNet net2(8, gen2);
  hl::Dsh<float> loss2(loss_config(), gen2);
  vts::optim::Adam<float> opt2(vts::nn::parameters(net2), {.lr = 1e-2});
  REQUIRE(snapshot(net2) != snapshot(net));

  io::CheckpointReader r(dir / "ckpt.safetensors");
  CHECK(r.version() == io::kCheckpointVersion);
  CHECK(r.metadata().at("epoch") == 3);
  r.expect_metadata("config", Tiny8::name);
  r.layer("model", net2);
  r.optimizer("optim", opt2);
  r.loss("loss", loss2);
  r.generator("rng.dropout", rng2);
  r.commit();

  CHECK(snapshot(net2) == snapshot(net));
  CHECK(optim_state(opt2) == optim_state(opt));
  CHECK(opt2.steps() == 3);
  CHECK(state_of(loss2) == state_of(loss));
  CHECK(rng2.seed() == rng.seed());
  CHECK(rng2.offset() == rng.offset());
  // The optimizer still updates the model's own tensors (restored in place, not replaced), so the
  // two runs stay identical when they continue.
  train_steps(net, loss, opt, rng, 2);
  train_steps(net2, loss2, opt2, rng2, 2);
  CHECK(snapshot(net2) == snapshot(net));
}

TEST_CASE("checkpoint: CSQ centers, DPN targets and the tie bits are saved and restored", "[checkpoint][loss]") {
  TempDir dir;
  // 20 classes > 2K = 16 with K = 8: CSQ draws random rows beyond the Hadamard ones; multi-label
  // turns on the (random) tie bits. Different seeds give different draws.
  hl::Config c = loss_config();
  c.classes = 20;
  c.multi_label = true;
  vts::Generator g1(1), g2(2);
  hl::Csq<float> csq(c, g1), csq2(c, g2);
  hl::Dpn<float> dpn(c, g1), dpn2(c, g2);
  REQUIRE(csq.assigner().centers() != csq2.assigner().centers());
  REQUIRE(dpn.targets() != dpn2.targets());
  REQUIRE(csq.assigner().tie_bits() != csq2.assigner().tie_bits());
  // DPN-A rewrites its targets from the bank at the end of an epoch; those must be kept too.
  dpn.adaptive_targets = true;
  const Tf u = Tf::from_vector(std::vector<float>(4 * 8, 2.0f), Shape{4, 8});
  std::vector<float> onehot(4 * 20, 0.0f);
  for (int i = 0; i < 4; ++i) onehot[static_cast<size_t>(i * 20 + i)] = 1.0f;  // classes 0..3
  dpn(u, Tf::from_vector(onehot, Shape{4, 20}), {0, 1, 2, 3}, 0);
  dpn.end_epoch();

  io::CheckpointWriter w;
  w.add_state("csq", csq);
  w.add_state("dpn", dpn);
  w.metadata() = {{"loss", "csq+dpn"}};
  w.write(dir / "loss.safetensors");
  CHECK(w.arrays().count("csq.centers"));
  CHECK(w.arrays().count("csq.tie_bits"));
  CHECK(w.arrays().count("dpn.targets"));

  io::CheckpointReader r(dir / "loss.safetensors");
  r.loss("csq", csq2);
  r.loss("dpn", dpn2);
  r.commit();
  CHECK(csq2.assigner().centers() == csq.assigner().centers());
  CHECK(csq2.assigner().tie_bits() == csq.assigner().tie_bits());
  CHECK(dpn2.targets() == dpn.targets());
  CHECK(dpn2.assigner().tie_bits() == dpn.assigner().tie_bits());
  CHECK(state_of(dpn2) == state_of(dpn));
}

TEST_CASE("checkpoint: a checkpoint that does not fit is refused whole, listing every problem", "[checkpoint][errors]") {
  TempDir dir;
  vts::Generator gen(1), rng(77);
  CheckpointNet net(8, gen);
  hl::Dsh<float> loss(loss_config(), gen);
  vts::optim::Adam<float> opt(vts::nn::parameters(net), {.lr = 1e-2});
  train_steps(net, loss, opt, rng, 2);
  save(dir / "ckpt.safetensors", net, opt, loss, rng);

  // A run set up differently: 16 bits (the head's last layer and the bank change shape), CSQ
  // instead of DSH, SGD with momentum instead of Adam, and a generator it has to keep.
  vts::Generator gen2(2), rng2(5);
  CheckpointNet net2(16, gen2);
  hl::Csq<float> csq(loss_config(16), gen2);
  vts::optim::Sgd<float> sgd(vts::nn::parameters(net2), {.lr = 1e-2, .momentum = 0.9});
  train_steps(net2, csq, sgd, rng2, 1);
  const auto net_before = snapshot(net2);
  const auto csq_before = state_of(csq);
  const auto sgd_before = optim_state(sgd);
  const uint64_t offset_before = rng2.offset();

  io::CheckpointReader r(dir / "ckpt.safetensors");
  r.expect_metadata("config", Tiny8::name);  // fits
  r.expect_metadata("bits", 16);
  r.expect_metadata("loss", "csq");
  r.layer("model", net2);
  r.optimizer("optim", sgd);
  r.loss("loss", csq);
  r.generator("rng.dropout", rng2);
  try {
    r.commit();
    FAIL("commit accepted a mismatched checkpoint");
  } catch (const vts::IoError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK_THAT(msg, Contains("9 problems; nothing was changed"));
    CHECK_THAT(msg, Contains("metadata 'bits' is 8, expected 16"));
    CHECK_THAT(msg, Contains("metadata 'loss' is \"dsh\", expected \"csq\""));
    CHECK_THAT(msg, Contains("tensor 'model.hash_head.fc2.weight' has shape (8, 8), expected (16, 8)"));
    CHECK_THAT(msg, Contains("tensor 'model.hash_head.fc2.bias' has shape (8,), expected (16,)"));
    CHECK_THAT(msg, Contains("optimizer state under 'optim.'"));
    CHECK_THAT(msg, Contains("missing tensor 'loss.centers'"));
    CHECK_THAT(msg, Contains("missing tensor 'loss.tie_bits'"));
    CHECK_THAT(msg, Contains("unexpected tensor 'loss.U' (float32 (10, 8))"));
    CHECK_THAT(msg, Contains("unexpected tensor 'loss.Y'"));
  }
  CHECK(snapshot(net2) == net_before);
  CHECK(state_of(csq) == csq_before);
  CHECK(optim_state(sgd) == sgd_before);
  CHECK(rng2.offset() == offset_before);
}

// A model of the researcher's own whose visit() names two layers alike: the writer refuses it,
// and reading must refuse it too instead of filling both layers from the one stored tensor.
namespace {
struct SameNamePair {
  using tensor_type = Tf;
  vts::nn::Linear<> first, second;
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    first.visit(vts::nn::join(prefix, "fc"), f);
    second.visit(vts::nn::join(prefix, "fc"), f);  // the slip: should be "fc2"
  }
};
}  // namespace

TEST_CASE("checkpoint: a model that names two tensors alike is refused on reading", "[checkpoint][errors]") {
  TempDir dir;
  vts::Generator gen(1);
  vts::nn::Linear<> saved(3, 2, gen);
  io::CheckpointWriter w;
  w.add_layer("model.fc", saved);
  w.write(dir / "ckpt.safetensors");

  SameNamePair pair{vts::nn::Linear<>(3, 2, gen), vts::nn::Linear<>(3, 2, gen)};
  io::CheckpointWriter refused;
  CHECK_THROWS_WITH(refused.add_layer("model", pair), Contains("'model.fc.weight' added twice"));

  const auto second_before = pair.second.weight.to_vector();
  io::CheckpointReader r(dir / "ckpt.safetensors");
  r.layer("model", pair);
  CHECK_THROWS_WITH(r.commit(), Contains("tensor 'model.fc.weight' is registered twice") &&
                                    Contains("tensor 'model.fc.bias' is registered twice") &&
                                    Contains("nothing was changed"));
  CHECK(pair.second.weight.to_vector() == second_before);
}

TEST_CASE("checkpoint: values a loss rejects are a problem, not a half-restored loss", "[checkpoint][errors]") {
  TempDir dir;
  vts::Generator g(1);
  hl::Csq<float> csq(loss_config(), g);
  vts::Generator rng(3);
  io::CheckpointWriter w;
  w.add_state("loss", csq);
  // Tamper: a center entry of 0.5 is no center.
  io::Array centers = w.arrays().at("loss.centers");
  std::vector<float> v = centers.as<float>();
  v[5] = 0.5f;
  std::map<std::string, io::Array> arrays = w.arrays();
  arrays["loss.centers"] = io::make_array(v, centers.shape);
  arrays["rng"] = io::make_array(std::vector<uint32_t>{1, 2}, {2});  // wrong dtype for a generator
  io::write_safetensors(dir / "bad.safetensors", arrays, {{"vts", R"({"format_version": 2})"}});

  hl::Csq<float> target(loss_config(), g);
  const auto before = target.assigner().centers();
  const auto bits_before = target.assigner().tie_bits();
  io::CheckpointReader r(dir / "bad.safetensors");
  r.loss("loss", target);
  r.generator("rng", rng);
  CHECK_THROWS_WITH(r.commit(), Contains("entries must be -1, 0 or 1") && Contains("2 problems") &&
                                    Contains("generator state 'rng' is uint32 (2,), expected uint64 (2,)"));
  CHECK(target.assigner().centers() == before);
  CHECK(target.assigner().tie_bits() == bits_before);
}

TEST_CASE("checkpoint: NaN or Inf weights are a problem naming the tensor and the count", "[checkpoint][errors]") {
  TempDir dir;
  vts::Generator gen(1), rng(2);
  CheckpointNet net(8, gen);
  hl::Dsh<float> loss(loss_config(), gen);
  vts::optim::Adam<float> opt(vts::nn::parameters(net), {.lr = 1e-2});
  save(dir / "ok.safetensors", net, opt, loss, rng);
  std::map<std::string, io::Array> arrays = io::read_safetensors(dir / "ok.safetensors");
  std::vector<float> w = arrays.at("model.hash_head.fc2.weight").as<float>();
  w[0] = std::numeric_limits<float>::quiet_NaN();
  w[5] = std::numeric_limits<float>::infinity();
  w[9] = -std::numeric_limits<float>::infinity();
  arrays["model.hash_head.fc2.weight"] = io::make_array(w, arrays.at("model.hash_head.fc2.weight").shape);
  io::write_safetensors(dir / "nan.safetensors", arrays, {{"vts", R"({"format_version": 2})"}});

  vts::Generator gen2(3);
  CheckpointNet target(8, gen2);
  const auto before = snapshot(target);
  io::CheckpointReader r(dir / "nan.safetensors");
  r.layer("model", target);
  r.ignore("optim.");
  r.ignore("loss.");
  r.ignore("rng.");
  CHECK_THROWS_WITH(r.commit(), Contains("1 problem") &&
                                    Contains("tensor 'model.hash_head.fc2.weight' holds 3 non-finite values (NaN or "
                                             "Inf) among 64"));
  CHECK(snapshot(target) == before);
}

// The reader converts a stored tensor straight from the file's mapping into a contiguous CPU
// target, and through a copy into any other; NaN and Inf in an f64 tensor are counted a slice of
// 16,384 converted values at a time (checkpoint.hpp), so a tensor of several slices must have all
// of them counted.
TEST_CASE("checkpoint: stored f64, f16 and bf16 tensors load converted, into contiguous and strided targets",
          "[checkpoint]") {
  TempDir dir;
  const int64_t rows = 130, cols = 300;  // 39,000 values: two whole slices and part of a third
  std::vector<double> wide(static_cast<size_t>(rows * cols));
  std::vector<uint16_t> halves(wide.size()), brains(wide.size());
  for (size_t i = 0; i < wide.size(); ++i) {
    wide[i] = (static_cast<double>(i % 997) - 498.0) / 64.0 + 1e-12 * static_cast<double>(i);  // not a float
    halves[i] = static_cast<uint16_t>(0x3C00u + (i % 1024));  // f16 1.0 to 1.999
    brains[i] = static_cast<uint16_t>(0xBF80u + (i % 128));   // bf16 -1.0 to -1.99
  }
  auto with_dtype = [&](std::vector<uint16_t>& bits, io::DType dtype) {
    io::Array a = io::make_array(bits, {rows, cols});
    a.dtype = dtype;
    return a;
  };
  std::map<std::string, io::Array> arrays{{"wide", io::make_array(wide, {rows, cols})},
                                          {"half", with_dtype(halves, io::DType::f16)},
                                          {"brain", with_dtype(brains, io::DType::bf16)},
                                          {"strided", io::make_array(wide, {rows, cols})}};
  io::write_safetensors(dir / "mixed.safetensors", arrays, {{"vts", R"({"format_version": 2})"}});

  Tf wide_t = Tf::zeros(Shape{rows, cols}), half_t = Tf::zeros(Shape{rows, cols}), brain_t = Tf::zeros(Shape{rows, cols});
  Tf base = Tf::zeros(Shape{cols, rows});
  Tf strided_t = base.transpose(0, 1);  // rows × cols, not contiguous
  io::CheckpointReader r(dir / "mixed.safetensors");
  r.tensor("wide", wide_t);
  r.tensor("half", half_t);
  r.tensor("brain", brain_t);
  r.tensor("strided", strided_t);
  r.commit();
  const auto expect = [&](const io::Array& a) { return a.as<float>(); };
  CHECK(wide_t.to_vector() == expect(arrays.at("wide")));
  CHECK(half_t.to_vector() == expect(arrays.at("half")));
  CHECK(brain_t.to_vector() == expect(arrays.at("brain")));
  CHECK(strided_t.contiguous_nograd().to_vector() == expect(arrays.at("strided")));
  CHECK(half_t.at({0, 1}) == Approx(1.0 + 1.0 / 1024));
  CHECK(brain_t.at({0, 1}) == Approx(-(1.0 + 1.0 / 128)));

  // One NaN in each slice, and an f64 value beyond float's range (Inf once converted).
  std::vector<double> bad = wide;
  for (size_t i : {size_t(5), size_t(16384 + 7), size_t(2 * 16384 + 11)}) bad[i] = std::numeric_limits<double>::quiet_NaN();
  bad[wide.size() - 1] = 1e300;
  io::write_safetensors(dir / "bad.safetensors", {{"wide", io::make_array(bad, {rows, cols})}},
                        {{"vts", R"({"format_version": 2})"}});
  Tf target = Tf::zeros(Shape{rows, cols});
  io::CheckpointReader rb(dir / "bad.safetensors");
  rb.tensor("wide", target);
  CHECK_THROWS_WITH(rb.commit(), Contains("tensor 'wide' holds 4 non-finite values (NaN or Inf) among 39000"));
  CHECK(target.to_vector() == std::vector<float>(wide.size(), 0.0f));
}

// f32, bf16 and f16 values convert to float and double exactly, so the reader counts NaN and Inf
// in them from the exponent bits, without converting, and on the library's threads, one
// contiguous share each of at least 65,536 values (checkpoint.hpp), as it converts at commit.
// 200,003 values, specials at both ends and at every multiple of 65,536 and the value before it,
// so a share that drops or repeats an end miscounts at any thread count. The largest finite
// values, subnormals and -0 must not count; NaN of either sign with any payload and both
// infinities must.
TEST_CASE("checkpoint: NaN and Inf are counted from the bits of f32, bf16 and f16 values, at every share's ends",
          "[checkpoint][errors]") {
  TempDir dir;
  const int64_t n = 200003;
  const std::vector<size_t> spots = {0, 65535, 65536, 131071, 131072, 196607, 196608, size_t(n - 1)};
  struct Format {
    const char* name;
    io::DType dtype;
    uint32_t one, largest, subnormal, negative_zero, inf, negative_inf, nan, negative_nan_with_payload;
  };
  const Format formats[] = {
      {"f32", io::DType::f32, 0x3F800000u, 0x7F7FFFFFu, 0x00000001u, 0x80000000u, 0x7F800000u, 0xFF800000u,
       0x7FC00000u, 0xFFC00123u},
      {"bf16", io::DType::bf16, 0x3F80u, 0x7F7Fu, 0x0001u, 0x8000u, 0x7F80u, 0xFF80u, 0x7FC0u, 0xFF81u},
      {"f16", io::DType::f16, 0x3C00u, 0x7BFFu, 0x0001u, 0x8000u, 0x7C00u, 0xFC00u, 0x7E00u, 0xFC01u}};
  for (const Format& f : formats) {
    const uint32_t specials[] = {f.inf, f.negative_inf, f.nan, f.negative_nan_with_payload};
    std::vector<uint32_t> clean(static_cast<size_t>(n));
    for (size_t i = 0; i < clean.size(); ++i)
      clean[i] = i % 3 == 0 ? f.largest : i % 3 == 1 ? f.subnormal : (i % 7 == 0 ? f.negative_zero : f.one);
    std::vector<uint32_t> bad = clean;
    for (size_t k = 0; k < spots.size(); ++k) bad[spots[k]] = specials[k % 4];
    const auto array_of = [&](const std::vector<uint32_t>& bits) {
      io::Array a;
      if (f.dtype == io::DType::f32) {
        a = io::make_array(bits, {n});
      } else {
        a = io::make_array(std::vector<uint16_t>(bits.begin(), bits.end()), {n});
      }
      a.dtype = f.dtype;
      return a;
    };
    const std::string clean_file = std::string(f.name) + "_clean.safetensors";
    const std::string bad_file = std::string(f.name) + "_bad.safetensors";
    io::write_safetensors(dir / clean_file, {{"w", array_of(clean)}}, {{"vts", R"({"format_version": 2})"}});
    io::write_safetensors(dir / bad_file, {{"w", array_of(bad)}}, {{"vts", R"({"format_version": 2})"}});
    INFO(f.name);

    // Clean: loads, and the threads' conversion gives Array::as's values, into float and double.
    Tf into_float = Tf::zeros(Shape{n});
    vts::Tensor<double> into_double = vts::Tensor<double>::zeros(Shape{n});
    io::CheckpointReader r(dir / clean_file);
    r.tensor("w", into_float);
    r.commit();
    io::CheckpointReader rd(dir / clean_file);
    rd.tensor("w", into_double);
    rd.commit();
    CHECK(into_float.to_vector() == array_of(clean).as<float>());
    CHECK(into_double.to_vector() == array_of(clean).as<double>());

    // With the specials: all 8 counted, for a float and a double target; nothing written.
    Tf target = Tf::zeros(Shape{n});
    io::CheckpointReader rb(dir / bad_file);
    rb.tensor("w", target);
    CHECK_THROWS_WITH(rb.commit(), Contains("tensor 'w' holds 8 non-finite values (NaN or Inf) among 200003"));
    CHECK(target.to_vector() == std::vector<float>(static_cast<size_t>(n), 0.0f));
    vts::Tensor<double> target_double = vts::Tensor<double>::zeros(Shape{n});
    io::CheckpointReader rbd(dir / bad_file);
    rbd.tensor("w", target_double);
    CHECK_THROWS_WITH(rbd.commit(), Contains("tensor 'w' holds 8 non-finite values (NaN or Inf) among 200003"));
  }
}

TEST_CASE("checkpoint: metadata of the wrong type names the file, the key, the type and the value",
          "[checkpoint][errors]") {
  const nlohmann::json m = {{"bits", 64},   {"flip", "yes"}, {"seed", -1},    {"map", 0.5},
                            {"name", "csq"}, {"huge", uint64_t(1) << 63}};
  CHECK(io::metadata_value<int64_t>(m, "bits", "f") == 64);
  CHECK(io::metadata_value<double>(m, "map", "f") == 0.5);
  CHECK(io::metadata_value<double>(m, "bits", "f") == 64.0);
  CHECK(io::metadata_value<std::string>(m, "name", "f") == "csq");
  CHECK(io::metadata_value<bool>(m, "absent", "f", true));
  CHECK_THROWS_WITH(io::metadata_value<bool>(m, "flip", "run/best.safetensors"),
                    Contains("checkpoint 'run/best.safetensors': metadata 'flip': expected true or false, found "
                             "\"yes\" (string)"));
  CHECK_THROWS_WITH(io::metadata_value<std::string>(m, "bits", "f"),
                    Contains("'bits': expected a string, found 64 (number)"));
  CHECK_THROWS_WITH(io::metadata_value<int64_t>(m, "map", "f"), Contains("'map': expected a whole number, found 0.5"));
  CHECK_THROWS_WITH(io::metadata_value<uint64_t>(m, "seed", "f"),
                    Contains("'seed': expected a whole number from 0 to"));
  CHECK_THROWS_WITH(io::metadata_value<int64_t>(m, "huge", "f"),
                    Contains("'huge': expected a whole number from -9223372036854775808 to 9223372036854775807"));
  CHECK_THROWS_WITH(io::metadata_value<int64_t>(m, "absent", "f"),
                    Contains("'absent': expected a whole number, found no such key"));
  CHECK_THROWS_AS(io::metadata_value<int64_t>(m, "flip", "f", 3), vts::IoError);  // present: no fallback
}

TEST_CASE("checkpoint: files that are not readable vts checkpoints are refused on open", "[checkpoint][errors]") {
  TempDir dir;
  CHECK_THROWS_WITH(io::CheckpointReader(golden("vit_golden32.safetensors")), Contains("no \"vts\" metadata"));
  io::write_safetensors(dir / "future.safetensors", {}, {{"vts", R"({"format_version": 99})"}});
  CHECK_THROWS_WITH(io::CheckpointReader(dir / "future.safetensors"), Contains("format_version 99"));
  // 2^32 + 1 is 1 as an int: compared before it is narrowed (fuzz_checkpoint's reading of the code).
  io::write_safetensors(dir / "wrapped.safetensors", {}, {{"vts", R"({"format_version": 4294967297})"}});
  CHECK_THROWS_WITH(io::CheckpointReader(dir / "wrapped.safetensors"), Contains("format_version 4294967297 is not"));
  io::write_safetensors(dir / "old.safetensors", {}, {{"vts", R"({"format_version": 0})"}});
  CHECK_THROWS_WITH(io::CheckpointReader(dir / "old.safetensors"), Contains("format_version 0 is not"));
  io::write_safetensors(dir / "junk.safetensors", {}, {{"vts", "not json"}});
  CHECK_THROWS_WITH(io::CheckpointReader(dir / "junk.safetensors"), Contains("not valid JSON"));

  vts::Generator gen(1), rng(2);
  CheckpointNet net(8, gen);
  hl::Dsh<float> loss(loss_config(), gen);
  vts::optim::Adam<float> opt(vts::nn::parameters(net), {.lr = 1e-2});
  save(dir / "ok.safetensors", net, opt, loss, rng);
  auto bytes = read_bytes(dir / "ok.safetensors");
  bytes.resize(bytes.size() - 1);
  write_bytes(dir / "cut.safetensors", bytes);
  CHECK_THROWS_AS(io::CheckpointReader(dir / "cut.safetensors"), vts::IoError);
}

TEST_CASE("checkpoint: saving replaces the file whole and leaves no temporary behind", "[checkpoint]") {
  TempDir dir;
  vts::Generator gen(1), rng(2);
  CheckpointNet net(8, gen);
  hl::Dsh<float> loss(loss_config(), gen);
  vts::optim::Adam<float> opt(vts::nn::parameters(net), {.lr = 1e-2});
  save(dir / "last.safetensors", net, opt, loss, rng);
  train_steps(net, loss, opt, rng, 1);
  save(dir / "last.safetensors", net, opt, loss, rng);
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path)) {
    ++files;
    CHECK(e.path().filename() == "last.safetensors");
  }
  CHECK(files == 1);
  io::CheckpointReader r(dir / "last.safetensors");
  CHECK(r.file().at("optim.step").to_array().as<float>() == std::vector<float>{1.0f});
}

TEST_CASE("checkpoint: the writer reads its tensors at write(), strided ones in C order, and refuses changed ones",
          "[checkpoint]") {
  TempDir dir;
  vts::Generator gen(1), rng(2);
  CheckpointNet net(8, gen);
  hl::Dsh<float> loss(loss_config(), gen);
  vts::optim::Adam<float> opt(vts::nn::parameters(net), {.lr = 1e-2});
  train_steps(net, loss, opt, rng, 2);

  // The optimizer's uncopied view names the same tensors with the same values as its copies, and
  // its buffers are the optimizer's own; state()'s are not.
  const auto view = opt.state_view();
  const auto copies = opt.state();
  REQUIRE(view.size() == copies.size());
  for (size_t i = 0; i < view.size(); ++i) {
    INFO(view[i].first);
    CHECK(view[i].first == copies[i].first);
    CHECK(view[i].second.to_vector() == copies[i].second.to_vector());
  }
  REQUIRE(view[2].first == "0.exp_avg");  // 0: "step", 1: "0.step"
  CHECK(view[2].second.data() == opt.buffer(0, "exp_avg").data());
  CHECK(copies[2].second.data() != opt.buffer(0, "exp_avg").data());

  const Tf m = Tf::from_vector({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  const Tf mt = m.transpose(0, 1);  // (3, 2), strided
  REQUIRE(!mt.is_contiguous());
  auto writer = [&] {
    auto w = std::make_unique<io::CheckpointWriter>();
    w->add_layer("model", net);
    w->add_optimizer("optim", opt);
    w->add("extra.transposed", mt);
    return w;
  };
  const auto w = writer();
  w->write(dir / "ckpt.safetensors");
  io::CheckpointReader r(dir / "ckpt.safetensors");
  CHECK(r.file().at("extra.transposed").shape == std::vector<int64_t>{3, 2});
  CHECK(r.file().at("extra.transposed").as<float>() == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK(r.file().at("model.hash_head.fc1.weight").as<float>() == net.head.fc1.weight.to_vector());
  CHECK(r.file().at("optim.step").as<float>() == std::vector<float>{2.0f});
  for (const auto& [name, t] : opt.state()) {
    INFO(name);
    CHECK(r.file().at("optim." + name).as<float>() == t.to_vector());
  }
  const io::Array transposed = io::to_array(mt);  // the same C order outside the writer
  CHECK(transposed.shape == std::vector<int64_t>{3, 2});
  CHECK(transposed.as<float>() == std::vector<float>{1, 4, 2, 5, 3, 6});
  // arrays() copies what write() writes.
  const std::map<std::string, io::Array> arrays = w->arrays();
  CHECK(arrays.at("extra.transposed").as<float>() == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK(arrays.at("optim.0.exp_avg").as<float>() == opt.buffer(0, "exp_avg").to_vector());
  const std::vector<uint8_t> saved = read_bytes(dir / "ckpt.safetensors");

  // A training step between add() and write() would leave the old step counts beside new weights:
  // refused, naming a tensor, and the file written before stays.
  const auto stale = writer();
  io::CheckpointWriter stale_optimizer;  // its buffers, without the parameters they move with
  stale_optimizer.add_optimizer("optim", opt);
  train_steps(net, loss, opt, rng, 1);
  CHECK_THROWS_WITH(stale->write(dir / "ckpt.safetensors"),
                    Contains("checkpoint: tensor 'model.") && Contains("was written to after it was added"));
  CHECK_THROWS_WITH(stale_optimizer.write(dir / "ckpt.safetensors"),
                    Contains("checkpoint: tensor 'optim.") && Contains("was written to after it was added"));
  const auto filled = writer();
  {
    vts::NoGradGuard no_grad;
    net.head.fc1.weight.fill_(0.25f);
  }
  CHECK_THROWS_WITH(filled->write(dir / "ckpt.safetensors"), Contains("'model.hash_head.fc1.weight' was written to"));
  CHECK(read_bytes(dir / "ckpt.safetensors") == saved);
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator()) == 1);
  writer()->write(dir / "ckpt.safetensors");
  io::CheckpointReader again(dir / "ckpt.safetensors");
  const auto fc1 = again.file().at("model.hash_head.fc1.weight").as<float>();
  CHECK(fc1 == std::vector<float>(static_cast<size_t>(net.head.fc1.weight.numel()), 0.25f));
  CHECK(again.file().at("optim.step").as<float>() == std::vector<float>{3.0f});
}
