// The algorithm presets: one table row per algorithm. A row names the algorithm, says what it
// is and where its defaults come from, and points to its family below: `defaults` sets the
// options of its paper or its authors' code, `build` makes its estimator and fixes the schedule
// fields the algorithm itself decides (e.g. SOBA's single step). Adding an algorithm is its
// estimator file under host/estimators plus a family and a row here (docs/design.md, "The
// scheduler", walks through one).
#include <bilevel/solvers/solver.hpp>

#include <memory>
#include <sstream>
#include <type_traits>

namespace bilevel {
namespace {

template <typename T>
using Estimator = std::unique_ptr<HypergradientEstimator<T>>;

// --- the families: defaults(options), build<T>(options, schedule) -> estimator ---

// Ji, Yang, Liang 2021, 20 Newsgroups setting: D = 10, Q = 10, eta = 0.5 (MNIST: D = 200, Q = 3)
struct Stocbio {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 10;
    o.neumann = NeumannOptions{10, {0.5}};
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions&) {
    return make_neumann_estimator<T>(o.neumann);
  }
};

// benchopt's AID-CG: 10 CG iterations, warm start
struct AidCg {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 10;
    o.cg = CgOptions{10, true};
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions&) {
    return make_cg_estimator<T>(o.cg);
  }
};

// benchopt: T = M = 10
struct AidFp {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 10;
    o.fixed_point = FixedPointOptions{10, {0.1}, true};
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions&) {
    return make_fixed_point_estimator<T>(o.fixed_point);
  }
};

// AmIGO (Arbel & Mairal): AID-FP with T = M = 10 fixed
struct Amigo {
  static void defaults(AlgorithmOptions& o) { AidFp::defaults(o); }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    FixedPointOptions fp = o.fixed_point;
    fp.steps = 10;
    loop.inner_steps = 10;
    return make_fixed_point_estimator<T>(fp);
  }
};

// SOBA (Dagreou et al.) and MA-SOBA (Chen et al.): one step on y, v and x per iteration, all at
// the same (x, y, v) with one lower-level batch: sl-BAMM's single-point estimator without
// aggregation (mu = 0), H v and J v in one fused call; MA-SOBA averages the x direction
struct Soba {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 1;
    o.fixed_point = FixedPointOptions{1, {0.1}, true};
    o.loop.average = 0.1;
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    loop.upper = o.name == "soba" ? UpperUpdate::sgd : UpperUpdate::moving_average;
    // (loop.inner_decay, default 0, decays the steps on y and v as benchopt's SOBA does)
    return make_sl_bamm_estimator<T>(
        SlBammOptions{0.0, 1.0, loop.inner_step, o.fixed_point.nu, loop.inner_decay});
  }
};

// SABA (Dagreou et al.): SOBA's single loop with SAGA tables on its five directions, over fixed
// batches of the run's batch sizes; its steps are constant (the paper's, and benchopt's)
struct Saba {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 1;
    // benchopt's epoch walk over the fixed batches, as SRBA's: with replacement, SABA at
    // benchopt's parameters left its seeds' spread after ~50k iterations and one seed diverged
    // (docs/algorithms.md, SABA)
    o.loop.epoch_sampling = true;
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions&, ScheduleOptions& loop) {
    loop.upper = UpperUpdate::sgd;
    return make_saba_estimator<T>(SabaOptions{loop.inner_step, loop.lower_batch,
                                              loop.upper_batch, loop.seed, loop.epoch_sampling});
  }
};

// SRBA (Dagreou et al. 2024): SOBA's directions SARAH-recursive between full-batch restarts,
// constant steps (benchopt's solvers/srba.py)
struct Srba {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 1;
    o.loop.epoch_sampling = true;  // benchopt's epoch walk (docs/algorithms.md, SRBA)
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    loop.upper = UpperUpdate::sgd;
    return make_srba_estimator<T>(
        SrbaOptions{loop.inner_step, o.srba_period, loop.lower_batch, loop.upper_batch});
  }
};

// SPABA (Chu et al. 2024): SRBA's directions with PAGE's coin for the full-batch restarts
struct Spaba {
  static void defaults(AlgorithmOptions& o) { Srba::defaults(o); }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    loop.upper = UpperUpdate::sgd;
    SrbaOptions s{loop.inner_step, 0, loop.lower_batch, loop.upper_batch};
    s.page = true;
    s.probability = o.spaba_probability;
    s.seed = loop.seed;
    return make_srba_estimator<T>(s);
  }
};

