// `vts evaluate`: mAP, P@k, precision within a Hamming radius and the precision-recall curve of a
// labelled query index against a labelled database index of the same model.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "model.hpp"
#include "svg_plot.hpp"
#include "vts/data/protocol.hpp"
#include "vts/eval/retrieval.hpp"
#include "vts/index/index_file.hpp"
#include "vts/index/labels.hpp"

namespace vts::cli {
namespace {

namespace fs = std::filesystem;

struct EvaluateArgs {
  std::string queries, database, out;
  int64_t topk = 0;  // 0: the protocol's for a protocol's query and database splits, else -1 (all)
  bool reference_slice = false;
  std::vector<int64_t> precision_at = {100, 1000};
  int64_t radius = 2;
  int threads = 0;
};

struct EvalIndex {
  std::string path;
  index::IndexFile file;
  IndexFingerprint fp;
};

EvalIndex open_labelled_index(const std::string& path, const char* role) {
  EvalIndex e{path, index::open_index_file(path), {}};
  e.fp = parse_index_fingerprint(e.file.fingerprint(), path);
  if (!e.file.has_labels())
    throw Error(std::string(role) + " index '" + path + "' holds no labels, and mAP needs them: encode a labelled "
                "dataset split, --images DIR --class-folders, or --images list.txt --classes C");
  const auto& names = e.fp.contents.class_names;
  if (!names.empty() && static_cast<int64_t>(names.size()) != e.file.num_classes())
    throw IoError("index '" + path + "': expected " + std::to_string(e.file.num_classes()) +
                  " class names (one per label column), found " + std::to_string(names.size()));
  return e;
}

// The queries' and the database's labels over one set of columns. Where both indexes name their
// classes, columns are matched by name, so a held-out folder may hold fewer classes, or others; a
// query class the database lacks gets a column of its own, and nothing is relevant to its queries.
// Otherwise the two must have as many columns, taken to mean the same classes.
struct AlignedLabels {
  index::Labels queries, database;
  std::vector<std::string> names;  // of the columns, where known
  int64_t query_only_classes = 0;
};

index::Labels relabelled(index::LabelsView from, const std::vector<int64_t>& column_of, int64_t columns) {
  std::vector<uint8_t> hot(static_cast<size_t>(from.count * columns), 0);
  for (int64_t i = 0; i < from.count; ++i)
    for (int64_t c = 0; c < from.classes; ++c)
      if (from.has(i, c)) hot[static_cast<size_t>(i * columns + column_of[static_cast<size_t>(c)])] = 1;
  return index::Labels::from_multi_hot(hot, columns);
}

AlignedLabels align_labels(const EvalIndex& q, const EvalIndex& db) {
  const auto &qn = q.fp.contents.class_names, &dn = db.fp.contents.class_names;
  const int64_t qc = q.file.num_classes(), dc = db.file.num_classes();
  AlignedLabels out;
  std::vector<int64_t> q_column(static_cast<size_t>(qc)), db_column(static_cast<size_t>(dc));
  for (int64_t c = 0; c < dc; ++c) db_column[static_cast<size_t>(c)] = c;
  if (!qn.empty() && !dn.empty()) {
    out.names = dn;
    for (int64_t c = 0; c < qc; ++c) {
      const auto it = std::find(dn.begin(), dn.end(), qn[static_cast<size_t>(c)]);
      if (it != dn.end()) {
        q_column[static_cast<size_t>(c)] = it - dn.begin();
      } else {
        q_column[static_cast<size_t>(c)] = static_cast<int64_t>(out.names.size());
        out.names.push_back(qn[static_cast<size_t>(c)]);
        ++out.query_only_classes;
      }
    }
  } else {
    if (qc != dc)
      throw Error("query index '" + q.path + "' has " + std::to_string(qc) + " label columns and database index '" +
                  db.path + "' " + std::to_string(dc) + ": expected the same classes (indexes of class folders are "
                  "matched by class name; these do not both name theirs)");
    for (int64_t c = 0; c < qc; ++c) q_column[static_cast<size_t>(c)] = c;
    out.names = qn.empty() ? dn : qn;
  }
  const auto columns = std::max<int64_t>(static_cast<int64_t>(out.names.size()), dc);
  out.queries = relabelled(q.file.labels(), q_column, columns);
  out.database = relabelled(db.file.labels(), db_column, columns);
  return out;
}

int run_evaluate(const EvaluateArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  if (a.threads > 0) cpu::set_num_threads(a.threads);
  const EvalIndex q = open_labelled_index(a.queries, "query");
  const EvalIndex db = open_labelled_index(a.database, "database");
  if (!(q.fp.identity == db.fp.identity))
    throw Error("the query index '" + a.queries + "' and the database index '" + a.database +
                "' were encoded by different models (their codes are not comparable):" +
                identity_difference(q.fp.identity, db.fp.identity, "queries", "database"));
  const AlignedLabels labels = align_labels(q, db);

  // A protocol's own query and database splits are scored as `vts train` scores them.
  data::MapSettings settings;
  const IndexContents &qc = q.fp.contents, &dc = db.fp.contents;
  const bool protocol = qc.split == "query" && dc.split == "database" && qc.dataset == dc.dataset;
  if (protocol) settings = data::map_settings(qc.dataset);
  if (a.topk != 0) settings.topk = a.topk;
  if (a.reference_slice) settings.all_but_last = true;

  eval::EvalOptions eo;
  eo.topk = settings.topk;
  eo.minus_one = settings.all_but_last ? eval::TopkAll::all_but_last : eval::TopkAll::all;
  eo.pr_curve = true;
  eo.precision_at = a.precision_at;
  eo.radius = a.radius;
  const eval::EvalResult r = eval::evaluate(q.file.codes(), labels.queries, db.file.codes(), labels.database, eo);

  std::unordered_set<std::string_view> db_sources;
  for (int64_t i = 0; i < db.file.size(); ++i) db_sources.insert(db.file.path(i));
  int64_t shared = 0;
  for (int64_t i = 0; i < q.file.size(); ++i) shared += db_sources.count(q.file.path(i)) > 0;

  const std::string cutoff = settings.topk < 0 ? (settings.all_but_last ? "all (all but the last)" : "all")
                                               : std::to_string(settings.topk);
  std::printf("vts evaluate: %lld queries against %lld database items, %lld bits, %zu classes%s\n",
              static_cast<long long>(q.file.size()), static_cast<long long>(db.file.size()),
              static_cast<long long>(db.file.bits()), labels.names.empty() ? static_cast<size_t>(db.file.num_classes())
                                                                             : labels.names.size(),
              protocol ? (" (" + qc.dataset + "'s query and database splits)").c_str() : "");
  std::printf("mAP@%s = %.4f", cutoff.c_str(), r.map);
  for (size_t i = 0; i < a.precision_at.size(); ++i)
    std::printf("  P@%lld = %.4f", static_cast<long long>(a.precision_at[i]), r.precision_at[i]);
  if (a.radius >= 0)
    std::printf("  P(r<=%lld) = %.4f (%.1f %% of queries retrieve something, %.1f items on average)",
                static_cast<long long>(a.radius), r.radius.precision, 100 * r.radius.queries_with_hits,
                r.radius.mean_retrieved);
  std::printf("\n");
  if (labels.query_only_classes > 0) {
    std::string missing;
    for (size_t c = labels.names.size() - static_cast<size_t>(labels.query_only_classes); c < labels.names.size(); ++c)
      missing += (missing.empty() ? "'" : ", '") + labels.names[c] + "'";
    std::printf("note: the database has no class %s; nothing is relevant to those queries (AP 0)\n", missing.c_str());
  }
  if (shared > 0)
    std::printf("note: %lld of %lld queries are also in the database (the same source): each finds itself at "
                "distance 0, which raises mAP; encode disjoint query and database images for a fair figure\n",
                static_cast<long long>(shared), static_cast<long long>(q.file.size()));

  if (!a.out.empty()) {
    fs::create_directories(a.out);
    nlohmann::ordered_json m;
    m["map"] = r.map;
    m["topk"] = settings.topk;
    m["all_but_last"] = settings.all_but_last;
    for (size_t i = 0; i < a.precision_at.size(); ++i)
      m["precision_at_" + std::to_string(a.precision_at[i])] = r.precision_at[i];
    if (a.radius >= 0) {
      const std::string key = "precision_radius" + std::to_string(a.radius);
      m[key] = r.radius.precision;
      m[key + "_queries_with_hits"] = r.radius.queries_with_hits;
      m[key + "_mean_retrieved"] = r.radius.mean_retrieved;
    }
    m["bits"] = db.file.bits();
    m["queries"] = q.file.size();
    m["database"] = db.file.size();
    m["queries_in_database"] = shared;
    if (!labels.names.empty()) m["classes"] = labels.names;
    m["query_index"] = absolute_path(a.queries);
    m["database_index"] = absolute_path(a.database);
    m["model"] = q.fp.identity.to_json();
    m["seconds"] = seconds_since(t0);
    write_text((fs::path(a.out) / "metrics.json").string(), m.dump(2) + "\n");
    nlohmann::ordered_json per_query = nlohmann::ordered_json::array();
    for (int64_t i = 0; i < q.file.size(); ++i)
      per_query.push_back(
          {{"query", std::string(q.file.path(i))}, {"ap", r.average_precision[static_cast<size_t>(i)]}});
    write_text((fs::path(a.out) / "per_query.json").string(), per_query.dump(1) + "\n");
    const eval::PrCurve pr = eval::pr_curve_reference_points(r.pr);
    const eval::PrCurve plot = eval::subsample_pr_curve(r.pr, 400);
    write_text((fs::path(a.out) / "pr_curve.json").string(),
               nlohmann::json{{"index", pr.index}, {"P", pr.precision}, {"R", pr.recall}}.dump() + "\n");
    const std::string title = "Precision-recall, " + q.fp.identity.loss + ", " + std::to_string(db.file.bits()) +
                              " bits (mAP " + std::to_string(r.map).substr(0, 6) + ")";
    write_text((fs::path(a.out) / "pr_curve.svg").string(),
               svg_line_plot(title, "recall", "precision", {{q.fp.identity.loss, plot.recall, plot.precision}}));
    std::printf("wrote metrics.json, per_query.json, pr_curve.json and pr_curve.svg to %s\n", a.out.c_str());
  }
  return 0;
}

}  // namespace

Run add_evaluate_command(CLI::App& app) {
  auto a = std::make_shared<EvaluateArgs>();
  app.add_option("--queries", a->queries, "index of the queries (labelled), written by vts encode")
      ->required()->check(CLI::ExistingFile);
  app.add_option("--database", a->database, "index of the database (labelled), written by the same model")
      ->required()->check(CLI::ExistingFile);
  app.add_option("--topk", a->topk,
                 "mAP@k (0: the protocol's when the indexes are a protocol's query and database splits, as vts "
                 "train reports; otherwise, and for -1, the whole database)")
      ->check(whole_number(-1, kMaxCount))->capture_default_str();
  app.add_flag("--reference-slice", a->reference_slice,
               "mAP over the whole database leaves out the last-ranked item, as the reference code does (set "
               "already for the reference protocols' splits)");
  app.add_option("--precision-at", a->precision_at, "P@k for each of these k")
      ->delimiter(',')->check(whole_number(1, kMaxCount))->capture_default_str();
  app.add_option("--radius", a->radius, "precision within this Hamming radius (-1: none)")
      ->check(whole_number(-1, kMaxCount))->capture_default_str();
  app.add_option("--out", a->out, "folder for metrics.json, per_query.json, pr_curve.json and pr_curve.svg");
  app.add_option("--threads", a->threads, "compute threads (default: OMP_NUM_THREADS or all cores)")
      ->check(whole_number(1, kMaxThreads));
  return [a] {
    if (a->topk < -1)
      throw Error("--topk: expected k > 0, 0 (the protocol's) or -1 (all), found " + std::to_string(a->topk));
    if (a->radius < -1) throw Error("--radius: expected r >= 0 or -1 (none), found " + std::to_string(a->radius));
    return run_evaluate(*a);
  };
}

}  // namespace vts::cli
