// vts_bench_eval — time of vts::eval::evaluate (mAP over the whole ranking, optionally the full PR
// curve) for a query set against a database, as a training run's evaluation would call it.
// Codes are drawn near one random prototype per class (25% of bits flipped), so relevance and
// mAP are realistic rather than 1/C. Prints one JSON line.
//
//   vts_bench_eval --n 64000 --queries 1000 --bits 64 --classes 10 --threads 2 [--pr]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>

#include "bench_cli.hpp"
#include "vts/core/rng.hpp"
#include "vts/eval/retrieval.hpp"

namespace {

struct Data {
  vts::index::PackedCodes codes;
  vts::index::Labels labels;
};

Data make(vts::Generator& g, const vts::index::PackedCodes& protos, int64_t n, int64_t classes) {
  const int64_t bytes = protos.code_bytes();
  Data d{vts::index::PackedCodes(n, protos.bits()), vts::index::Labels(n, classes)};
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = static_cast<int64_t>(g.next_below(static_cast<uint64_t>(classes)));
    d.labels.set(i, c);
    for (int64_t b = 0; b < bytes; ++b) {
      // Each bit flipped with probability 1/4: AND of two random bytes.
      const uint8_t flip = static_cast<uint8_t>(g.next_u32() & g.next_u32());
      d.codes.code(i)[b] = protos.code(c)[b] ^ flip;
    }
  }
  return d;
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"vts::eval::evaluate timing: mAP (and PR) over the whole database"};
  int64_t n = 64000, nq = 1000, bits = 64, classes = 10;
  int threads = 0, repeat = 3;
  bool pr = false;
  app.add_option("--n", n, "database items")->check(vts_bench::whole_number(1));
  app.add_option("--queries", nq, "queries")->check(vts_bench::whole_number(1));
  app.add_option("--bits", bits, "code length K (multiple of 8)")->check(vts_bench::whole_number(8, 8));
  app.add_option("--classes", classes, "classes (single label)")->check(vts_bench::whole_number(1));
  app.add_option("--threads", threads, "threads (0 = OpenMP default)")->check(vts_bench::whole_number(0));
  app.add_option("--repeat", repeat, "timed runs after a warm-up; the best is reported")->check(vts_bench::whole_number(1));
  app.add_flag("--pr", pr, "also compute the full precision-recall curve");
  CLI11_PARSE(app, argc, argv);

  vts::Generator g(77);
  vts::index::PackedCodes protos(classes, bits);
  for (int64_t i = 0; i < classes * protos.code_bytes(); ++i) protos.data()[i] = static_cast<uint8_t>(g.next_u32());
  const Data db = make(g, protos, n, classes);
  const Data q = make(g, protos, nq, classes);

  vts::eval::EvalOptions opt;
  opt.topk = -1;
  opt.pr_curve = pr;
  opt.search.threads = threads;
  vts::eval::EvalResult r;
  double best = 1e300;
  for (int i = 0; i <= repeat; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    r = vts::eval::evaluate(q.codes, q.labels, db.codes, db.labels, opt);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) best = std::min(best, s);  // run 0 is the warm-up
  }
  nlohmann::json j;
  j["bench"] = "eval";
  j["n"] = n;
  j["queries"] = nq;
  j["bits"] = bits;
  j["classes"] = classes;
  j["threads"] = vts::index::detail::resolve_threads(threads);
  j["pr_curve"] = pr;
  j["seconds"] = best;
  j["map"] = r.map;
  j["isa"] = vts::index::isa_name(vts::index::best_isa());
  std::cout << j.dump() << std::endl;
  return 0;
}

int main(int argc, char** argv) { return vts_bench::run_reporting_errors("vts_bench_eval", run, argc, argv); }
