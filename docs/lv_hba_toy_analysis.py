#!/usr/bin/env python3
"""LV-HBA on its toy (ALGORITHMS.md problem 4), linearised: see docs/lv-hba-toy.md.

From a start proportional to e (the authors' start is), every block of the iterate stays a
multiple of e, so one LV-HBA iteration at a fixed penalty c is an affine map of seven scalars
(x, y1, y2, theta1, theta2, lambda, z). Its fixed point is what the iteration converges to at
that penalty, and its spectral radius says whether it converges at all (< 1) and how fast.
"""
import numpy as np

N = 100  # the toy's n: the constraint e'x + e'y sums 3n coordinates


def step(v, c, alpha=0.008, beta=0.02, eta=0.01, gamma1=10.0, gamma2=10.0):
    x, y1, y2, t1, t2, lam, z = v
    constraint = N * (x + t1 + t2)
    t1n = t1 - eta * (t1 - x + lam + (t1 - y1) / gamma1)
    t2n = t2 - eta * (1 + lam + (t2 - y2) / gamma1)
    lamn = lam - eta * (-constraint + (lam - z) / gamma2)
    xn = x - alpha * ((x - y2) / c - y1 + t1n - lamn)
    y1n = y1 - alpha * ((y1 - 1) / c + y1 - x - (y1 - t1n) / gamma1)
    y2n = y2 - alpha * ((y2 - x) / c + 1 - (y2 - t2n) / gamma1)
    mean = (xn + y1n + y2n) / 3  # projection onto e'x + e'y = 0
    zn = z + beta * (lamn - z) / gamma2
    return np.array([xn - mean, y1n - mean, y2n - mean, t1n, t2n, lamn, zn])


def analyse(c, **steps):
    b = step(np.zeros(7), c, **steps)
    jac = np.column_stack([step(np.eye(7)[i], c, **steps) - b for i in range(7)])
    fixed = np.linalg.lstsq(np.eye(7) - jac, b, rcond=None)[0]
    return fixed, max(abs(np.linalg.eigvals(jac)))


if __name__ == "__main__":
    print("| penalty c | x at the fixed point | rel. error of x | radius, gamma2 = 10 | radius, gamma2 = 1 |")
    print("|---|---|---|---|---|")
    for c in [0.025 * 1500 ** 0.3, 1.0, 10.0, 100.0]:
        fixed, rho_authors = analyse(c)
        _, rho_stable = analyse(c, gamma2=1.0)
        print(f"| {c:.3g} | {fixed[0]:.4f} | {abs(fixed[0] + 0.3) / 0.3:.3f} | {rho_authors:.5f} | {rho_stable:.5f} |")
