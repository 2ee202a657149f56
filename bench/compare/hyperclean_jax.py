#!/usr/bin/env python3
"""The hyper-cleaning iterations of bench_hyperclean in JAX, written the way benchopt's bilevel
benchmark writes its solvers: autodiff for every derivative (jax.grad, jax.vjp), the whole run
one jit-compiled lax.fori_loop, jax.vmap over instances for B > 1 (shared data and shared
minibatches, per-instance step sizes, as bench_hyperclean's B instances).

Cases (Fashion-MNIST shapes: 20000 train / 5000 validation samples, 784 features + bias,
10 classes, batch 512, float32; data random, timing only):
  soba     gy, H v, J v at one point (one vjp of grad_y g), fy; y, v, x steps
  stocbio  D = 10 SGD steps on y, Neumann series with Q = 10 HVPs on fresh batches, J v
  bo-rep   N = 3 steps on y every I = 2 iterations, one step on z (H z on one batch), J z on
           another batch (the authors' code), normalized momentum on x
  hvp_full H v + J v on the whole training set (--full-train x --full-features)
Each case: compile and run once (warm-up), then one timed run of --iters iterations.
Prints one JSON object per case.
"""
import argparse
import json
import sys
import time

import jax
import jax.numpy as jnp
from jax import lax

BATCH, CLASSES, REG = 512, 10, 3e-3


def make_data(n_train, n_val, features, seed=0):
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    a = jax.random.normal(k[0], (n_train, features + 1)).at[:, -1].set(1.0)
    av = jax.random.normal(k[1], (n_val, features + 1)).at[:, -1].set(1.0)
    lab = jax.random.randint(k[2], (n_train,), 0, CLASSES)
    labv = jax.random.randint(k[3], (n_val,), 0, CLASSES)
    return a, lab, av, labv


def cross_entropy(logits, labels):
    return jax.nn.logsumexp(logits, axis=1) - jnp.take_along_axis(logits, labels[:, None], 1)[:, 0]


