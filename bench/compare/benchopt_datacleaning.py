#!/usr/bin/env python3
"""Same-run comparison on benchopt's datacleaning problem: benchmark_bilevel's own JAX solvers
against `bilevel hyperclean --protocol benchopt`, test error against wall-clock time.

benchopt's `time` column for its JAX solvers records dispatch, not compute (JAX runs
asynchronously: its timer stops before the work is done - 102,400 SOBA iterations "took"
0.08 s). So this script runs benchmark_bilevel's Dataset, Objective and Solver classes itself
(from a checkout you give with --benchmark; nothing of it is copied here) and times from the
outside: at each evaluation it waits for the iterate (jax.block_until_ready), then evaluates
the test error with the benchmark's own metrics. Evaluations count in the time of both sides
(both evaluate every --eval-every iterations; ours computes more per evaluation: validation
loss, test accuracy, F1; at batch 512 it evaluates every 64 iterations, the samples of 512
of benchopt's batch-64 iterations). Compilation and the solver's warm-up are outside the time;
our side's time is its run's own clock (after loading and the L_g estimate).

The data: benchopt downloads MNIST; here an IDX folder (default Debian's Fashion-MNIST) is
written as the mnist.pkl its Dataset reads. By default both sides then train on the same
arrays: the ones benchopt's Dataset made (its split and label draws, random_state 32, one draw
for every seed, as benchopt runs), taken from its metrics closure after standardization and
written as three LIBSVM files (9 significant digits: the float32 values exactly) that ours reads
with `--validation-data/--test-data --no-standardize`. `--own-draws` gives ours its own split
and label draws per --seed instead (same protocol, different draws).

  python3 bench/compare/benchopt_datacleaning.py --benchmark ~/benchmark_bilevel \\
      --cli build/release/host/cli/bilevel --seeds 1,2,3,4,5 --seconds 30 --out DIR

Needs benchopt, scikit-learn and jax importable by this interpreter. Writes DIR/runs.jsonl (one
line per evaluation: side, solver, seed, seconds, test_error) and DIR/table.md (median over the
seeds of the error at fixed times, and of the time to reach the error thresholds).
"""
import argparse
import gzip
import json
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchopt_common import cpu_model, load, median_table, plot_runs, run_cli_for

# benchmark_bilevel's best parameters for datacleaning p = 0.5 (config/datacleaning0_5_best_params.yml
# at 3ad65dc), eval_freq set from --eval-every
BEST = {
    "SOBA": dict(batch_size=64, outer_ratio=1e-4, step_size=1.0),
    "StocBiO": dict(batch_size=64, n_inner_steps=10, n_shia_steps=10, outer_ratio=1e-5, step_size=0.01),
    "AmIGO": dict(batch_size=64, n_inner_steps=10, outer_ratio=1e-5, step_size=1e-3),
    "SRBA": dict(batch_size=64, outer_ratio=1e-5, period_frac=512.0, step_size=1e-3),
    "SABA": dict(batch_size=64, init_memory="zero", outer_ratio=1e-3, step_size=0.1),
    "VRBO": dict(batch_size=64, n_inner_steps=10, n_shia_steps=10, outer_ratio=1e-4,
                 period_frac=0.5, step_size=0.1),
}


# Our presets at benchopt's best parameters above (`--ours srba:benchopt`): its batch, its
# step_size on y and v, step_size / outer_ratio on x (both constant in SABA and SRBA, as ours),
# and SRBA's period int((n_inner + n_outer) period_frac / batch) with the protocol's 20000 + 5000
# samples. The x step needs no rescaling: --protocol benchopt's g and f are benchopt's functions.
# Every entry walks the data in epochs as benchopt's samplers do (loop.epoch_sampling: SABA's and
# SRBA's default; on benchopt's own arrays SOBA drawing with replacement ended 0.002 below
# benchopt's SOBA, outside the seeds' ranges, and level with it on the epoch walk).
EPOCHS = ["--set", "loop.epoch_sampling=true"]
SAME = {
    # SOBA: step_size on y and on v (ours: --neumann-eta), step_size / outer_ratio on x, all
    # decaying as (k + 1)^-0.5 (its learning-rate scheduler's exponents)
    "soba": [*EPOCHS, "--batch", "64", "--inner-step", "1.0", "--neumann-eta", "1.0",
             "--outer-step", str(1.0 / 1e-4), "--set", "loop.inner_decay=0.5",
             "--set", "loop.outer_decay=0.5"],
    # StocBiO: n_inner_steps SGD steps on y, n_shia_steps Neumann terms of step step_size
    # (shia_jax), step_size / outer_ratio on x, all constant
    "stocbio": [*EPOCHS, "--batch", "64", "--inner-steps", "10", "--inner-step", "0.01",
                "--neumann-terms", "10", "--neumann-eta", "0.01", "--outer-step", str(0.01 / 1e-5)],
    "saba": [*EPOCHS, "--batch", "64", "--inner-step", "0.1", "--outer-step", str(0.1 / 1e-3)],
    "srba": [*EPOCHS, "--batch", "64", "--inner-step", "1e-3", "--outer-step", str(1e-3 / 1e-5),
             "--set", f"srba_period={int((20000 + 5000) * 512.0 / 64)}"],
    # AmIGO: n_inner_steps SGD steps on y and as many on v (its sgd_v), both at step_size
    "amigo": [*EPOCHS, "--batch", "64", "--inner-steps", "10", "--inner-step", "1e-3",
              "--neumann-eta", "1e-3", "--outer-step", str(1e-3 / 1e-5)],
    # VRBO: 10 inner steps, 10 Neumann terms of step step_size; period_frac 0.5 is our default
    # rule: int((20000 + 5000) 0.5 / 64) = 195
    "vrbo": [*EPOCHS, "--batch", "64", "--inner-steps", "10", "--inner-step", "0.1",
             "--neumann-terms", "10", "--neumann-eta", "0.1", "--outer-step", str(0.1 / 1e-4)],
}


