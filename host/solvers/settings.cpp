// describe_settings: an algorithm's options as "key=value" lines, every value exact, for the
// checkpoints' settings (a resume under other settings is refused, naming what differs) and the
// check that MPI ranks run alike.
#include <bilevel/solvers/solver.hpp>

#include <cstdio>
#include <sstream>

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

std::string describe_settings(const AlgorithmOptions& o) {
  std::ostringstream s;
  const auto line = [&s](const char* key, const std::string& value) {
    s << key << "=" << value << "\n";
  };
  const auto integer = [](long long v) { return std::to_string(v); };
  const ScheduleOptions& l = o.loop;
  line("algorithm", o.name);
  // (the run length, evaluations, checkpoints, capture and reference_x do not change the
  // iterates: a resumed run may run longer)
  line("loop.inner_steps", integer(l.inner_steps));
  line("loop.inner_period", integer(l.inner_period));
  line("loop.init_steps", integer(l.init_steps));
  line("loop.inner_step", exact(l.inner_step));
  line("loop.inner_decay", exact(l.inner_decay));
  line("loop.upper", upper_name(l.upper));
  line("loop.outer_step", exact(l.outer_step));
  line("loop.outer_decay", exact(l.outer_decay));
  line("loop.average", exact(l.average));
  line("loop.momentum", exact(l.momentum));
  line("loop.lower_batch", integer(l.lower_batch));
  line("loop.upper_batch", integer(l.upper_batch));
  line("loop.seed", std::to_string(l.seed));
  line("loop.independent_batches", l.independent_batches ? "1" : "0");
  line("loop.divergence_limit", exact(l.divergence_limit));
  line("neumann.terms", integer(o.neumann.terms));
  line("neumann.eta", exact(o.neumann.eta));
  line("cg.iterations", integer(o.cg.iterations));
  line("cg.warm_start", o.cg.warm_start ? "1" : "0");
  line("fixed_point.steps", integer(o.fixed_point.steps));
  line("fixed_point.nu", exact(o.fixed_point.nu));
  line("fixed_point.warm_start", o.fixed_point.warm_start ? "1" : "0");
  line("truncated_neumann.terms", integer(o.truncated_neumann.terms));
  line("truncated_neumann.eta", exact(o.truncated_neumann.eta));
  line("truncated_neumann.seed", std::to_string(o.truncated_neumann.seed));
  line("sl_bamm.mu0", exact(o.sl_bamm.mu0));
  line("sl_bamm.p", exact(o.sl_bamm.p));
  line("sl_bamm.s", exact(o.sl_bamm.s));
  line("sl_bamm.eta", exact(o.sl_bamm.eta));
  line("f2sa.steps", integer(o.f2sa.steps));
  line("f2sa.alpha", exact(o.f2sa.alpha));
  line("f2sa.lambda0", exact(o.f2sa.lambda0));
  line("f2sa.growth", exact(o.f2sa.growth));
  line("ufom_probability", exact(o.ufom_probability));
  line("bda_aggregation", exact(o.bda_aggregation));
  line("lv_hba.alpha", exact(o.lv_hba.alpha));
  line("lv_hba.beta", exact(o.lv_hba.beta));
  line("lv_hba.eta", exact(o.lv_hba.eta));
  line("lv_hba.gamma1", exact(o.lv_hba.gamma1));
  line("lv_hba.gamma2", exact(o.lv_hba.gamma2));
  line("lv_hba.c0", exact(o.lv_hba.c0));
  line("lv_hba.power", exact(o.lv_hba.power));
  line("lv_hba.lambda0", exact(o.lv_hba.lambda0));
  line("lv_hba.z0", exact(o.lv_hba.z0));
  line("lv_hba.bound", exact(o.lv_hba.bound));
  return s.str();
}

}  // namespace bilevel
