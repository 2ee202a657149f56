"""The cost of the Python-callback path (bilevel.CallbackProblem) against a built-in problem of
the same size: stocBiO iterations (10 inner steps, Q = 10: 21 oracle calls) on a 4 x 6
quadratic, best of 3 runs of 2000 iterations. Needs the Python package (python/README.md).

    OMP_NUM_THREADS=1 python3 bench/compare/python_callbacks.py > results.txt
"""
import json
import platform
import sys

import numpy as np

import bilevel

A = np.random.default_rng(0).normal(size=(6, 4)) / 3
b = np.ones(6)
callbacks = bilevel.CallbackProblem(
    4, 6,
    grad_y_g=lambda x, y: y - A @ x,
    grad_f=lambda x, y: (0.5 * x, y - b),
    hvp_jvp=lambda x, y, v: (v.copy(), -A.T @ v),
    values=lambda x, y: (0.5 * np.sum((y - b) ** 2) + 0.25 * np.sum(x ** 2),
                         0.5 * np.sum((y - A @ x) ** 2)))
builtin = bilevel.QuadraticProblem(bilevel.Executor("cpu"), dx=4, dy=6, samples=0, seed=1)
results = {"machine": platform.processor() or platform.machine(), "python": sys.version.split()[0],
           "numpy": np.__version__}
for name, problem in [("builtin_quadratic", builtin), ("python_callbacks", callbacks)]:
    best = min(bilevel.solve(problem, "stocbio", iterations=2000, inner_steps=10, neumann_terms=10,
                             eval_every=2000).seconds for _ in range(3))
    results[name + "_us_per_iteration"] = best / 2000 * 1e6
results["calls_per_iteration"] = 21
results["us_per_python_call"] = (results["python_callbacks_us_per_iteration"]
                                 - results["builtin_quadratic_us_per_iteration"]) / 21
print(json.dumps(results, indent=1))