def write_mnist_pickle(idx_folder, out):
    def read(stem, offset, shape):
        for name in os.listdir(idx_folder):
            if name.startswith(stem):
                path = os.path.join(idx_folder, name)
                with (gzip.open if name.endswith(".gz") else open)(path, "rb") as f:
                    return np.frombuffer(f.read(), np.uint8, offset=offset).reshape(*shape)
        raise SystemExit(f"{idx_folder}: no {stem}* file")
    data = {"training_images": read("train-images-idx3-ubyte", 16, (-1, 784)),
            "training_labels": read("train-labels-idx1-ubyte", 8, (-1,)),
            "test_images": read("t10k-images-idx3-ubyte", 16, (-1, 784)),
            "test_labels": read("t10k-labels-idx1-ubyte", 8, (-1,))}
    with open(out, "wb") as f:
        pickle.dump(data, f)


def benchopt_dataset(bench):
    if str(bench) not in sys.path:
        sys.path.insert(0, str(bench))  # its solvers import benchmark_utils
    return load(bench / "datasets" / "mnist.py", "bb_mnist").Dataset.get_instance(
        ratio=0.5, random_state=32, reg=0.2)


def write_benchopt_splits(bench, folder):
    """benchopt's own arrays for datacleaning p = 0.5 (split, corrupted train labels,
    StandardScaler features: what its f_inner, f_outer and metrics read), taken by name from its
    metrics closure, as train.svm, validation.svm and test.svm in `folder`; returns the paths."""
    data = benchopt_dataset(bench).get_data()
    metrics = data["metrics"]
    cells = dict(zip(metrics.__code__.co_freevars, (c.cell_contents for c in metrics.__closure__)))
    paths = []
    for split, (xs, ys) in {"train": ("X_train", "y_train"), "validation": ("X_val", "y_val"),
                            "test": ("X_test", "y_test")}.items():
        x = np.asarray(cells[xs], dtype=np.float32)
        y = np.asarray(cells[ys])
        labels = y.argmax(axis=1) if y.ndim == 2 else y
        path = folder / f"{split}.svm"
        with open(path, "w") as f:
            for row, label in zip(x, labels):
                nz = np.flatnonzero(row)
                f.write(f"{int(label)} " + " ".join(f"{j + 1}:{v:.9g}" for j, v in
                                                    zip(nz, row[nz].tolist())) + "\n")
        paths.append(str(path))
    return paths


def run_benchopt(bench, solver_name, seed, seconds, eval_every, rows):
    import jax
    dataset = benchopt_dataset(bench)
    objective = load(bench / "objective.py", "bb_objective").Objective.get_instance()
    objective.set_data(**dataset.get_data())
    solver_file = {"SOBA": "soba", "StocBiO": "stocbio", "AmIGO": "amigo", "SRBA": "srba",
                   "SABA": "saba", "VRBO": "vrbo"}[solver_name]
    Solver = load(bench / "solvers" / f"{solver_file}.py", f"bb_{solver_file}").Solver
    solver = Solver.get_instance(**BEST[solver_name], eval_freq=eval_every, random_state=seed)
    solver.set_objective(**objective.get_objective())  # jit + warm-up, outside the time
    start = [None]
    evaluations = [0]  # its callback runs at iteration 0, then every eval_freq iterations

    def callback():
        jax.block_until_ready((solver.inner_var, solver.outer_var))
        now = time.perf_counter()
        if start[0] is None:
            start[0] = now
        error = objective.evaluate_result(**solver.get_result())["test_accuracy"]
        rows.append({"side": "benchopt", "solver": solver_name, "seed": seed,
                     "seconds": now - start[0], "test_error": float(error),
                     "iteration": evaluations[0] * eval_every})
        evaluations[0] += 1
        return now - start[0] < seconds

    solver.run(callback)  # (its init() starts from the objective's inner_var0, outer_var0)
    jax.clear_caches()  # (each solver's jitted closures: released before the next)