// MRBO (Yang, Ji, Liang 2021): STORM directions for y and x with stocBiO's Neumann
// hypergradient at both points; alpha_k, beta_k ~ k^-1/3, eta_k ~ k^-2/3 (benchopt's
// solvers/mrbo.py, n_shia_steps = 10)
struct Mrbo {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 1;
    o.loop.outer_decay = 1.0 / 3.0;
    o.neumann = NeumannOptions{10, {0.1}};
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    loop.upper = UpperUpdate::sgd;
    loop.outer_decay = 1.0 / 3.0;  // beta_k = beta (k + 1)^-1/3, as benchopt's
    MrboOptions m;
    m.alpha = loop.inner_step;
    m.eta = o.mrbo_eta;
    m.neumann = o.neumann;
    m.truncated = o.name == "sustain";
    m.truncated_neumann = o.truncated_neumann;
    m.truncated_neumann.seed = loop.seed;
    return make_mrbo_estimator<T>(m);
  }
};

// FSLA (Li, Gu, Huang 2022): one step on y and on v, STORM momentum on x, every step ~ k^-1/2
// (benchopt's solvers/fsla.py)
struct Fsla {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 1;
    o.loop.outer_decay = 0.5;
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    loop.upper = UpperUpdate::sgd;
    loop.outer_decay = 0.5;  // beta_k = beta (k + 1)^-1/2, as benchopt's
    FslaOptions f;
    f.alpha = loop.inner_step;
    f.eta = o.fsla_eta;
    return make_fsla_estimator<T>(f);
  }
};

// BOME (Liu et al. 2022): first order, the value gap's dynamic barrier; T = inner_steps gradient
// steps for y_T, constant steps (benchopt's solvers/bome.py: T = 10, eta = 0.5)
struct Bome {
  static void defaults(AlgorithmOptions& o) { o.loop.inner_steps = 10; }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    loop.upper = UpperUpdate::sgd;
    BomeOptions b;
    b.alpha = loop.inner_step;
    b.steps = loop.inner_steps;
    b.eta = o.bome_eta;
    return make_bome_estimator<T>(b);
  }
};

// SUSTAIN (Khanduri et al. 2021): MRBO's iteration with the random-truncation Neumann
// hypergradient (benchopt's solvers/sustain.py: n_hia_steps = 10, the same decays)
struct Sustain {
  static void defaults(AlgorithmOptions& o) {
    Mrbo::defaults(o);
    o.truncated_neumann = TruncatedNeumannOptions{10, {0.1}, 0};
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    return Mrbo::build<T>(o, loop);
  }
};

// BSA (Ghadimi & Wang 2018): D SGD steps on y and the random-truncation Neumann
// hypergradient, both steps decaying as k^-1/2 (benchopt's solvers/bsa.py: D = 10, K = 10)
struct Bsa {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 10;
    o.loop.inner_decay = 0.5;
    o.loop.outer_decay = 0.5;
    o.truncated_neumann = TruncatedNeumannOptions{10, {0.1}, 0};
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    loop.inner_decay = 0.5;
    loop.outer_decay = 0.5;
    loop.upper = UpperUpdate::sgd;
    TruncatedNeumannOptions tn = o.truncated_neumann;
    tn.seed = loop.seed;
    return make_truncated_neumann_estimator<T>(tn);
  }
};

// TTSA (Hong et al.): alpha_k ~ k^-2/5, beta_k ~ k^-3/5, K = 10 terms
struct Ttsa {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 1;
    o.loop.inner_decay = 0.4;
    o.loop.outer_decay = 0.6;
    o.truncated_neumann = TruncatedNeumannOptions{10, {0.1}, 0};
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    loop.inner_steps = 1;
    loop.inner_decay = 0.4;
    loop.outer_decay = 0.6;
    loop.upper = UpperUpdate::sgd;
    TruncatedNeumannOptions tn = o.truncated_neumann;
    tn.seed = loop.seed;
    return make_truncated_neumann_estimator<T>(tn);
  }
};

