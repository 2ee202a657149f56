#!/usr/bin/env python3
"""Same-run comparison on benchopt's quadratics: benchmark_bilevel's own JAX solvers against
`bilevel quadratics` on the same instance, benchopt's metric ||grad F(x)||^2 against wall clock.

The instance: benchmark_bilevel's best-parameter configuration (config/quadratics_021424_
best_params.yml at 3ad65dc: 32768 inner and 1024 outer samples, dim_inner 100, dim_outer 10,
mu_inner 0.1, L_cross 0.1, random_state 2442). benchopt's side builds it with its own Dataset;
ours reads the same draws from the file benchopt_quadratic_data.py writes (--data). Both run
its solvers' best parameters (batch 64, step_size 0.1, outer_ratio 1, SRBA's period_frac 1/2,
SABA's zero memory) in float32 (benchopt's JAX default; ours --precision float), and are timed
from the outside as in benchopt_datacleaning.py (jax.block_until_ready at each evaluation;
ours: its run's own clock). Evaluations every --eval-every iterations on both sides.

  python3 bench/compare/benchopt_quadratic_data.py --benchmark BB --out q.bin \\
      --n-samples-inner 32768 --n-samples-outer 1024 --dim-inner 100 --dim-outer 10
  python3 bench/compare/benchopt_quadratics.py --benchmark BB --data q.bin \\
      --cli build/release/host/cli/bilevel --seeds 1,2,3,4,5 --seconds 10 --out DIR
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from benchopt_common import cpu_model, load, median_table, plot_runs, run_cli_for

DATASET = dict(L_cross_inner=0.1, L_cross_outer=0.1, mu_inner=0.1, n_samples_inner=32768,
               n_samples_outer=1024, dim_inner=100, dim_outer=10)
BEST = {"SABA": dict(batch_size=64, mode_init_memory="zero", outer_ratio=1.0, step_size=0.1),
        "SRBA": dict(batch_size=64, outer_ratio=1.0, period_frac=0.5, step_size=0.1)}
OURS = ["--batch", "64", "--inner-step", "0.1", "--outer-step", "0.1", "--precision", "float"]


def run_benchopt(bench, name, seed, seconds, eval_every, rows):
    import jax
    if str(bench) not in sys.path:
        sys.path.insert(0, str(bench))
    dataset = load(bench / "datasets" / "simulated.py", "bb_simulated").Dataset.get_instance(**DATASET)
    objective = load(bench / "objective.py", "bb_objective").Objective.get_instance()
    objective.set_data(**dataset.get_data())
    Solver = load(bench / "solvers" / f"{name.lower()}.py", f"bb_{name.lower()}").Solver
    params = dict(BEST[name])
    if name == "SABA" and "mode_init_memory" not in Solver.parameters:
        params["init_memory"] = params.pop("mode_init_memory")
    solver = Solver.get_instance(**params, eval_freq=eval_every, random_state=seed)
    solver.set_objective(**objective.get_objective())
    start = [None]

    def callback():
        jax.block_until_ready((solver.inner_var, solver.outer_var))
        now = time.perf_counter()
        if start[0] is None:
            start[0] = now
        value = objective.evaluate_result(**solver.get_result())["value"]
        rows.append({"side": "benchopt", "solver": name, "seed": seed,
                     "seconds": now - start[0], "value": float(value)})
        return now - start[0] < seconds

    solver.run(callback)
    # each solver jits its own closure over the 1.3 GB instance: release it before the next
    # (five seeds' worth once took 19 GB and the OOM killer ended the run)
    jax.clear_caches()


def run_ours(cli, data, algo, seed, seconds, eval_every, rows, threads):
    with tempfile.TemporaryDirectory() as tmp:
        metrics = Path(tmp) / "m.jsonl"
        cmd = [cli, "quadratics", "--data", str(data), "--algo", algo, "--seed", str(seed),
               "--iters", "10000000", "--eval-every", str(eval_every), "--backend", "cpu",
               "--metrics", str(metrics)] + OURS
        if threads:
            cmd += ["--threads", str(threads)]
        # (reading the file comes first: up to two minutes for benchopt's 3 GB instance)
        for m in run_cli_for(cmd, metrics, seconds, 120):
            if "hypergradient_norm_squared" not in m:
                continue
            rows.append({"side": "bilevel", "solver": algo, "seed": seed, "seconds": m["seconds"],
                         "value": m["hypergradient_norm_squared"][0]})


def table(rows, times, thresholds):
    return median_table(rows, "value", "value", times, thresholds, ".3e", "g")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", required=True, type=Path)
    ap.add_argument("--data", required=True, type=Path, help="the instance, from benchopt_quadratic_data.py")
    ap.add_argument("--cli", required=True)
    ap.add_argument("--solvers", default="SABA,SRBA")
    ap.add_argument("--ours", default="saba,srba")
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--eval-every", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--thresholds", default="1e-4,1e-6,1e-8,1e-10")
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args()
    a.out = a.out.resolve()
    a.out.mkdir(parents=True, exist_ok=True)
    cli, data = str(Path(a.cli).resolve()), a.data.resolve()
    rows = []
    work = Path(tempfile.mkdtemp())
    import os
    os.chdir(work)  # (gen_matrices caches in ./__cache__)
    runs = open(a.out / "runs.jsonl", "w")  # written run by run: a crash keeps what is done

    def keep(start):
        for r in rows[start:]:
            runs.write(json.dumps(r) + "\n")
        runs.flush()

    for seed in [int(s) for s in a.seeds.split(",")]:
        for name in filter(None, a.solvers.split(",")):
            print(f"benchopt {name} seed {seed}", file=sys.stderr, flush=True)
            start = len(rows)
            run_benchopt(a.benchmark.resolve(), name, seed, a.seconds, a.eval_every, rows)
            keep(start)
        for algo in filter(None, a.ours.split(",")):
            print(f"bilevel {algo} seed {seed}", file=sys.stderr, flush=True)
            start = len(rows)
            run_ours(cli, data, algo, seed, a.seconds, a.eval_every, rows, a.threads)
            keep(start)
    runs.close()
    import jax
    cpu = cpu_model()
    times = [t for t in (0.5, 1, 2, 5, 10, 30) if t <= a.seconds]
    text = (f"benchopt quadratics ({DATASET}), best parameters, float32, median over seeds "
            f"{a.seeds}, ||grad F(x)||^2 against wall clock from the first evaluation, evaluations "
            f"every {a.eval_every} iterations; CPU: {cpu}; jax {jax.__version__}\n\n" +
            table(rows, times, [float(t) for t in a.thresholds.split(",")]) + "\n")
    (a.out / "table.md").write_text(text)
    print(text)
    plot_runs(a.out, "quadratics")


if __name__ == "__main__":
    main()
