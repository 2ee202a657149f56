#!/usr/bin/env python3
"""The hyper-cleaning iterations of bench_hyperclean, written in PyTorch the way its users write
them (autograd for every derivative, not hand-derived gradients), for same-run comparisons.

Cases (Fashion-MNIST shapes: 20000 train / 5000 validation samples, 784 features + bias,
10 classes, batch 512, float32; data random, timing only):
  soba     one SOBA step: gy, H v, J v at one point (one double-backward), fy; y, v, x steps
  stocbio  D = 10 SGD steps on y, Neumann series with Q = 10 HVPs on fresh batches, J v
  bo-rep   N = 3 steps on y every I = 2 iterations, one step on z (H z on one batch), J z on
           another batch (the authors' code), normalized momentum on x
  hvp_full H v + J v on the whole training set (--train x --features; 1,000,000 x 1024 on a GPU)
Modes: eager (CPU or CUDA) and, on CUDA, the iteration captured once as a CUDA graph and
replayed. Each case: warm-up outside the timing, then one timed run of --iters iterations.
Prints one JSON object per case.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F


def make_data(n_train, n_val, features, classes, device, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    a = torch.randn(n_train, features + 1, generator=g)
    a[:, -1] = 1.0
    av = torch.randn(n_val, features + 1, generator=g)
    av[:, -1] = 1.0
    lab = torch.randint(0, classes, (n_train,), generator=g)
    labv = torch.randint(0, classes, (n_val,), generator=g)
    return a.to(device), lab.to(device), av.to(device), labv.to(device)


class Hyperclean:
    """g(x, W) = mean_b sigmoid(x_i) CE(a_i W, l_i) + reg ||W||^2;  f(W) = mean_b' CE(a_j W, l_j)."""

    def __init__(self, a, lab, av, labv, reg=3e-3, batch=512):
        self.a, self.lab, self.av, self.labv = a, lab, av, labv
        self.reg, self.batch = reg, batch

    def g(self, x, w, idx):
        ce = F.cross_entropy(self.a[idx] @ w, self.lab[idx], reduction="none")
        return (torch.sigmoid(x[idx]) * ce).mean() + self.reg * (w * w).sum()

    def f(self, w, idx):
        return F.cross_entropy(self.av[idx] @ w, self.labv[idx])

    def draw(self, n):
        return torch.randint(0, n, (self.batch,), device=self.a.device)


def leaf(t):
    return t.detach().requires_grad_(True)


# Every step reads its state from s and writes it back in place (copy_), so that a captured
# CUDA graph replays a real loop.
def soba_step(p, s):
    x, w, v = leaf(s["x"]), leaf(s["w"]), s["v"]
    il, iu = p.draw(p.a.shape[0]), p.draw(p.av.shape[0])
    gy = torch.autograd.grad(p.g(x, w, il), w, create_graph=True)[0]
    hv, jv = torch.autograd.grad((gy * v).sum(), (w, x))
    fy = torch.autograd.grad(p.f(w, iu), w)[0]
    with torch.no_grad():
        s["w"].sub_(s["rho"] * gy)
        s["v"].sub_(s["rho"] * (hv - fy))
        s["x"].add_(s["gamma"] * jv)  # x <- x - gamma (fx - J v), fx = 0


def stocbio_step(p, s, d=10, q=10, eta=0.1):
    x = s["x"]
    n = p.a.shape[0]
    w = s["w"]
    for _ in range(d):
        w = leaf(w)
        gw = torch.autograd.grad(p.g(x, w, p.draw(n)), w)[0]
        w = w.detach() - s["rho"] * gw
    w = leaf(w)
    fy = torch.autograd.grad(p.f(w, p.draw(p.av.shape[0])), w)[0]
    r, vsum = fy, fy
    for _ in range(q):
        gy = torch.autograd.grad(p.g(x, w, p.draw(n)), w, create_graph=True)[0]
        hr = torch.autograd.grad((gy * r).sum(), w)[0]
        r = r - eta * hr
        vsum = vsum + r
    v = eta * vsum
    xl = leaf(x)
    gy = torch.autograd.grad(p.g(xl, w, p.draw(n)), w, create_graph=True)[0]
    jv = torch.autograd.grad((gy * v).sum(), xl)[0]
    with torch.no_grad():
        s["w"].copy_(w)
        s["x"].add_(s["gamma"] * jv)