// BO-REP (Hao et al.), authors' code for hyper-cleaning: mu = 0.9, nu = 1e-2, I = 2, N = 3
struct BoRep {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 3;
    o.loop.inner_period = 2;
    o.loop.init_steps = 100;
    o.loop.momentum = 0.9;
    o.fixed_point = FixedPointOptions{1, {1e-2}, true};
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    FixedPointOptions fp = o.fixed_point;
    fp.steps = 1;
    loop.upper = UpperUpdate::normalized_momentum;
    if (loop.inner_period == 1) loop.inner_period = 2;  // authors' hyper-cleaning default I = 2
    return make_fixed_point_estimator<T>(fp);
  }
};

// ITD-BiO, FOM, UFOM: reverse mode through D = 10 inner steps, or first order (+ correction)
struct Unrolled {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 10;
    o.ufom_probability = 0.2;
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    const UnrolledMode mode = o.name == "fom"    ? UnrolledMode::fom
                              : o.name == "ufom" ? UnrolledMode::ufom
                                                 : UnrolledMode::itd;
    return make_itd_estimator<T>(
        ItdOptions{loop.inner_steps, loop.inner_step, mode, o.ufom_probability, loop.seed});
  }
};

// BDA (Liu et al.), authors' code: K = 5, mu = 0.6, inner lr 0.1
struct Bda {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 5;
    o.loop.inner_step = {0.1};
    o.bda_aggregation = 0.6;
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    ItdOptions itd{loop.inner_steps, loop.inner_step, UnrolledMode::itd, 0.2, loop.seed};
    itd.aggregation = o.bda_aggregation;
    return make_itd_estimator<T>(itd);
  }
};

// sl-BAMM (Liu et al.) practical schedule: mu_0 = 0.1, alpha = 0.005, s = 0.1
struct SlBamm {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_step = {0.1};
    o.loop.outer_step = {0.005};
    o.sl_bamm.mu0 = 0.1;
    o.sl_bamm.p = 1;
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    SlBammOptions sb = o.sl_bamm;
    sb.s = loop.inner_step;
    sb.eta = o.fixed_point.nu;
    return make_sl_bamm_estimator<T>(sb);
  }
};

// LV-HBA (Yao et al.), authors' toy code: alpha = 0.008, beta = 0.02, eta = 0.01, gamma = 10
struct LvHba {
  static void defaults(AlgorithmOptions& o) {
    o.loop.outer_step = {0.008};
    o.lv_hba = LvHbaOptions{{0.008}, 0.02, 0.01, 10.0, 10.0, 0.025, 0.3, 0.0, 0.0, 1000.0};
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    LvHbaOptions lv = o.lv_hba;
    lv.alpha = loop.outer_step;
    loop.upper = UpperUpdate::sgd;
    return make_lv_hba_estimator<T>(lv);
  }
};

// F2SA (Kwon et al.): penalized y and plain z sequences, lambda growing
struct F2sa {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 10;
    o.f2sa = F2saOptions{10, {0.1}, 1.0, 0.05};
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    F2saOptions f = o.f2sa;
    f.steps = loop.inner_steps;
    f.alpha = loop.inner_step;
    return make_f2sa_estimator<T>(f);
  }
};

// F2BA (Chen, Ma, Zhang 2023): F2SA's y and z sequences with a fixed penalty lambda (the
// deterministic near-optimal method; F2SA grows lambda for stochastic oracles)
struct F2ba {
  static void defaults(AlgorithmOptions& o) { o.loop.inner_steps = 10; }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    F2saOptions f = o.f2sa;
    f.steps = loop.inner_steps;
    f.alpha = loop.inner_step;
    f.lambda0 = o.f2ba_lambda;
    f.growth = 0.0;  // F2BA's lambda is fixed
    return make_f2sa_estimator<T>(f);
  }
};

// VRBO (Yang, Ji, Liang 2021): SARAH directions for y and x, full batches every period
// iterations, 10 inner steps with the Neumann hypergradient at both points, constant steps
// (benchopt's solvers/vrbo.py: n_inner_steps = n_shia_steps = 10; the period's rule with the
// period_frac = 0.5 of its best datacleaning parameters: VrboOptions::period_fraction)
struct Vrbo {
  static void defaults(AlgorithmOptions& o) {
    o.loop.inner_steps = 10;
    o.neumann = NeumannOptions{10, {0.1}};
    o.loop.epoch_sampling = true;  // benchopt's epoch walk, as SRBA's (docs/algorithms.md, VRBO)
  }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    loop.upper = UpperUpdate::sgd;
    VrboOptions v;
    v.alpha = loop.inner_step;
    v.steps = loop.inner_steps;
    v.period = o.vrbo_period;
    v.lower_batch = loop.lower_batch;
    v.upper_batch = loop.upper_batch;
    v.neumann = o.neumann;
    v.x_move = o.vrbo_x_move;
    return make_vrbo_estimator<T>(v);
  }
};

