"""bilevel: stochastic bilevel optimization on the GPU and the CPU, from Python.

The C++ library (the same one the ``bilevel`` command and ``find_package(bilevel)`` use) does
the work; this package gives it NumPy arrays and keyword options::

    import bilevel
    ex = bilevel.Executor("cpu")
    p = bilevel.QuadraticProblem(ex, dx=10, dy=20, samples=500, seed=1)
    r = bilevel.solve(p, "stocbio", iterations=300, inner_step=0.3, outer_step=0.3)
    r.x                      # (instances, dim_x) NumPy array
    bilevel.algorithms()     # the presets, with their sources

Problems whose oracles are Python functions (written with NumPy, PyTorch or JAX, returning
arrays NumPy can read) come through :class:`CallbackProblem`: the flexible, slower path.
:func:`jax_problem` builds one from JAX functions g(x, y) and f(x, y) alone (autodiff gives
every oracle), and :func:`check_oracles` / :func:`hypergradient` check a problem you wrote.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import _bilevel
from .autodiff import jax_problem
from ._bilevel import (CallbackProblem, DeviceUnavailable, DivergenceError, HypercleanProblem,
                       hyperclean_split,
                       InvalidArgument, NotSupported, Problem, QuadraticProblem, cuda_device_count,
                       cpu_threads, set_cpu_threads, max_cpu_threads, cpu_isa, cpu_isas,
                       set_cpu_isa)

#: The linear-model family (softmax or binary logistic regression below): HypercleanProblem(...)
#: builds it with per-sample weights above, L2TuningProblem(...) with L2 weights. One class.
LinearModelProblem = HypercleanProblem
L2TuningProblem = HypercleanProblem.l2_tuning

__all__ = ["Executor", "QuadraticProblem", "HypercleanProblem", "LinearModelProblem", "L2TuningProblem", "CallbackProblem", "Problem",
           "algorithms", "solve", "options", "settings", "Result", "DivergenceError",
           "InvalidArgument", "NotSupported",
           "DeviceUnavailable", "cuda_device_count", "set_cpu_threads", "cpu_threads",
           "max_cpu_threads", "cpu_isa", "cpu_isas", "set_cpu_isa",
           "hyperclean_split", "meta_sinusoid", "check_oracles", "hypergradient", "jax_problem",
           "meta_episodes", "align_bandit"]


def _integer(where: str, name: str, value, minimum: int = 0) -> int:
    """An integer argument taken exactly: Python or NumPy integers only (no bool, no float -
    2.5 used to become 2 - no string) and at least `minimum`, else TypeError or ValueError
    naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _real(where: str, name: str, value) -> float:
    """A real argument: a finite Python or NumPy number (no bool, no string, no NaN or
    infinity), else TypeError or ValueError naming it. Ranges are checked where the value is
    used (the C++ side names them)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                     np.floating)):
        raise TypeError(f"{where}: {name} must be a number, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{where}: {name} must be a finite number, got {value!r}")
    return float(value)


def Executor(kind: str = "auto", device: int = 0, threads: int = 0):
    """An executor: ``"auto"`` (CUDA when a device exists, else the CPU), ``"cpu"`` or
    ``"cuda"``. ``threads`` > 0 sets the CPU backend's threads (``set_cpu_threads``; results do
    not depend on it). Raises ValueError for another name or a negative ``threads``,
    DeviceUnavailable for ``"cuda"`` without a device."""
    if kind not in ("auto", "cpu", "cuda"):
        raise ValueError(f"Executor: kind must be 'auto', 'cpu' or 'cuda', got {kind!r}")
    threads = _integer("Executor", "threads", threads)  # (0: the default)
    device = _integer("Executor", "device", device)
    if threads > 0:
        set_cpu_threads(threads)
    return _bilevel.make_executor(kind, device)


def algorithms() -> list:
    """The algorithm presets: a list of dicts with name, description, source and needs."""
    return _bilevel.algorithms()


@dataclasses.dataclass
class Result:
    """What a solve returns. ``x``: (instances, dim_x), ``y``: (instances, dim_y);
    ``history``: one dict per evaluation (iteration, seconds, upper_value, lower_value,
    hypergradient_norm and the problem's own metrics, one value per instance);
    ``interrupted``: stopped by Ctrl-C (x, y are then the state of the last evaluation);
    ``iteration``: the iteration that state is at, and ``state``: what the algorithm carries
    between iterations then (warm-started v, momentum...; (instances, rows) arrays), so that
    ``solve(..., resume=result)`` continues the run exactly. ``warnings``: what is likely a
    mistake but not an error (an instance whose x never moved), also issued as RuntimeWarning.
    ``lower_smoothness``: with ``auto_steps=True``, the L_g estimated per instance at the start
    (the steps were 0.9 / L_g); empty otherwise."""
    x: np.ndarray
    y: np.ndarray
    iterations: int
    seconds: float
    history: list
    diverged_at: list
    interrupted: bool
    algorithm: str
    backend: str
    device: str
    iteration: int = 0
    state: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)
    lower_smoothness: list = dataclasses.field(default_factory=list)


# keyword options of solve(): name -> (type, what), as AlgorithmOptions / ScheduleOptions
_OPTIONS = {
    "iterations": (int, "outer iterations K"),
    "inner_steps": (int, "SGD steps on y per lower-level round"),
    "inner_step": (float, "alpha: the lower-level step (one value or one per instance)"),
    "outer_step": (float, "beta: the upper-level step (one value or one per instance)"),
    "lower_batch": (int, "samples per lower-level batch (0: full data)"),
    "upper_batch": (int, "samples per upper-level batch (0: full data)"),
    "seed": (int, "minibatch seed"),
    "eval_every": (int, "metrics every k iterations (0: at the end)"),
    "neumann_terms": (int, "Neumann terms Q"),
    "neumann_eta": (float, "the Neumann step (one value or one per instance)"),
    "cg_iterations": (int, "CG iterations per estimate"),
    "capture": (bool, "replay iterations as CUDA graphs"),
    "independent_batches": (bool, "each instance draws its own minibatches"),
    "auto_steps": (bool, "steps from the problem: every lower-level and linear-system step "
                         "(inner_step, neumann_eta, fixed_point_nu, ...) 0.9 / L_g, L_g of each "
                         "instance estimated at (x0, y0) by power iteration on H v"),
}
# the steps auto_steps sets (giving one of them too is an error: which one would win is unclear)
_AUTO_STEPS = ("inner_step", "neumann_eta", "fixed_point_nu", "truncated_neumann_eta",
               "sl_bamm_s", "sl_bamm_eta")
_PER_INSTANCE = {"inner_step", "outer_step", "neumann_eta"}

# every other option of the C++ AlgorithmOptions, by its key ("loop.inner_decay" ->
# inner_decay, "fixed_point.nu" -> fixed_point_nu): name -> (key, kind, what)
_FIELDS = {key.replace("loop.", "", 1).replace(".", "_"): (key, kind, what)
           for key, kind, what in _bilevel.algorithm_option_fields()}


def _field_values(where: str, name: str, value) -> list:
    key, kind, _ = _FIELDS[name]
    values = (list(value) if kind == "reals" and isinstance(value, (list, tuple, np.ndarray))
              else [value])
    if not values:
        raise ValueError(f"{where}: {name} must be a number or a list of one per instance, "
                         f"got an empty {type(value).__name__}")
    for v in values:
        if kind == "bool":
            if not isinstance(v, (bool, np.bool_)):
                raise TypeError(f"{where}: {name} must be True or False, got {v!r}")
        elif isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise TypeError(f"{where}: {name} must be a number, got {v!r}")
        elif kind in ("int", "seed") and not float(v).is_integer():
            raise ValueError(f"{where}: {name} must be a whole number, got {v!r}")
    return [float(v) for v in values]


def _check(name: str, value: Any):
    kind, _ = _OPTIONS[name]
    if name in _PER_INSTANCE:
        values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
        if not values:
            raise ValueError(f"solve(): {name} must be a number or a list of one per instance, "
                             f"got an empty {type(value).__name__}")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
                raise TypeError(f"solve(): {name} must be a number or a list of numbers, got {v!r}")
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"solve(): {name} must be > 0 and finite, got {v!r}")
        return [float(v) for v in values]
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError(f"solve(): {name} must be True or False, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"solve(): {name} must be an integer, got {value!r}")
    if value < 0:
        raise ValueError(f"solve(): {name} must be >= 0, got {value!r}")
    return int(value)


def _solve_options(where: str, algorithm: str, instances: int, options: dict):
    """The C++ SolveOptions of a preset and keyword options, each checked by name."""
    names = {a["name"] for a in algorithms()}
    if algorithm not in names:
        raise ValueError(f"{where}: unknown algorithm {algorithm!r}; known: {', '.join(sorted(names))}")
    if isinstance(instances, bool) or not isinstance(instances, (int, np.integer)) or instances < 1:
        raise ValueError(f"{where}: instances must be an integer >= 1, got {instances!r}")
    o = _bilevel.SolveOptions()
    o.algorithm = algorithm
    o.instances = int(instances)
    settings = []
    for name, value in options.items():
        if name in _OPTIONS:
            setattr(o, name, _check(name, value))
        elif name in _FIELDS:
            settings.append((_FIELDS[name][0], _field_values(where, name, value)))
        else:
            known = ", ".join(sorted(set(_OPTIONS) | set(_FIELDS)))
            raise TypeError(f"{where} got an unknown option {name!r}; known: {known}")
    o.settings = settings
    return o


def options() -> dict:
    """Every keyword option of :func:`solve` and :func:`settings`: name -> what it is."""
    out = {name: what for name, (_, what) in _OPTIONS.items()}
    for name, (key, kind, what) in _FIELDS.items():
        out.setdefault(name, f"{what} ({key}; " + ("one value or one per instance" if kind == "reals"
                                                   else kind) + ")")
    return dict(sorted(out.items()))


def settings(algorithm: str = "stocbio", *, instances: int = 1, **options) -> str:
    """The options a :func:`solve` with these arguments would run with, as the C++
    ``describe_settings`` writes them and a checkpoint records them (``key=value`` lines,
    values exact): the preset's defaults with the given options on top. (Some presets fix
    schedule fields when the solver is made, e.g. bo-rep's normalized-momentum x update:
    ``algorithms()`` describes each.)"""
    return _bilevel.describe_settings(_solve_options("settings()", algorithm, instances, options))


def solve(problem: Problem, algorithm: str = "stocbio", *, x0=None, y0=None,
          instances: int = 1, callback: Optional[Callable[[dict], None]] = None,
          progress: Optional[bool] = None, resume: Optional[Result] = None,
          **options) -> Result:
    """Runs a preset (see :func:`algorithms`) on a problem from x0, y0 (default 0;
    ``instances`` x dim arrays or flat). Options are those of the C++ ``AlgorithmOptions``,
    every one by keyword (:func:`options` lists them, :func:`settings` shows what a run would
    use; unknown names raise TypeError listing the known ones). ``callback(metrics)`` sees every
    evaluation; ``progress`` shows a tqdm bar (default: when tqdm is installed and stderr is a
    terminal). Ctrl-C stops the run at the next evaluation and returns the state reached
    (``Result.interrupted``). ``resume=result`` continues a finished or interrupted run of the
    same algorithm, problem and options from where it stopped (x, y, its iteration and the
    algorithm's carried state) up to ``iterations``: the same iterates as one uninterrupted
    run."""
    o = _solve_options("solve()", algorithm, instances, options)
    if options.get("auto_steps"):
        given = [name for name in _AUTO_STEPS if name in options]
        if given:
            raise ValueError(f"solve(): auto_steps=True sets {', '.join(_AUTO_STEPS)} from the "
                             f"problem; drop {', '.join(given)} or auto_steps")
    if resume is not None:
        if not isinstance(resume, Result):
            raise TypeError(f"solve(): resume must be a Result, got {type(resume).__name__}")
        if resume.algorithm != algorithm:
            raise ValueError(f"solve(): resume is a run of {resume.algorithm!r}, not {algorithm!r}")
        if x0 is not None or y0 is not None:
            raise ValueError("solve(): give resume or x0/y0, not both")
        if resume.x.shape[0] != instances:
            raise ValueError(f"solve(): resume has {resume.x.shape[0]} instance(s), "
                             f"instances is {instances}")
        x0, y0 = resume.x, resume.y
        o.start_iteration = int(resume.iteration)
        o.state = [np.ascontiguousarray(a, dtype=np.float64).reshape(-1).tolist()
                   for a in resume.state]
    if isinstance(problem, CallbackProblem) and problem.lower_samples == 0:
        for name in ("lower_batch", "upper_batch"):
            if options.get(name):
                raise ValueError(
                    f"solve(): {name}={options[name]!r} has no effect on this CallbackProblem: "
                    f"its callbacks compute the whole g and f; build it with lower_samples= and "
                    f"upper_samples= (the sizes of the sums behind g and f) to receive each "
                    f"minibatch's sample indices, or leave {name} out")
    for name, samples in (("lower_batch", problem.lower_samples),
                          ("upper_batch", problem.upper_samples)):
        if samples and options.get(name, 0) > samples:
            raise ValueError(f"solve(): {name}={options[name]!r} is more than the problem's "
                             f"{samples} samples")
    if "eval_every" not in options:
        # evaluations are where Ctrl-C and the callback take effect
        o.eval_every = max(1, (options.get("iterations") or 100) // 50)

    def as_start(a, what):
        if a is None:
            return None
        a = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
        return a.reshape(-1)

    bar = None
    if progress is None:
        import sys
        progress = sys.stderr.isatty()
    if progress:
        try:
            from tqdm import tqdm
            total = options.get("iterations")
            bar = tqdm(total=total, unit="it", desc=algorithm)
        except ImportError:
            bar = None

    def observe(metrics: dict):
        if bar is not None:
            bar.n = metrics["iteration"]
            bar.set_postfix(f=f"{metrics['upper_value'][0]:.4g}")
            bar.refresh()
        if callback is not None:
            callback(metrics)

    try:
        r = _bilevel.solve(problem, o, as_start(x0, "x0"), as_start(y0, "y0"), observe)
    finally:
        if bar is not None:
            bar.close()
    return _result(r)


def _result(r: dict) -> Result:
    import warnings as _warnings
    notes = list(r.get("warnings", []))
    for note in notes:
        _warnings.warn(note, RuntimeWarning, stacklevel=3)
    return Result(x=r["x"], y=r["y"], iterations=r["iterations"], seconds=r["seconds"],
                  history=r["history"], diverged_at=list(r["diverged_at"]),
                  interrupted=r["interrupted"], algorithm=r["algorithm"], backend=r["backend"],
                  device=r["device"], iteration=r["iteration"], state=list(r["state"]),
                  warnings=notes, lower_smoothness=list(r.get("lower_smoothness", [])))


def _meta(data, algorithm, executor, ways, meta_batch, shots, query, hidden, inner_steps,
          inner_step, damping, iterations, outer_step, eval_every, seed, test_tasks, test_steps,
          train_classes, test_classes, callback, default_step):
    if algorithm not in _bilevel.meta_algorithms():
        raise ValueError(f"unknown meta-learning algorithm {algorithm!r}; known: "
                         f"{', '.join(_bilevel.meta_algorithms())}")
    imaml = algorithm == "imaml"
    inner_steps = inner_steps if inner_steps is not None else (10 if imaml else 1)
    inner_step = inner_step if inner_step is not None else (0.005 if imaml else default_step)
    damping = damping if damping is not None else (30.0 if imaml else 0.0)
    w = "meta_sinusoid()" if data == "" else "meta_episodes()"
    r = _bilevel.meta_learning(
        executor if executor is not None else Executor("auto"), data, algorithm,
        _integer(w, "ways", ways, 1), _integer(w, "meta_batch", meta_batch, 1),
        _integer(w, "shots", shots, 1), _integer(w, "query", query, 1),
        [_integer(w, "hidden", h, 1) for h in hidden], _integer(w, "inner_steps", inner_steps),
        _real(w, "inner_step", inner_step), _real(w, "damping", damping),
        _integer(w, "iterations", iterations), _real(w, "outer_step", outer_step),
        _integer(w, "eval_every", eval_every), _integer(w, "seed", seed),
        _integer(w, "test_tasks", test_tasks, 1),
        -1 if test_steps is None else _integer(w, "test_steps", test_steps),
        [_integer(w, "train_classes", c) for c in train_classes],
        [_integer(w, "test_classes", c) for c in test_classes], callback)
    keys = ("test_loss_before_adaptation", "test_loss_after_adaptation", "test_loss_interval95",
            "test_accuracy", "test_accuracy_interval95", "nearest_centroid_accuracy",
            "nearest_centroid_interval95")
    return _result(r), {k: r[k] for k in keys if k in r}


def meta_sinusoid(algorithm: str = "maml", *, executor=None, meta_batch: int = 25,
                  shots: int = 10, query: int = 10, hidden: Sequence[int] = (40, 40),
                  inner_steps: Optional[int] = None, inner_step: Optional[float] = None,
                  damping: Optional[float] = None, iterations: int = 10000,
                  outer_step: float = 0.05, eval_every: int = 500, seed: int = 0,
                  test_tasks: int = 600, test_steps: Optional[int] = None,
                  callback: Optional[Callable[[dict], None]] = None):
    """Meta-learning on sinusoid regression as ``bilevel meta`` runs it (same tasks,
    initialisation and schedule for the same seed): MAML, FOMAML, ANIL, iMAML or the pretrain
    baseline. Returns (Result, meta-test dict with the query MSE before and after adaptation
    and its 95% interval). iMAML's defaults are the CLI's: 10 inner steps of 0.005, damping 30."""
    return _meta("", algorithm, executor, 1, meta_batch, shots, query, hidden, inner_steps,
                 inner_step, damping, iterations, outer_step, eval_every, seed, test_tasks,
                 test_steps, [], [], callback, 0.01)


def meta_episodes(algorithm: str = "maml", *, data: str = "fashion-mnist", executor=None,
                  ways: int = 5, shots: int = 1, query: int = 15, meta_batch: int = 25,
                  hidden: Sequence[int] = (64, 64), inner_steps: Optional[int] = None,
                  inner_step: Optional[float] = None, damping: Optional[float] = None,
                  iterations: int = 10000, outer_step: float = 0.05, eval_every: int = 500,
                  seed: int = 0, test_tasks: int = 1000, test_steps: Optional[int] = None,
                  train_classes: Sequence[int] = (), test_classes: Sequence[int] = (),
                  callback: Optional[Callable[[dict], None]] = None):
    """N-way K-shot classification episodes as ``bilevel meta --task fashion-mnist`` runs
    them: meta-train classes (default the even labels) from the training images, meta-test
    classes (default the odd ones) from the test images. Returns (Result, meta-test dict with
    the loss and accuracy after adaptation, and the nearest-centroid baseline, with 95%
    intervals)."""
    return _meta(data, algorithm, executor, ways, meta_batch, shots, query, hidden, inner_steps,
                 inner_step, damping, iterations, outer_step, eval_every, seed, test_tasks,
                 test_steps, list(train_classes), list(test_classes), callback, 0.4)


def align_bandit(algorithm: str = "a-parl", *, executor=None, actions: int = 10,
                 tau: float = 0.5, feedback: int = 256, iterations: int = 500,
                 inner_steps: int = 10, outer_step: float = 0.0, instances: int = 1,
                 eval_every: int = 50, seed: int = 0,
                 callback: Optional[Callable[[dict], None]] = None):
    """Policy alignment on the entropy-regularised bandit as ``bilevel align`` runs it: A-PARL
    or the reward-learning baseline. Returns (Result, dict with each instance's relative
    distance of the learned reward to nu* up to a constant, KL(policy || target) and nu*)."""
    if algorithm not in _bilevel.alignment_algorithms():
        raise ValueError(f"align_bandit(): unknown algorithm {algorithm!r}; known: "
                         f"{', '.join(_bilevel.alignment_algorithms())}")
    w = "align_bandit()"
    r = _bilevel.align_bandit(
        executor if executor is not None else Executor("auto"), algorithm,
        _integer(w, "actions", actions, 1), _real(w, "tau", tau),
        _integer(w, "feedback", feedback), _integer(w, "iterations", iterations),
        _integer(w, "inner_steps", inner_steps), _real(w, "outer_step", outer_step),
        _integer(w, "instances", instances, 1), _integer(w, "eval_every", eval_every),
        _integer(w, "seed", seed), callback)
    answer = {k: r[k] for k in ("relative_reward_error", "kl_policy_target", "optimal_reward")}
    return _result(r), answer


def align_gridworld(algorithm: str = "a-parl", *, executor=None, side: int = 5,
                    horizon: int = 15, gamma: float = 0.9, slip: float = 0.1, tau: float = 0.1,
                    beta: float = 1.0, feedback_type: str = "preference",
                    reward_model: str = "state", feedback: int = 32,
                    iterations: int = 500, inner_steps: int = 10, outer_step: float = 0.0,
                    outer_decay: float = 0.0, instances: int = 1, eval_every: int = 50,
                    seed: int = 0, callback: Optional[Callable[[dict], None]] = None):
    """Policy alignment on batched gridworlds as ``bilevel align --env gridworld`` runs it: one
    seeded MDP per instance, preference (Bradley-Terry) or utility feedback on pairs of the
    policy's trajectories, a reward per state or a row score plus a column score
    (``reward_model="row-column"``, misspecified), A-PARL or the reward-learning baseline, from
    the designer's first reward, with the step on the reward ``outer_step (k + 1)^-outer_decay``
    (0: the preset's 0.1, constant). Returns (Result, dict with each gridworld's true utility of the learned reward's
    policy, the optimal and uniform policies' utilities, the utility ratio (J - J_uniform) /
    (J* - J_uniform) and that of the first reward). Each evaluation's history entry has
    ``true_utility`` and ``utility_ratio`` of the solver's current Q."""
    if algorithm not in _bilevel.alignment_algorithms():
        raise ValueError(f"align_gridworld(): unknown algorithm {algorithm!r}; known: "
                         f"{', '.join(_bilevel.alignment_algorithms())}")
    w = "align_gridworld()"
    if not isinstance(feedback_type, str) or not isinstance(reward_model, str):
        raise TypeError(f"{w}: feedback_type and reward_model must be strings, got "
                        f"{feedback_type!r} and {reward_model!r}")
    r = _bilevel.align_gridworld(
        executor if executor is not None else Executor("auto"), algorithm,
        _integer(w, "side", side, 1), _integer(w, "horizon", horizon, 1), _real(w, "gamma", gamma),
        _real(w, "slip", slip), _real(w, "tau", tau), _real(w, "beta", beta), feedback_type,
        reward_model, _integer(w, "feedback", feedback), _integer(w, "iterations", iterations),
        _integer(w, "inner_steps", inner_steps), _real(w, "outer_step", outer_step),
        _real(w, "outer_decay", outer_decay), _integer(w, "instances", instances, 1),
        _integer(w, "eval_every", eval_every), _integer(w, "seed", seed), callback)
    answer = {k: r[k] for k in ("true_utility", "optimal_utility", "uniform_utility",
                                "utility_ratio", "first_reward_utility_ratio")}
    return _result(r), answer


def _points(where: str, problem: Problem, x, y):
    """x, y as (B, dim) float64 arrays: a 1-D array is one instance."""
    xs = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    ys = np.ascontiguousarray(np.asarray(y, dtype=np.float64))
    if xs.ndim == 1:
        xs = xs[None, :]
    if ys.ndim == 1:
        ys = ys[None, :]
    if xs.ndim != 2 or ys.ndim != 2:
        raise ValueError(f"{where}: x and y must be 1-D (one instance) or (B, dim) arrays, "
                         f"got shapes {np.shape(x)} and {np.shape(y)}")
    return xs, ys


def check_oracles(problem: Problem, x, y, *, step: float = 0.0, tolerance: float = 0.0,
                  seed: int = 0) -> dict:
    """Checks every oracle ``problem`` provides against central differences, per instance, on
    full batches: grad_y g and grad_y f (and grad_x f, grad_x g where they exist) against the
    values, H v and J v against grad_y g, each along a random unit direction.

    x: (dim_x,) or (B, dim_x); y: (dim_y,) or (B, dim_y). step and tolerance <= 0 take the
    defaults (1e-5 each in double). Returns a dict: ``passed`` (bool), ``checks`` (one dict per
    oracle and instance: oracle, against, instance, analytic, finite_difference,
    relative_error, passed), ``skipped`` (oracles not provided, and why) and ``text`` (a
    readable table; print it)."""
    xs, ys = _points("check_oracles", problem, x, y)
    return _bilevel._check_oracles(problem, xs, ys, _real("check_oracles", "step", step),
                                   _real("check_oracles", "tolerance", tolerance),
                                   _integer("check_oracles", "seed", seed))


def hypergradient(problem: Problem, x, y, *, method: str = "cg", iterations: int = 0,
                  neumann_eta: float = 0.0) -> np.ndarray:
    """One hypergradient per instance at (x, y): grad_x f - J v with v solving H v = grad_y f
    (method "cg": conjugate gradient, ``iterations`` = 0 meaning dim_y, exact in exact
    arithmetic; "neumann": ``iterations`` terms, default 100, of step ``neumann_eta``), on full
    batches. At y = y*(x) it is grad F(x). Returns (B, dim_x)."""
    xs, ys = _points("hypergradient", problem, x, y)
    return _bilevel._hypergradient(problem, xs, ys, str(method),
                                   _integer("hypergradient", "iterations", iterations),
                                   _real("hypergradient", "neumann_eta", neumann_eta))
