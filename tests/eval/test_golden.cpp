// Golden check against tests/golden/make_eval_golden.py: numpy's §4.3/§4.4 with a stable argsort.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "vts/eval/retrieval.hpp"
#include "vts/io/npy.hpp"

using namespace vts;
using namespace vts::eval;

namespace {

io::Array load(const std::string& name) { return io::read_npy(std::string(VTS_TEST_DATA_DIR) + "/eval/" + name + ".npy"); }

struct Case {
  index::PackedCodes q, db;
  index::Labels ql, dl;
};

Case load_case(const std::string& name) {
  const io::Array qc = load(name + "_query_codes"), dc = load(name + "_db_codes");
  const io::Array ql = load(name + "_query_labels"), dl = load(name + "_db_labels");
  REQUIRE(qc.shape.size() == 2);
  const int64_t bits = qc.shape[1];
  Case c{index::pack_codes(qc.as<int8_t>(), bits), index::pack_codes(dc.as<int8_t>(), bits),
         index::Labels::from_multi_hot(ql.as<uint8_t>(), ql.shape[1]),
         index::Labels::from_multi_hot(dl.as<uint8_t>(), dl.shape[1])};
  return c;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, const char* what) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO(what << " [" << i << "]");
    REQUIRE(got[i] == Approx(want[i]).margin(1e-6).epsilon(0));
  }
}

}  // namespace

TEST_CASE("golden: packed codes equal numpy.packbits(bitorder='little')", "[eval][golden]") {
  for (const char* name : {"single", "multi"}) {
    const Case c = load_case(name);
    const io::Array packed = load(std::string(name) + "_db_packed");
    CHECK(packed.as<uint8_t>() == c.db.bytes());
  }
}

TEST_CASE("golden: mAP@k (quirk, all, cut-offs), per-query AP, PR curve, P@k, radius 2", "[eval][golden]") {
  for (const char* name : {"single", "multi"}) {
    INFO("case " << name);
    const std::string n = name;
    const Case c = load_case(name);
    const auto topks = load(n + "_map_topk").as<int64_t>();
    const auto maps = load(n + "_map").as<double>();
    const int64_t ndb = c.db.size();
    for (int threads : {1, 2}) {
      index::SearchOptions so{index::Isa::automatic, threads};
      for (size_t i = 0; i < topks.size(); ++i) {
        // The script uses gnd[0:topk]: -1 is the quirk, topk = n_db is "all".
        const double got = topks[i] == ndb ? mean_average_precision(c.q, c.ql, c.db, c.dl, -1, TopkAll::all, so)
                                           : mean_average_precision(c.q, c.ql, c.db, c.dl, topks[i], TopkAll::all_but_last, so);
        INFO("topk " << topks[i]);
        CHECK(got == Approx(maps[i]).margin(1e-6).epsilon(0));
      }
      EvalOptions o;
      o.pr_curve = true;
      o.precision_at = load(n + "_p_at_k").as<int64_t>();
      o.radius = 2;
      o.search = so;
      const EvalResult r = evaluate(c.q, c.ql, c.db, c.dl, o);
      check_close(r.average_precision, load(n + "_ap").as<double>(), "AP");
      check_close(r.pr.precision, load(n + "_pr_precision").as<double>(), "PR precision");
      check_close(r.pr.recall, load(n + "_pr_recall").as<double>(), "PR recall");
      CHECK(r.pr.queries_averaged == load(n + "_pr_queries").as<int64_t>()[0]);
      CHECK(pr_curve_reference_points(r.pr).index == load(n + "_pr_ref_index").as<int64_t>());
      check_close(r.precision_at, load(n + "_precision_at").as<double>(), "P@k");
      const auto rad = load(n + "_radius2").as<double>();
      CHECK(r.radius.precision == Approx(rad[0]).margin(1e-6).epsilon(0));
      CHECK(r.radius.queries_with_hits == Approx(rad[1]).margin(1e-12));
      CHECK(precision_within_radius(c.q, c.ql, c.db, c.dl, 2, so).precision == Approx(rad[0]).margin(1e-6).epsilon(0));
    }
  }
}
