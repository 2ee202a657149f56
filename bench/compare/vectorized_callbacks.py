"""What the vectorised callback form buys: SOBA on the ridge example (examples/ridge-hpo,
12 features, minibatches of 32 rows) for B instances at once, with one Python call per
instance and oracle (CallbackProblem's default) against one call for all instances
(vectorized=True), for the NumPy callbacks and for JAX's g and f (jax.vmap). Time per
iteration, best of 3 runs of 300 iterations. Needs the Python package (python/README.md);
JAX rows are left out where JAX is missing.

    OMP_NUM_THREADS=1 python3 bench/compare/vectorized_callbacks.py > results.json
"""
import importlib.util
import json
import pathlib
import platform
import sys

import numpy as np

import bilevel

_EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "ridge-hpo" / "ridge_hpo.py"
_spec = importlib.util.spec_from_file_location("ridge_hpo", _EXAMPLE)
ridge = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ridge)

ITERATIONS = 300


def per_iteration_us(problem, instances):
    options = dict(ridge.SOBA, iterations=ITERATIONS, eval_every=ITERATIONS,
                   outer_step=list(np.linspace(2.0, 5.0, instances)))
    best = min(bilevel.solve(problem, "soba", instances=instances, **options).seconds
               for _ in range(3))
    return best / ITERATIONS * 1e6


def cpu_model():
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    data = ridge.make_data()
    forms = [("numpy", ridge.numpy_problem(data), ridge.numpy_problem_vectorized(data))]
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        forms.append(("jax", ridge.jax_ridge_problem(data), ridge.jax_ridge_problem(data, vectorized=True)))
    except ImportError:
        pass
    rows = []
    for name, one, all_ in forms:
        for instances in (1, 8, 32):
            a, b = per_iteration_us(one, instances), per_iteration_us(all_, instances)
            rows.append({"callbacks": name, "instances": instances, "per_instance_us": a,
                         "vectorized_us": b, "speedup": a / b})
    print(json.dumps({"cpu": cpu_model(),
                      "python": sys.version.split()[0], "numpy": np.__version__,
                      "iterations": ITERATIONS, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
