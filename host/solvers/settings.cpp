// describe_settings: an algorithm's options as "key=value" lines, every value exact, for the
// checkpoints' settings (a resume under other settings is refused, naming what differs) and the
// check that MPI ranks run alike. set_algorithm_option: the same options set by key (Python's
// solve() keywords).
#include <bilevel/solvers/solver.hpp>

#include <cmath>
#include <cstdio>
#include <sstream>
#include <variant>

namespace bilevel {
namespace {

std::string exact(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

std::string exact(const std::vector<double>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + exact(v[i]);
  return out;
}

const char* upper_name(UpperUpdate u) {
  switch (u) {
    case UpperUpdate::sgd: return "sgd";
    case UpperUpdate::moving_average: return "moving_average";
    case UpperUpdate::normalized_momentum: return "normalized_momentum";
  }
  return "?";
}

}  // namespace

namespace {

using FieldPointer = std::variant<index_t*, double*, std::vector<double>*, bool*, std::uint64_t*>;

struct OptionEntry {
  AlgorithmOptionField field;
  FieldPointer (*at)(AlgorithmOptions&);
};

#define BILEVEL_OPTION(key, kind, member, what) \
  OptionEntry{{key, kind, what}, [](AlgorithmOptions& o) -> FieldPointer { return &o.member; }}

const std::vector<OptionEntry>& option_entries() {
  static const std::vector<OptionEntry> entries{
      BILEVEL_OPTION("loop.inner_steps", "int", loop.inner_steps, "SGD steps on y per lower-level round"),
      BILEVEL_OPTION("loop.inner_period", "int", loop.inner_period, "a lower-level round every I iterations (BO-REP: 2)"),
      BILEVEL_OPTION("loop.init_steps", "int", loop.init_steps, "SGD steps on g(x_0, .) before the loop"),
      BILEVEL_OPTION("loop.inner_step", "reals", loop.inner_step, "alpha: the lower-level step"),
      BILEVEL_OPTION("loop.inner_decay", "real", loop.inner_decay, "alpha_k = alpha (k + 1)^-inner_decay"),
      BILEVEL_OPTION("loop.outer_step", "reals", loop.outer_step, "beta: the upper-level step"),
      BILEVEL_OPTION("loop.outer_decay", "real", loop.outer_decay, "beta_k = beta (k + 1)^-outer_decay"),
      BILEVEL_OPTION("loop.average", "real", loop.average, "theta of the moving-average x update (MA-SOBA)"),
      BILEVEL_OPTION("loop.momentum", "real", loop.momentum, "mu of the normalized-momentum x update (BO-REP)"),
      BILEVEL_OPTION("loop.lower_batch", "int", loop.lower_batch, "samples per lower-level batch (0: full data)"),
      BILEVEL_OPTION("loop.upper_batch", "int", loop.upper_batch, "samples per upper-level batch (0: full data)"),
      BILEVEL_OPTION("loop.seed", "seed", loop.seed, "minibatch seed"),
      BILEVEL_OPTION("loop.independent_batches", "bool", loop.independent_batches, "each instance draws its own minibatches"),
      BILEVEL_OPTION("loop.epoch_sampling", "bool", loop.epoch_sampling, "minibatches walk the data in epochs, reshuffled each (off: with replacement)"),
      BILEVEL_OPTION("loop.divergence_limit", "real", loop.divergence_limit, "a norm above this is divergence"),
      BILEVEL_OPTION("neumann.terms", "int", neumann.terms, "Neumann terms Q"),
      BILEVEL_OPTION("neumann.eta", "reals", neumann.eta, "the Neumann step"),
      BILEVEL_OPTION("cg.iterations", "int", cg.iterations, "CG iterations per estimate"),
      BILEVEL_OPTION("cg.warm_start", "bool", cg.warm_start, "CG starts from the previous v"),
      BILEVEL_OPTION("fixed_point.steps", "int", fixed_point.steps, "M: SGD steps on the linear system per estimate"),
      BILEVEL_OPTION("fixed_point.nu", "reals", fixed_point.nu, "nu: the linear system's step"),
      BILEVEL_OPTION("fixed_point.warm_start", "bool", fixed_point.warm_start, "v starts from the previous v"),
      BILEVEL_OPTION("truncated_neumann.terms", "int", truncated_neumann.terms, "K of the random-truncation Neumann (TTSA)"),
      BILEVEL_OPTION("truncated_neumann.eta", "reals", truncated_neumann.eta, "its step"),
      BILEVEL_OPTION("truncated_neumann.seed", "seed", truncated_neumann.seed, "its truncation draws' seed"),
      BILEVEL_OPTION("sl_bamm.mu0", "real", sl_bamm.mu0, "mu_0 of sl-BAMM's aggregation"),
      BILEVEL_OPTION("sl_bamm.p", "real", sl_bamm.p, "mu_k = mu_0 (k + 1)^(-1/p)"),
      BILEVEL_OPTION("sl_bamm.s", "reals", sl_bamm.s, "sl-BAMM's lower-level step"),
      BILEVEL_OPTION("sl_bamm.eta", "reals", sl_bamm.eta, "sl-BAMM's linear-system step"),
      BILEVEL_OPTION("sl_bamm.decay", "real", sl_bamm.decay,
                     "sl-BAMM's s and eta decay as (k + 1)^-decay (SOBA: loop.inner_decay)"),
      BILEVEL_OPTION("f2sa.steps", "int", f2sa.steps, "K: F2SA's steps on y and z"),
      BILEVEL_OPTION("f2sa.alpha", "reals", f2sa.alpha, "F2SA's step"),
      BILEVEL_OPTION("f2sa.lambda0", "real", f2sa.lambda0, "F2SA's first penalty"),
      BILEVEL_OPTION("f2sa.growth", "real", f2sa.growth, "lambda_k = lambda_0 + growth k"),
      BILEVEL_OPTION("ufom_probability", "real", ufom_probability, "q of UFOM"),
      BILEVEL_OPTION("bda_aggregation", "real", bda_aggregation, "mu of BDA"),
      BILEVEL_OPTION("srba_period", "int", srba_period, "SRBA's full-batch restart period (0: benchopt's rule)"),
      BILEVEL_OPTION("spaba_probability", "real", spaba_probability, "SPABA's full-batch restart probability (0: PAGE's b / (n + b))"),
      BILEVEL_OPTION("bome_eta", "real", bome_eta, "BOME's barrier eta (lambda = max(eta |q'|^2 - <f', q'>, 0) / |q'|^2)"),
      BILEVEL_OPTION("vrbo_period", "int", vrbo_period, "VRBO's full-batch restart period (0: SRBA's rule, (n_l/b_l + n_u/b_u) / 2)"),
      BILEVEL_OPTION("vrbo_x_move", "bool", vrbo_x_move, "VRBO's recursion takes in x's move (the paper's; false: benchopt's, both terms at the new x)"),
      BILEVEL_OPTION("pzobo_directions", "int", pzobo_directions, "PZOBO's Gaussian directions Q"),
      BILEVEL_OPTION("pzobo_mu", "real", pzobo_mu, "PZOBO's finite-difference radius mu"),
      BILEVEL_OPTION("vpbgd_gamma0", "real", vpbgd_gamma0, "V-PBGD's first penalty gamma_0"),
      BILEVEL_OPTION("vpbgd_growth", "real", vpbgd_growth, "V-PBGD's penalty growth: gamma_k = gamma_0 + growth k"),
      BILEVEL_OPTION("f2ba_lambda", "real", f2ba_lambda, "F2BA's fixed penalty lambda"),
      BILEVEL_OPTION("fsla_eta", "real", fsla_eta, "FSLA's momentum eta (eta_k = eta (k + 1)^-1/2)"),
      BILEVEL_OPTION("mrbo_eta", "real", mrbo_eta, "MRBO's and SUSTAIN's momentum eta (eta_k = eta (k + 1)^-2/3)"),
      BILEVEL_OPTION("lv_hba.alpha", "reals", lv_hba.alpha, "LV-HBA's step on y and x"),
      BILEVEL_OPTION("lv_hba.beta", "real", lv_hba.beta, "LV-HBA's step on z"),
      BILEVEL_OPTION("lv_hba.eta", "real", lv_hba.eta, "LV-HBA's step on theta and lambda"),
      BILEVEL_OPTION("lv_hba.gamma1", "real", lv_hba.gamma1, "LV-HBA's proximal weight of y"),
      BILEVEL_OPTION("lv_hba.gamma2", "real", lv_hba.gamma2, "LV-HBA's proximal weight of z"),
      BILEVEL_OPTION("lv_hba.c0", "real", lv_hba.c0, "c_k = c0 (k + 1)^power"),
      BILEVEL_OPTION("lv_hba.power", "real", lv_hba.power, "the power of c_k"),
      BILEVEL_OPTION("lv_hba.lambda0", "real", lv_hba.lambda0, "LV-HBA's first multipliers"),
      BILEVEL_OPTION("lv_hba.z0", "real", lv_hba.z0, "LV-HBA's first z"),
      BILEVEL_OPTION("lv_hba.bound", "real", lv_hba.bound, "u: the multipliers' bound"),
  };
  return entries;
}
#undef BILEVEL_OPTION

}  // namespace

std::string describe_settings(const AlgorithmOptions& o) {
  std::ostringstream s;
  s << "algorithm=" << o.name << "\n";
  // (the run length, evaluations, checkpoints, capture and reference_x do not change the
  // iterates: a resumed run may run longer) Every option of the table, in its order, and the
  // x update after the lower-level decay. The table's accessors take a mutable AlgorithmOptions;
  // nothing is written here.
  auto& fields = const_cast<AlgorithmOptions&>(o);
  for (const OptionEntry& e : option_entries()) {
    s << e.field.key << "=";
    std::visit(
        [&s](auto* field) {
          using F = std::remove_pointer_t<decltype(field)>;
          if constexpr (std::is_same_v<F, bool>)
            s << (*field ? "1" : "0");
          else if constexpr (std::is_same_v<F, double> || std::is_same_v<F, std::vector<double>>)
            s << exact(*field);
          else
            s << std::to_string(*field);
        },
        e.at(fields));
    s << "\n";
    if (e.field.key == "loop.inner_decay") s << "loop.upper=" << upper_name(o.loop.upper) << "\n";
  }
  return s.str();
}

const std::vector<AlgorithmOptionField>& algorithm_option_fields() {
  static const std::vector<AlgorithmOptionField> fields = [] {
    std::vector<AlgorithmOptionField> out;
    for (const OptionEntry& e : option_entries()) out.push_back(e.field);
    return out;
  }();
  return fields;
}

void set_algorithm_option(AlgorithmOptions& o, const std::string& key,
                          const std::vector<double>& values) {
  const OptionEntry* entry = nullptr;
  for (const OptionEntry& e : option_entries())
    if (e.field.key == key) entry = &e;
  BILEVEL_EXPECTS(entry != nullptr, "unknown algorithm option '" << key << "'");
  const std::string& kind = entry->field.kind;
  BILEVEL_EXPECTS(kind == "reals" ? !values.empty() : values.size() == 1,
                  "option " << key << " takes " << (kind == "reals" ? "one value or one per instance"
                                                                    : "one value")
                            << ", got " << values.size());
  for (const double v : values)
    BILEVEL_EXPECTS(std::isfinite(v), "option " << key << " must be finite, got " << v);
  const double v = values.front();
  const bool whole = v == std::floor(v);
  std::visit(
      [&](auto* field) {
        using F = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<F, std::vector<double>>) {
          *field = values;
        } else if constexpr (std::is_same_v<F, double>) {
          *field = v;
        } else if constexpr (std::is_same_v<F, bool>) {
          BILEVEL_EXPECTS(v == 0 || v == 1, "option " << key << " is 0 or 1 (a bool), got " << v);
          *field = v == 1;
        } else {
          BILEVEL_EXPECTS(whole && v >= 0 && v < 9.007199254740992e15,
                          "option " << key << " must be a whole number >= 0, got " << v);
          *field = static_cast<F>(v);
        }
      },
      entry->at(o));
}

}  // namespace bilevel