def make_problem(a, lab, av, labv):
    def g(x, w, idx):
        ce = cross_entropy(a[idx] @ w, lab[idx])
        return jnp.mean(jax.nn.sigmoid(x[idx]) * ce) + REG * jnp.sum(w * w)

    def f(w, idx):
        return jnp.mean(cross_entropy(av[idx] @ w, labv[idx]))

    grad_y_g = jax.grad(g, argnums=1)
    n, nv = a.shape[0], av.shape[0]

    def draw(key, m):
        return jax.random.randint(key, (BATCH,), 0, m)

    def hvp_jvp(x, w, v, idx):
        # H v and J v: one vjp of grad_y g (H is symmetric)
        _, vjp = jax.vjp(lambda w_, x_: grad_y_g(x_, w_, idx), w, x)
        return vjp(v)

    def soba(state, key, rho, gamma):
        x, w, v, m = state
        kl, ku = jax.random.split(key)
        il, iu = draw(kl, n), draw(ku, nv)
        gy = grad_y_g(x, w, il)
        hv, jv = hvp_jvp(x, w, v, il)
        fy = jax.grad(f)(w, iu)
        return (x + gamma * jv, w - rho * gy, v - rho * (hv - fy), m)

    def stocbio(state, key, rho, gamma, d=10, q=10, eta=0.1):
        x, w, v, m = state
        keys = jax.random.split(key, d + q + 2)

        def inner(t, w_):
            return w_ - rho * grad_y_g(x, w_, draw(keys[t], n))

        w = lax.fori_loop(0, d, inner, w)
        fy = jax.grad(f)(w, draw(keys[d], nv))

        def neumann(t, rs):
            r, s = rs
            hr, _ = hvp_jvp(x, w, r, draw(keys[d + 1 + t], n))
            r = r - eta * hr
            return (r, s + r)

        _, s = lax.fori_loop(0, q, neumann, (fy, fy))
        _, jv = hvp_jvp(x, w, eta * s, draw(keys[d + q + 1], n))
        return (x + gamma * jv, w, v, m)

    def borep(state, key, k, rho, eta_x, period=2, inner_steps=3, nu=1e-2, beta=0.9):
        x, w, z, m = state
        keys = jax.random.split(key, inner_steps + 3)

        def lower(w_):
            return lax.fori_loop(0, inner_steps,
                                 lambda t, w2: w2 - rho * grad_y_g(x, w2, draw(keys[t], n)), w_)

        w = lax.cond(k % period == 0, lower, lambda w_: w_, w)
        fy = jax.grad(f)(w, draw(keys[inner_steps], nv))
        # H z and J z on two batches, as the authors' code (jhao6, data_cleaning/methods/
        # bo_rep.py: jacob on one train batch, Gyxz on a fresh one) and bilevel's bo-rep do
        hz, _ = hvp_jvp(x, w, z, draw(keys[inner_steps + 1], n))
        z = z - nu * (hz - fy)
        _, jz = hvp_jvp(x, w, z, draw(keys[inner_steps + 2], n))
        m = beta * m + (1 - beta) * (-jz)
        return (x - eta_x * m / jnp.linalg.norm(m), w, z, m)

    def hvp_full(x, w, v):
        def gy_full(w_, x_):
            return jax.grad(lambda w2: jnp.mean(jax.nn.sigmoid(x_) * cross_entropy(a @ w2, lab))
                            + REG * jnp.sum(w2 * w2))(w_)
        _, vjp = jax.vjp(gy_full, w, x)
        return vjp(v)

    return soba, stocbio, borep, hvp_full


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="soba,stocbio,bo-rep,hvp_full")
    ap.add_argument("--instances", default="1", help="comma-separated B values (vmap for B > 1)")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--features", type=int, default=784)
    ap.add_argument("--full-train", type=int, default=20000)
    ap.add_argument("--full-features", type=int, default=784)
    args = ap.parse_args()
    device = jax.devices()[0]
    for case in args.cases.split(","):
        n, d = (args.full_train, args.full_features) if case == "hvp_full" else (args.train, args.features)
        a, lab, av, labv = make_data(n, 5000, d)
        soba, stocbio, borep, hvp_full = make_problem(a, lab, av, labv)
        for nb in [int(b) for b in args.instances.split(",")]:
            if case == "hvp_full" and nb > 1:
                continue
            rows = d + 1
            state = (jnp.zeros((nb, n)), jnp.full((nb, rows, CLASSES), 0.01),
                     jnp.full((nb, rows, CLASSES), 0.02), jnp.zeros((nb, n)))
            rho = jnp.full((nb,), 0.1)
            gamma = jnp.linspace(500.0, 1500.0, nb) if nb > 1 else jnp.full((1,), 1000.0)
            iters = args.iters if case in ("soba", "bo-rep") else max(1, args.iters // 5)
            if case == "hvp_full":
                fn = jax.jit(lambda x, w, v: hvp_full(x[0], w[0], v[0]))
                fn(state[0], state[1], state[2])[0].block_until_ready()
                t0 = time.perf_counter()
                for _ in range(iters):
                    out = fn(state[0], state[1], state[2])
                out[0].block_until_ready()
                secs = time.perf_counter() - t0
            else:
                if case == "soba":
                    step = lambda s, key, k, r, gm: soba(s, key, r, gm)
                elif case == "stocbio":
                    step = lambda s, key, k, r, gm: stocbio(s, key, r, gm)
                else:
                    step = lambda s, key, k, r, gm: borep(s, key, k, r, 1.0)
                # B instances: vmap over the state and the step sizes, shared key (shared batches)
                batched = jax.vmap(step, in_axes=(0, None, None, 0, 0))

                def run(s, key, count):
                    def body(k, s_):
                        return batched(s_, jax.random.fold_in(key, k), k, rho, gamma)
                    return lax.fori_loop(0, count, body, s)

                run_jit = jax.jit(run, static_argnums=2)
                key = jax.random.PRNGKey(1)
                jax.block_until_ready(run_jit(state, key, iters))  # compile + warm-up
                t0 = time.perf_counter()
                out = run_jit(state, key, iters)
                jax.block_until_ready(out)
                secs = time.perf_counter() - t0
            print(json.dumps({"framework": f"jax {jax.__version__}", "mode": "jit", "device": str(device.platform),
                              "case": case, "instances": nb, "samples": n, "features": d,
                              "iterations": iters, "us_per_iteration": secs / iters * 1e6}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
