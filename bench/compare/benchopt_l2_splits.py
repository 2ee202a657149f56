#!/usr/bin/env python3
"""benchopt's covtype splits as three LIBSVM files for `bilevel hpo --validation-data --test-data`.

benchmark_bilevel's covtype dataset (datasets/covtype.py at 3ad65dc) takes scikit-learn's
`fetch_covtype`, then with one `np.random.RandomState(random_state)` (2442) calls
`train_test_split(..., test_size=.2)` twice: first test off the whole, then validation off the
rest; then StandardScaler fitted on train. This script makes the same split and writes the raw
(unstandardized) splits; `bilevel hpo` standardizes them on train as StandardScaler does
(population deviation, constant features left at scale 1).

The split is scikit-learn's index arithmetic (ShuffleSplit, which train_test_split runs):
n_test = ceil(0.2 n), n_train = n - n_test, one `rng.permutation(n)` per call, test = its first
n_test entries, train = the next n_train, rows taken in those orders. It is written here with
numpy alone, so that the script runs without scikit-learn when the data come from a file;
`--check-sklearn` compares it with scikit-learn's own train_test_split (tests do, where
scikit-learn is installed).

Labels are written as 1..7 (covtype's classes; benchopt's y - 1 and one-hot encoding keep their
order, as `bilevel` sorts distinct labels). The samples must be in scikit-learn's fetch_covtype
order for the split to be benchopt's.

Usage:
  benchopt_l2_splits.py --out DIR                        # fetch_covtype (scikit-learn; downloads once)
  benchopt_l2_splits.py --data covtype.svm --out DIR     # a LIBSVM file in that order
  bilevel hpo --data DIR/train.svm --validation-data DIR/validation.svm \\
      --test-data DIR/test.svm --penalty per-class --no-bias
(benchopt's ijcnn1 needs no script: `--data ijcnn1 --validation-data ijcnn1.t --test-data
ijcnn1.t --loss binary --no-bias --no-standardize`, LIBSVM's two files as libsvmdata fetches.)
"""
import argparse
import math
import os
import sys

import numpy as np


def read_libsvm(path):
    """Dense features and integer labels of a LIBSVM file (1-based indices)."""
    labels, rows, width = [], [], 0
    with open(path) as f:
        for number, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                labels.append(int(float(parts[0])))
                entries = [(int(i) - 1, float(v)) for i, v in (p.split(":") for p in parts[1:])]
            except ValueError as e:
                sys.exit(f"{path}:{number}: not a LIBSVM line ({e})")
            if any(i < 0 for i, _ in entries):
                sys.exit(f"{path}:{number}: feature indices start at 1")
            rows.append(entries)
            width = max([width] + [i + 1 for i, _ in entries])
    if not rows:
        sys.exit(f"{path}: no samples")
    x = np.zeros((len(rows), width))
    for k, entries in enumerate(rows):
        for i, v in entries:
            x[k, i] = v
    return x, np.array(labels)


def shuffle_split(n, test_size, rng):
    """scikit-learn's ShuffleSplit indices for one split: (train, test)."""
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    if n_train <= 0 or n_test <= 0:
        sys.exit(f"{n} samples cannot be split with test_size {test_size}")
    permutation = rng.permutation(n)
    return permutation[n_test:n_test + n_train], permutation[:n_test]


def benchopt_covtype_split(n, random_state):
    """Row indices of train, validation and test as datasets/covtype.py makes them."""
    rng = np.random.RandomState(random_state)
    rest, test = shuffle_split(n, 0.2, rng)
    train, validation = shuffle_split(len(rest), 0.2, rng)
    return rest[train], rest[validation], test


def write_libsvm(path, x, labels):
    with open(path, "w") as out:
        for row, label in zip(x, labels):
            entries = " ".join(f"{j + 1}:{v:.17g}" for j, v in enumerate(row) if v != 0)
            out.write(f"{label} {entries}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="covtype as a LIBSVM file in fetch_covtype's order "
                    "(default: scikit-learn's fetch_covtype)")
    ap.add_argument("--out", required=True, help="folder for train.svm, validation.svm, test.svm")
    ap.add_argument("--random-state", type=int, default=2442, help="benchopt's (2442)")
    ap.add_argument("--check-sklearn", action="store_true",
                    help="also split with scikit-learn's train_test_split and require the same rows")
    args = ap.parse_args()
    if args.data:
        if not os.path.isfile(args.data):
            sys.exit(f"--data: no file '{args.data}'")
        x, y = read_libsvm(args.data)
    else:
        try:
            from sklearn.datasets import fetch_covtype
        except ImportError:
            sys.exit("fetch_covtype needs scikit-learn (pip install scikit-learn), or give --data")
        x, y = fetch_covtype(return_X_y=True, download_if_missing=True)
    train, validation, test = benchopt_covtype_split(len(y), args.random_state)
    if args.check_sklearn:
        from sklearn.model_selection import train_test_split
        rng = np.random.RandomState(args.random_state)
        index = np.arange(len(y))
        rest, want_test = train_test_split(index, test_size=.2, random_state=rng)
        want_train, want_validation = train_test_split(rest, test_size=.2, random_state=rng)
        for name, ours, theirs in (("train", train, want_train),
                                   ("validation", validation, want_validation),
                                   ("test", test, want_test)):
            if not np.array_equal(ours, theirs):
                sys.exit(f"the {name} split differs from scikit-learn's train_test_split")
        print("scikit-learn's train_test_split gives the same rows")
    os.makedirs(args.out, exist_ok=True)
    for name, rows in (("train", train), ("validation", validation), ("test", test)):
        path = os.path.join(args.out, f"{name}.svm")
        write_libsvm(path, x[rows], y[rows])
        print(f"{path}: {len(rows)} samples, {x.shape[1]} features")


if __name__ == "__main__":
    main()
