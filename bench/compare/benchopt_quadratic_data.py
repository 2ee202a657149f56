#!/usr/bin/env python3
"""Writes benchopt's quadratics as a file bilevel reads (FiniteSumQuadraticData::read).

Runs benchmark_bilevel's own generator (benchmark_utils/gen_matrices.py, from a checkout given
with --benchmark; nothing of it is copied here) with the draws of its datasets/simulated.py
get_data (same key splitting, same retry loop), so the file holds benchopt's instance, draw for
draw. Layout: "BLQUAD01", dx, dy, n_inner, n_outer (little-endian uint64), then for the inner
and the outer level Hyy, Hxx, C, ly, lx of every sample as little-endian float64, each sample's
matrices column-major (C is dx x dy: benchopt's `cross`, shape (n, d_outer, d_inner)).

  python3 bench/compare/benchopt_quadratic_data.py --benchmark ~/benchmark_bilevel --out q.bin

Needs jax and joblib (gen_matrices caches with joblib.Memory in ./__cache__).
"""
import argparse
import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    # datasets/simulated.py's parameters and defaults
    ap.add_argument("--n-samples-inner", type=int, default=1024)
    ap.add_argument("--n-samples-outer", type=int, default=1024)
    ap.add_argument("--dim-inner", type=int, default=100)
    ap.add_argument("--dim-outer", type=int, default=100)
    ap.add_argument("--mu-inner", type=float, default=0.1)
    ap.add_argument("--L-inner-inner", type=float, default=1.0)
    ap.add_argument("--L-inner-outer", type=float, default=1.0)
    ap.add_argument("--L-outer-inner", type=float, default=1.0)
    ap.add_argument("--L-outer-outer", type=float, default=1.0)
    ap.add_argument("--L-cross-inner", type=float, default=0.1)
    ap.add_argument("--L-cross-outer", type=float, default=0.1)
    ap.add_argument("--random-state", type=int, default=2442)
    a = ap.parse_args()

    import jax
    sys.path.insert(0, str(a.benchmark.resolve()))
    spec = importlib.util.spec_from_file_location(
        "bb_gen_matrices", a.benchmark / "benchmark_utils" / "gen_matrices.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)

    # as simulated.py's get_data (its loop splits the same key each time: one draw)
    key = jax.random.PRNGKey(a.random_state)
    keys = jax.random.split(key, 2)
    inner = gen.gen_matrices(a.n_samples_inner, a.dim_inner, a.dim_outer, a.L_inner_inner,
                             a.L_outer_inner, a.L_cross_inner, a.mu_inner, keys[0])
    outer = gen.gen_matrices(a.n_samples_outer, a.dim_inner, a.dim_outer, a.L_inner_outer,
                             a.L_outer_outer, a.L_cross_outer, a.mu_inner, keys[1])
    dx, dy = a.dim_outer, a.dim_inner
    with open(a.out, "wb") as f:
        f.write(b"BLQUAD01")
        f.write(struct.pack("<4Q", dx, dy, a.n_samples_inner, a.n_samples_outer))
        for hyy, hxx, cross, ly, lx in (inner, outer):
            # per sample column-major: Hyy, Hxx symmetric; C (n, dx, dy) -> (n, dy, dx) C-order
            for m in (hyy, hxx, np.transpose(np.asarray(cross), (0, 2, 1)), ly, lx):
                f.write(np.ascontiguousarray(np.asarray(m, dtype="<f8")).tobytes())
    print(f"{a.out}: dx {dx}, dy {dy}, {a.n_samples_inner} inner and {a.n_samples_outer} outer "
          f"samples (benchopt's draws, random_state {a.random_state})")


if __name__ == "__main__":
    main()
