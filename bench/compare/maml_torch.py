#!/usr/bin/env python3
"""MAML on sinusoid tasks in PyTorch, the learn2learn / higher way: for each task of the
meta-batch, D adaptation steps with torch.autograd.grad(create_graph=True), the query losses
summed and back-propagated, an SGD meta-step. Same case as bench_meta's meta_iteration_maml
(MLP 1-40-40-40-1, ReLU, K = Q = 10, alpha = 0.01, meta-step 0.01, float32); tasks drawn with
torch's generator on the device.

One warm-up meta-iteration, then one timed run of --iters; prints one JSON object per
meta-batch size.
"""
import argparse
import json
import math
import time

import torch

WIDTHS = [1, 40, 40, 40, 1]
K = Q = 10


def init(device):
    g = torch.Generator().manual_seed(0)
    params = []
    for i, o in zip(WIDTHS[:-1], WIDTHS[1:]):
        r = math.sqrt(6.0 / (i + o))
        params.append(((torch.rand(i, o, generator=g) * 2 - 1) * r).to(device).requires_grad_())
        params.append(torch.zeros(o, device=device).requires_grad_())
    return params


def net(params, x):
    for l in range(0, len(params) - 2, 2):
        x = torch.relu(x @ params[l] + params[l + 1])
    return x @ params[-2] + params[-1]


def loss(params, x, y):
    return torch.mean((net(params, x) - y) ** 2)


def meta_iteration(params, meta_batch, steps, alpha, beta, device, first_order):
    a = torch.empty(meta_batch, 1, 1, device=device).uniform_(0.1, 5.0)
    p = torch.empty(meta_batch, 1, 1, device=device).uniform_(0.0, math.pi)
    x = torch.empty(meta_batch, K + Q, 1, device=device).uniform_(-5.0, 5.0)
    y = a * torch.sin(x - p)
    total = 0.0
    for b in range(meta_batch):
        fast = params
        for _ in range(steps):
            g = torch.autograd.grad(loss(fast, x[b, :K], y[b, :K]), fast,
                                    create_graph=not first_order)
            fast = [w - alpha * d for w, d in zip(fast, g)]
        total = total + loss(fast, x[b, K:], y[b, K:])
    grads = torch.autograd.grad(total / meta_batch, params)
    with torch.no_grad():
        for w, d in zip(params, grads):
            w -= beta * d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--meta-batch", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--inner-steps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--first-order", action="store_true")
    args = ap.parse_args()
    dev = torch.device(args.device)
    for mb in args.meta_batch:
        params = init(dev)
        meta_iteration(params, mb, args.inner_steps, 0.01, 0.01, dev, args.first_order)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.iters):
            meta_iteration(params, mb, args.inner_steps, 0.01, 0.01, dev, args.first_order)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        print(json.dumps({"framework": "torch", "version": torch.__version__,
                          "device": str(dev), "threads": torch.get_num_threads(),
                          "case": "fomaml" if args.first_order else "maml",
                          "meta_batch": mb, "inner_steps": args.inner_steps,
                          "iterations": args.iters,
                          "us_per_iteration": 1e6 * dt / args.iters}), flush=True)


if __name__ == "__main__":
    main()