// PZOBO (Sow, Ji, Liang 2022): T = 10 inner steps, the Jacobian by Q = 10 Gaussian finite
// differences of radius mu = 0.1, constant steps (benchopt's solvers/pzobo.py)
struct Pzobo {
  static void defaults(AlgorithmOptions& o) { o.loop.inner_steps = 10; }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    loop.upper = UpperUpdate::sgd;
    PzoboOptions z;
    z.alpha = loop.inner_step;
    z.steps = loop.inner_steps;
    z.directions = o.pzobo_directions;
    z.mu = o.pzobo_mu;
    z.seed = loop.seed;
    return make_pzobo_estimator<T>(z);
  }
};

// V-PBGD (Shen & Chen 2023): BOME's value gap as a penalty with gamma_k = gamma0 + growth k
// instead of the barrier; T = inner_steps gradient steps for y_hat
struct Vpbgd {
  static void defaults(AlgorithmOptions& o) { o.loop.inner_steps = 10; }
  template <typename T>
  static Estimator<T> build(const AlgorithmOptions& o, ScheduleOptions& loop) {
    loop.upper = UpperUpdate::sgd;
    BomeOptions b;
    b.alpha = loop.inner_step;
    b.steps = loop.inner_steps;
    b.penalty = true;
    b.gamma0 = o.vpbgd_gamma0;
    b.growth = o.vpbgd_growth;
    return make_bome_estimator<T>(b);
  }
};

// --- the table ---

struct Preset {
  AlgorithmInfo info;
  void (*defaults)(AlgorithmOptions&);
  Estimator<float> (*build_float)(const AlgorithmOptions&, ScheduleOptions&);
  Estimator<double> (*build_double)(const AlgorithmOptions&, ScheduleOptions&);
};

template <typename Family>
Preset row(AlgorithmInfo info) {
  return {std::move(info), &Family::defaults, &Family::template build<float>,
          &Family::template build<double>};
}