def borep_step(p, s, k, period=2, inner=3, nu=1e-2, beta=0.9):
    n = p.a.shape[0]
    w = s["w"]
    if k % period == 0:
        for _ in range(inner):
            w = leaf(w)
            gw = torch.autograd.grad(p.g(s["x"], w, p.draw(n)), w)[0]
            w = w.detach() - s["rho"] * gw
    x, w, z = leaf(s["x"]), leaf(w), s["v"]
    fy = torch.autograd.grad(p.f(w, p.draw(p.av.shape[0])), w)[0]
    # H z and J z on two batches, as the authors' code (bo_rep.py) and bilevel's bo-rep do
    gh = torch.autograd.grad(p.g(x, w, p.draw(n)), w, create_graph=True)[0]
    hz = torch.autograd.grad((gh * z).sum(), w)[0]
    z = (z - nu * (hz - fy)).detach()
    gj = torch.autograd.grad(p.g(x, w, p.draw(n)), w, create_graph=True)[0]
    jz = torch.autograd.grad((gj * z).sum(), x)[0]
    with torch.no_grad():
        s["m"].mul_(beta).add_((1 - beta) * (-jz))
        s["x"].sub_(s["eta"] * s["m"] / s["m"].norm())
        s["w"].copy_(w)
        s["v"].copy_(z)


def hvp_full(p, s):
    x, w, v = leaf(s["x"]), leaf(s["w"]), s["v"]
    ce = F.cross_entropy(p.a @ w, p.lab, reduction="none")
    g = (torch.sigmoid(x) * ce).mean() + p.reg * (w * w).sum()
    gy = torch.autograd.grad(g, w, create_graph=True)[0]
    hv, jv = torch.autograd.grad((gy * v).sum(), (w, x))
    s["hv"], s["jv"] = hv, jv


def state(p, classes, device):
    rows = p.a.shape[1]
    return {"x": torch.zeros(p.a.shape[0], device=device), "w": torch.full((rows, classes), 0.01, device=device),
            "v": torch.full((rows, classes), 0.02, device=device), "m": torch.zeros(p.a.shape[0], device=device),
            "rho": 0.1, "gamma": 1000.0, "eta": 1.0}


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def run_case(case, p, classes, device, iters, warmup, graph):
    s = state(p, classes, device)
    step = {"soba": lambda k: soba_step(p, s), "stocbio": lambda k: stocbio_step(p, s),
            "bo-rep": lambda k: borep_step(p, s, k), "hvp_full": lambda k: hvp_full(p, s)}[case]
    if graph:
        # capture one iteration (BO-REP: two, with and without the lower-level round) and replay
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for k in range(warmup):
                step(k)
        torch.cuda.current_stream().wait_stream(side)
        graphs = []
        for k in range(2 if case == "bo-rep" else 1):
            gr = torch.cuda.CUDAGraph()
            with torch.cuda.graph(gr):
                step(k)
            graphs.append(gr)
        sync(device)
        t0 = time.perf_counter()
        for k in range(iters):
            graphs[k % len(graphs)].replay()
        sync(device)
        return time.perf_counter() - t0
    for k in range(warmup):
        step(k)
    sync(device)
    t0 = time.perf_counter()
    for k in range(iters):
        step(k)
    sync(device)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (CPU; 0: default)")
    ap.add_argument("--cases", default="soba,stocbio,bo-rep,hvp_full")
    ap.add_argument("--mode", default="eager", choices=["eager", "graph"])
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--features", type=int, default=784)
    ap.add_argument("--full-train", type=int, default=20000, help="samples of hvp_full")
    ap.add_argument("--full-features", type=int, default=784)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    classes = 10
    for case in args.cases.split(","):
        n, d = (args.full_train, args.full_features) if case == "hvp_full" else (args.train, args.features)
        p = Hyperclean(*make_data(n, 5000, d, classes, args.device))
        iters = max(1, args.iters // 10) if case in ("stocbio", "hvp_full") and args.device == "cpu" else args.iters
        secs = run_case(case, p, classes, args.device, iters, args.warmup, args.mode == "graph")
        print(json.dumps({"framework": f"pytorch {torch.__version__}", "mode": args.mode, "device": args.device,
                          "threads": torch.get_num_threads() if args.device == "cpu" else None,
                          "case": case, "instances": 1, "samples": n, "features": d, "iterations": iters,
                          "us_per_iteration": secs / iters * 1e6}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
