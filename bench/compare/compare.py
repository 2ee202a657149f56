#!/usr/bin/env python3
"""Same-run comparison of bilevel's hyper-cleaning iterations with JAX and PyTorch.

Runs, one after the other on the same machine: bench_hyperclean (the cases below only), the JAX
script (jit + fori_loop; vmap for B > 1) and the PyTorch script (eager; CUDA graphs on a GPU),
then prints one table of per-iteration times and the ratios, and writes everything (raw JSON
lines, the table) to --out.

  cpu:  python3 bench/compare/compare.py --bench build/release/bench/bench_hyperclean --device cpu --threads 1
  cuda: python3 bench/compare/compare.py --bench build/gpu-bundle/bin/bench_hyperclean --device cuda

On the CPU every program runs pinned to the first --threads cores (taskset), with
OMP_NUM_THREADS / torch.set_num_threads set to the same count. A framework that is not
installed for the given interpreter is reported as missing, not guessed.

--isa generic|avx2|avx512 caps every program at one instruction set, so that an AVX-512 machine
also measures what an AVX2 or an older x86 machine runs: bilevel's kernels (BILEVEL_CPU_ISA) and
OpenBLAS (OPENBLAS_CORETYPE Nehalem / Haswell / SkylakeX), XLA (--xla_cpu_max_isa SSE4_2 / AVX2 /
AVX512) and PyTorch (ATEN_CPU_CAPABILITY default / avx2 / avx512). The caches and the core stay
those of the machine: a real AVX2 machine (AMD Zen 3: 512 KB L2) is still worth a run of its own.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = ["soba", "stocbio", "bo-rep", "hvp_full"]
# --isa: bilevel's BILEVEL_CPU_ISA, OPENBLAS_CORETYPE, XLA's --xla_cpu_max_isa, ATEN_CPU_CAPABILITY
ISA_CAPS = {"generic": ("generic", "Nehalem", "SSE4_2", "default"),
            "avx2": ("avx2", "Haswell", "AVX2", "avx2"),
            "avx512": ("avx512", "SkylakeX", "AVX512", "avx512")}


def run(cmd, env=None, log=None):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if log is not None:
        log.write(p.stdout)
        log.write(p.stderr)
    if p.returncode != 0:
        print(p.stderr[-2000:], file=sys.stderr)
    return p


def pinned(cmd, threads, device):
    if device != "cpu" or threads <= 0:
        return cmd
    return ["taskset", "-c", f"0-{threads - 1}"] + cmd


def ours(args, env, log):
    backend = args.device
    full = "full1M_1024" if args.device == "cuda" else "full20000"
    suffix = "_graph" if args.device == "cuda" else ""
    regex = (f"(hyperclean_iteration_(soba|stocbio|bo-rep){suffix}|hyperclean_hvp_jvp_{full})"
             f"/{backend}/float/B:(1|64)/|cpu_fma_peak")
    out = Path(args.out) / "bilevel.json"
    p = run(pinned([args.bench, f"--benchmark_filter={regex}", f"--benchmark_out={out}",
                    "--benchmark_out_format=json"], args.threads, args.device), env, log)
    if p.returncode != 0 or not out.exists():
        return {}
    rows = {}
    for b in json.loads(out.read_text())["benchmarks"]:
        name = b["name"]
        if name.startswith("cpu_fma_peak"):
            rows["peak"] = {"gflops": b["GFLOP/s"], "isa": name.split("/")[2]}
            continue
        nb = int(name.split("/B:")[1].split("/")[0])
        case = ("hvp_full" if "hvp_jvp_full" in name else
                name.split("hyperclean_iteration_")[1].split("/")[0].replace("_graph", ""))
        rows[(case, nb)] = {"us": b["real_time"], "launches": b.get("launches"),
                            "graph_nodes": b.get("graph_nodes_max"), "flops": b.get("flops")}
    return rows


def merge_rounds(rounds):
    """One row per case from several rounds: the median time; the highest peak measured (the
    machine's capability: a round with a busy neighbour measures less); the other fields from
    the first round that has the case."""
    merged = {}
    for key in {k for r in rounds for k in r}:
        rows = [r[key] for r in rounds if key in r]
        if key == "peak":
            merged[key] = max(rows, key=lambda p: p["gflops"])
            continue
        merged[key] = dict(rows[0])
        times = [row["us"] for row in rows if row.get("us")]
        if times:
            merged[key]["us"] = statistics.median(times)
    return merged


def cpu_model():
    """', CPU: <model name>' from /proc/cpuinfo (every number is kept with the CPU it came from)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return ", CPU: " + line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def framework(args, script, extra, env, log, python):
    p = run(pinned([python, str(HERE / script)] + extra, args.threads, args.device), env, log)
    rows = {}
    for line in p.stdout.splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        rows[(r["case"], r["instances"])] = {"us": r["us_per_iteration"], "framework": r["framework"]}
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="path of bench_hyperclean")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="CPU: cores and threads for every program")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--out", default="bench/results/compare")
    ap.add_argument("--python-torch", default=sys.executable, help="interpreter with torch")
    ap.add_argument("--python-jax", default=sys.executable, help="interpreter with jax")
    ap.add_argument("--isa", choices=sorted(ISA_CAPS), help="CPU: cap every program at this instruction set")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the programs this many times, alternating (bilevel, JAX, PyTorch, "
                         "bilevel, ...); each time is the median over the rounds and each ratio "
                         "the median of the rounds' paired ratios, with their range: on a shared "
                         "machine whose load drifts, a pair run minutes apart is the fair one")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error(f"--rounds must be >= 1, got {args.rounds}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if args.device == "cpu" and args.threads > 0:
        env["OMP_NUM_THREADS"] = str(args.threads)
    if args.device == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
    if args.isa:
        ours_isa, openblas, xla, aten = ISA_CAPS[args.isa]
        env["BILEVEL_CPU_ISA"] = ours_isa
        env["OPENBLAS_CORETYPE"] = openblas
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_cpu_max_isa={xla}").strip()
        env["ATEN_CPU_CAPABILITY"] = aten
    full = ["--full-train", "1000000", "--full-features", "1024"] if args.device == "cuda" else []
    rounds = {"bilevel": [], "jax": [], "torch eager": []}
    if args.device == "cuda":
        rounds["torch graph"] = []
    with open(Path(args.out) / "log.txt", "w") as log:
        for r in range(args.rounds):
            log.write(f"==== round {r + 1} of {args.rounds}\n")
            rounds["bilevel"].append(ours(args, env, log))
            rounds["jax"].append(framework(args, "hyperclean_jax.py",
                                           ["--iters", str(args.iters), "--instances", "1,64"] + full,
                                           env, log, args.python_jax))
            torch_common = ["--device", args.device, "--iters", str(args.iters)] + full
            if args.device == "cpu" and args.threads > 0:
                torch_common += ["--threads", str(args.threads)]
            rounds["torch eager"].append(framework(args, "hyperclean_torch.py", torch_common, env,
                                                   log, args.python_torch))
            if args.device == "cuda":
                rounds["torch graph"].append(framework(args, "hyperclean_torch.py",
                                                       torch_common + ["--mode", "graph", "--cases",
                                                                       "soba,stocbio,bo-rep"],
                                                       env, log, args.python_torch))
    results = {c: merge_rounds(rs) for c, rs in rounds.items()}
    # paired ratios: round r's time of c over round r's time of bilevel
    paired = {}
    for c, rs in rounds.items():
        for ours_r, theirs_r in zip(rounds["bilevel"], rs):
            for key, row in theirs_r.items():
                if key != "peak" and key in ours_r and row.get("us") and ours_r[key].get("us"):
                    paired.setdefault((c, key), []).append(row["us"] / ours_r[key]["us"])
    peak = results["bilevel"].pop("peak", None)
    columns = [k for k in results if results[k]]
    missing = [k for k in results if not results[k]]
    # GFLOP/s: the fused kernels' counted FLOPs of the case (the same arithmetic in every
    # framework) over each framework's time; % of the multiply-add peak of the path in use
    gf = lambda flops, us: flops / (us * 1e3) if flops and us else None
    lines = [f"device: {args.device}" + (f", {args.threads} thread(s) pinned" if args.threads else "") +
             (f", every program capped at {args.isa}" if args.isa else "") + cpu_model()]
    if args.rounds > 1:
        lines.append(f"{args.rounds} rounds, programs alternating: times are medians over the "
                     f"rounds, ratios the median [range] of the rounds' paired ratios")
    if peak:
        lines.append(f"multiply-add peak of bilevel's {peak['isa']} path on these threads: "
                     f"{peak['gflops']:.1f} GFLOP/s (bench_hyperclean cpu_fma_peak)")
    lines += ["", "| case | B | " + " | ".join(f"{c} (us)" for c in columns) +
              " | " + " | ".join(f"{c} / bilevel" for c in columns if c != "bilevel") +
              " | " + " | ".join(f"{c} GFLOP/s" for c in columns) + " |",
              "|---|---|" + "---|" * (3 * len(columns) - 1)]
    above_peak = set()
    for case in CASES:
        for nb in (1, 64):
            if not any((case, nb) in results[c] for c in columns):
                continue
            ref = results["bilevel"].get((case, nb), {}).get("us")
            cells = [f"{results[c][(case, nb)]['us']:.1f}" if (case, nb) in results[c] else "-"
                     for c in columns]
            ratios = []
            for c in columns:
                if c == "bilevel":
                    continue
                pr = paired.get((c, (case, nb)), [])
                cell = f"{statistics.median(pr):.2f}x" if pr else "-"
                if len(pr) > 1:
                    cell += f" [{min(pr):.2f}-{max(pr):.2f}]"
                ratios.append(cell)
            flops = results["bilevel"].get((case, nb), {}).get("flops")
            rates = []
            for c in columns:
                r = gf(flops, results[c].get((case, nb), {}).get("us"))
                cell = "-" if r is None else f"{r:.1f}"
                if r is not None and peak:
                    cell += f" ({100 * r / peak['gflops']:.0f}%)"
                    if r > peak["gflops"]:
                        above_peak.add(c)
                rates.append(cell)
            lines.append(f"| {case} | {nb} | " + " | ".join(cells) + " | " + " | ".join(ratios) +
                         " | " + " | ".join(rates) + " |")
    if above_peak and args.isa:
        lines.append("")
        lines.append(f"above the {args.isa} peak, so not held to it: " + ", ".join(sorted(above_peak)) +
                     " (XLA's dots run in YNNPACK or Eigen, which pick their kernels by CPUID at run"
                     " time; --xla_cpu_max_isa caps only XLA's own code)")
    if missing:
        lines.append("")
        lines.append("no results from: " + ", ".join(missing) + " (see log.txt)")
    versions = {c: next(iter(results[c].values())).get("framework", "") for c in columns if c != "bilevel"}
    lines.append("")
    lines.append("versions: " + ", ".join(f"{k}: {v}" for k, v in versions.items()))
    table = "\n".join(lines)
    print(table)
    (Path(args.out) / "table.md").write_text(table + "\n")
    (Path(args.out) / "results.json").write_text(json.dumps(
        {c: {f"{k[0]}/B:{k[1]}": v for k, v in results[c].items()} for c in results} |
        {"rounds": {c: [{(k if k == "peak" else f"{k[0]}/B:{k[1]}"): v for k, v in r.items()}
                        for r in rs] for c, rs in rounds.items()}}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