const std::vector<Preset>& presets() {
  static const std::vector<Preset> table = {
      row<Stocbio>({"stocbio", "D inner SGD steps, Neumann-series hypergradient (Q terms), SGD on x",
                    "Ji, Yang, Liang 2021, arXiv 2010.07962", "HVP"}),
      row<AidCg>({"aid-cg", "D inner SGD steps, conjugate gradient on H v = fy (warm start), SGD on x",
                  "Ji et al. 2021 (AID-BiO), arXiv 2010.07962; benchopt", "HVP"}),
      row<AidFp>({"aid-fp", "D inner SGD steps, M fixed-point steps on H v = fy (warm start), SGD on x",
                  "Grazzi et al. 2020, arXiv 2006.16218 (AID-FP)", "HVP"}),
      row<Amigo>({"amigo", "T = 10 inner steps, M = 10 SGD steps on the linear system, SGD on x",
                  "Arbel & Mairal 2022, arXiv 2111.14580; benchopt T = M = 10", "HVP"}),
      row<Soba>({"soba", "single loop: one step on y, v and x, all at the same (x, y, v) and LL batch",
                 "Dagreou et al. 2022, arXiv 2201.13409", "HVP"}),
      row<Soba>({"ma-soba", "SOBA with a moving average of the x direction",
                 "Chen, Xu, Zhang 2023, arXiv 2306.12067", "HVP"}),
      row<Saba>({"saba", "SOBA with SAGA variance reduction of its five directions over fixed batches, constant steps",
                 "Dagreou et al. 2022, arXiv 2201.13409; benchopt solvers/saba.py", "HVP"}),
      row<Srba>({"srba", "SOBA with SARAH-recursive directions, full batches every period iterations, constant steps",
                 "Dagreou et al. 2024, arXiv 2302.08766; benchopt solvers/srba.py", "HVP"}),
      row<Spaba>({"spaba", "SRBA's recursive directions restarted from full batches with probability p (PAGE), constant steps",
                  "Chu, Xu, Yao, Zhang 2024 (ICML), arXiv 2405.18777", "HVP"}),
      row<Mrbo>({"mrbo", "momentum-recursive (STORM) directions for y and x, Neumann hypergradient at both points, decaying steps",
                 "Yang, Ji, Liang 2021 (NeurIPS), arXiv 2106.04692; benchopt solvers/mrbo.py", "HVP"}),
      row<Fsla>({"fsla", "one step on y and on v, STORM momentum on the x direction, every step ~ k^-1/2",
                 "Li, Gu, Huang 2022 (AAAI), arXiv 2112.04660; benchopt solvers/fsla.py", "HVP"}),
      row<Bome>({"bome", "first order: T steps give y_T, the value gap g(x, y) - g(x, y_T) as a dynamic barrier on (x, y)'s step",
                 "Liu, Ye, Wright, Stone, Liu 2022 (NeurIPS), arXiv 2209.08709; benchopt solvers/bome.py", "first order (grad_x g)"}),
      row<Vrbo>({"vrbo", "SARAH directions for y and x, full batches every period iterations, inner steps with the Neumann hypergradient at both points",
                 "Yang, Ji, Liang 2021 (NeurIPS), arXiv 2106.04692; benchopt solvers/vrbo.py", "HVP"}),
      row<Pzobo>({"pzobo", "Hessian-free: the inner trajectory's Jacobian by Gaussian finite differences (Q directions)",
                  "Sow, Ji, Liang 2022 (NeurIPS), arXiv 2110.07004; benchopt solvers/pzobo.py", "first order (grad_y g and grad f only)"}),
      row<Vpbgd>({"v-pbgd", "first order: the value gap g(x, y) - g(x, y_T) as a penalty gamma_k = gamma0 + growth k on (x, y)'s step",
                  "Shen & Chen 2023 (ICML), arXiv 2302.05185", "first order (grad_x g)"}),
      row<Sustain>({"sustain", "MRBO's STORM directions with the random-truncation Neumann hypergradient, decaying steps",
                    "Khanduri et al. 2021 (NeurIPS), arXiv 2102.07367; benchopt solvers/sustain.py", "HVP"}),
      row<Bsa>({"bsa", "D inner SGD steps, random-truncation Neumann hypergradient, both steps ~ k^-1/2",
                "Ghadimi & Wang 2018, arXiv 1802.02246; benchopt solvers/bsa.py", "HVP"}),
      row<Ttsa>({"ttsa", "one inner step (alpha_k ~ k^-2/5), random-truncation Neumann, x step ~ k^-3/5, projection",
                 "Hong et al. 2023, arXiv 2007.05170", "HVP"}),
      row<BoRep>({"bo-rep", "init refinement, N inner steps every I iterations, one step on z, normalized momentum",
                  "Hao et al. 2024, arXiv 2401.09587; authors' code (mu = 0.9, I = 2, N = 3)", "HVP"}),
      row<Unrolled>({"itd-bio", "reverse mode through the D inner steps",
                     "Ji, Yang, Liang 2021, arXiv 2010.07962", "HVP"}),
      row<Unrolled>({"fom", "first order: fx at the D-th inner iterate (biased, no second order)",
                     "first-order MAML heuristic (Finn et al. 2017, arXiv 1703.03400)", "first order"}),
      row<Unrolled>({"ufom", "FOM plus the exact correction / q with probability q (unbiased for ITD)",
                     "arXiv 2106.02487, simplest member", "HVP when triggered"}),
      row<Bda>({"bda", "reverse mode through D steps aggregating both levels (mu_t = mu 0.9^t)",
                "Liu et al. 2020, arXiv 2006.04045; authors' code (K = 5, mu = 0.6)",
                "HVP of g and of f; handles many LL solutions"}),
      row<SlBamm>({"sl-bamm", "single loop at one point, lower-level step aggregating fy (mu_k = mu_0/(k+1))",
                   "Liu et al. 2023, arXiv 2302.03407 (practical schedule)",
                   "HVP; handles many LL solutions"}),
      row<LvHba>({"lv-hba", "single loop, Hessian-free, lower level with constraints coupling both levels",
                  "Yao et al. 2024, arXiv 2401.16164; authors' code (c_k = 0.025 (k+1)^0.3)",
                  "first order (grad_x g), constraints; LL merely convex"}),
      row<F2sa>({"f2sa", "fully first order: penalized y and plain z sequences, lambda growing",
                 "Kwon et al. 2023, arXiv 2301.10945", "first order (grad_x g)"}),
      row<F2ba>({"f2ba", "fully first order: F2SA's penalized y and plain z sequences with a fixed lambda",
                 "Chen, Ma, Zhang 2023, arXiv 2306.14853", "first order (grad_x g)"}),
  };
  return table;
}