def run_ours(cli, algo, seed, seconds, eval_every, rows, threads, splits=None):
    """`algo`, or `algo:benchopt` for benchopt's best parameters of that solver (SAME), and
    `algo:benchopt:KEY=V[:KEY=V...]` with more `--set KEY=V` (e.g. vrbo:benchopt:vrbo_x_move=false).
    `splits`: benchopt's train, validation and test files (write_benchopt_splits), else ours
    are drawn from the IDX folder with --seed."""
    name, _, rest = algo.partition(":")
    params, *extras = rest.split(":") if rest else [""]
    with tempfile.TemporaryDirectory() as tmp:
        metrics = Path(tmp) / "m.jsonl"
        iters = 200000
        cmd = [cli, "hyperclean", "--protocol", "benchopt", "--algo", name, "--seed", str(seed),
               "--iters", str(iters), "--eval-every", str(eval_every), "--no-baselines",
               "--backend", "cpu", "--metrics", str(metrics)]
        if splits:
            cmd += ["--data", splits[0], "--validation-data", splits[1], "--test-data", splits[2],
                    "--no-standardize"]
        else:
            cmd += ["--data", str(Path("mnist-idx").resolve())]
        if params == "benchopt":
            cmd += SAME[name]
        for extra in extras:
            cmd += ["--set", extra]
        if threads:
            cmd += ["--threads", str(threads)]
        # stop it at the time budget: the metrics lines written so far are the curve
        for m in run_cli_for(cmd, metrics, seconds, 30):
            if "test_accuracy" not in m:
                continue
            rows.append({"side": "bilevel", "solver": algo, "seed": seed, "seconds": m["seconds"],
                         "test_error": 1.0 - m["test_accuracy"][0],
                         "iteration": m.get("iteration")})


def table(rows, thresholds, times):
    return median_table(rows, "test_error", "error", times, thresholds, ".4f", ".3f")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", required=True, type=Path, help="a checkout of benchmark_bilevel")
    ap.add_argument("--cli", required=True, help="the bilevel command")
    ap.add_argument("--idx", default="/usr/share/datasets/fashion-mnist", help="IDX folder")
    ap.add_argument("--solvers", default="SOBA,StocBiO")
    ap.add_argument("--ours", default="soba,stocbio",
                    help="our presets; PRESET:benchopt runs it at benchopt's best parameters "
                         "(saba, srba, amigo, vrbo)")
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--eval-every", type=int, default=512, help="benchopt's eval_freq")
    ap.add_argument("--ours-eval-every", type=int, default=64,
                    help="ours (batch 512, theirs 64: 64 of ours see the samples of 512 of theirs)")
    ap.add_argument("--threads", type=int, default=0, help="our --threads (0: the default)")
    ap.add_argument("--thresholds", default="0.24,0.23,0.225,0.22")
    ap.add_argument("--own-draws", action="store_true",
                    help="ours draws its split and labels per --seed (default: benchopt's arrays)")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    args.out = args.out.resolve()  # (the runs change the working folder)
    args.out.mkdir(parents=True, exist_ok=True)
    cli = str(Path(args.cli).resolve())
    rows = []
    work = Path(tempfile.mkdtemp())
    write_mnist_pickle(args.idx, work / "mnist.pkl")
    os.symlink(Path(args.idx).resolve(), work / "mnist-idx")
    os.chdir(work)  # benchopt's Dataset reads ./mnist.pkl
    splits = None
    if not args.own_draws:
        print("writing benchopt's arrays as LIBSVM files", file=sys.stderr, flush=True)
        splits = write_benchopt_splits(args.benchmark.resolve(), work)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = open(args.out / "runs.jsonl", "w")  # written run by run: a crash keeps what is done

    def keep(start):
        for r in rows[start:]:
            runs.write(json.dumps(r) + "\n")
        runs.flush()

    for seed in seeds:
        for name in filter(None, args.solvers.split(",")):
            print(f"benchopt {name} seed {seed}", file=sys.stderr, flush=True)
            start = len(rows)
            run_benchopt(args.benchmark.resolve(), name, seed, args.seconds, args.eval_every, rows)
            keep(start)
        for algo in filter(None, args.ours.split(",")):
            print(f"bilevel {algo} seed {seed}", file=sys.stderr, flush=True)
            # at benchopt's parameters (its batch 64) every benchopt eval_freq iterations
            every = args.eval_every if ":benchopt" in algo else args.ours_eval_every
            start = len(rows)
            run_ours(cli, algo, seed, args.seconds, every, rows, args.threads, splits)
            keep(start)
    runs.close()
    import jax
    thresholds = [float(t) for t in args.thresholds.split(",")]
    times = [t for t in (0.5, 1, 2, 5, 10, 30, 60) if t <= args.seconds]
    data = ("ours drew its own split and labels per seed" if args.own_draws else
            "both sides on benchopt's arrays (its split and label draws, random_state 32)")
    text = (f"datacleaning p = 0.5 ({args.idx}; {data}), median over seeds {args.seeds}, wall clock "
            f"from the first iteration, evaluations every {args.eval_every} iterations of "
            f"benchopt's and {args.ours_eval_every} of ours; "
            f"CPU: {cpu_model()}; jax {jax.__version__}\n\n" + table(rows, thresholds, times) + "\n")
    (args.out / "table.md").write_text(text)
    print(text)
    plot_runs(args.out, "datacleaning")


if __name__ == "__main__":
    main()