const Preset& preset(const std::string& name) {
  for (const Preset& p : presets())
    if (p.info.name == name) return p;
  std::ostringstream os;
  os << "unknown algorithm '" << name << "' (known:";
  for (const Preset& p : presets()) os << ' ' << p.info.name;
  os << ')';
  throw InvalidArgument(os.str());
}

template <typename T>
Estimator<T> build(const Preset& p, const AlgorithmOptions& options, ScheduleOptions& loop) {
  if constexpr (std::is_same_v<T, float>)
    return p.build_float(options, loop);
  else
    return p.build_double(options, loop);
}

}  // namespace

std::vector<AlgorithmInfo> algorithm_presets() {
  std::vector<AlgorithmInfo> out;
  for (const Preset& p : presets()) out.push_back(p.info);
  return out;
}

std::vector<std::pair<std::string, std::string>> algorithm_names() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Preset& p : presets()) out.emplace_back(p.info.name, p.info.description);
  return out;
}

AlgorithmOptions default_options(const std::string& name) {
  const Preset& p = preset(name);
  AlgorithmOptions o;
  o.name = name;
  p.defaults(o);
  return o;
}

UpperUpdate preset_upper_update(const std::string& name) {
  const AlgorithmOptions o = default_options(name);
  ScheduleOptions loop = o.loop;
  build<float>(preset(name), o, loop);  // (the estimator is dropped: only `loop` is wanted)
  return loop.upper;
}

template <typename T>
std::unique_ptr<Solver<T>> make_solver(Problem<T>& problem, const AlgorithmOptions& options) {
  ScheduleOptions loop = options.loop;
  Estimator<T> estimator = build<T>(preset(options.name), options, loop);
  return std::make_unique<Solver<T>>(problem, std::move(estimator), loop);
}

template std::unique_ptr<Solver<float>> make_solver(Problem<float>&, const AlgorithmOptions&);
template std::unique_ptr<Solver<double>> make_solver(Problem<double>&, const AlgorithmOptions&);

int solver_x_arrays(const std::string& preset_name) {
  // measured: SolveResult peak of each preset on hyper-cleaning (x, h, diff, fx + ...)
  const std::string& p = preset_name;
  if (p == "soba" || p == "sl-bamm" || p == "stocbio" || p == "aid-cg" || p == "aid-fp" ||
      p == "amigo" || p == "ttsa")
    return 4;
  if (p == "bo-rep" || p == "ma-soba" || p == "f2sa" || p == "itd-bio" || p == "fom" ||
      p == "ufom")
    return 5;
  // the solver's 3, the previous x, D_x and J v at both points, and one more that covers its
  // 7 y-sized arrays beyond the 12 the plan counts (dy < dx on hyper-cleaning)
  if (p == "srba" || p == "spaba") return 8;
  // the solver's 3, the Neumann estimator's fx, the previous x, D_x and the previous point's h
  if (p == "vrbo" || p == "mrbo" || p == "sustain") return 7;
  return 6;  // bda, lv-hba, bome, v-pbgd, pzobo, user combinations
}

std::size_t preset_table_values(const std::string& preset, index_t dx, index_t dy,
                                index_t lower_samples, index_t upper_samples,
                                index_t lower_batch, index_t upper_batch,
                                bool upper_depends_on_x) {
  if (preset != "saba") return 0;
  // batches of one level (0, or a batch of all of them: one batch)
  const auto batches = [](index_t n, index_t b) -> std::size_t {
    if (n <= 0 || b <= 0 || b >= n) return 1;
    return static_cast<std::size_t>((n + b - 1) / b);
  };
  const std::size_t lower = batches(lower_samples, lower_batch);
  const std::size_t upper = batches(upper_samples, upper_batch);
  const auto x = static_cast<std::size_t>(dx), y = static_cast<std::size_t>(dy);
  return lower * (2 * y + x) + upper * (y + (upper_depends_on_x ? x : 0));
}

}  // namespace bilevel
