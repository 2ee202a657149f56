"""What the benchopt comparison scripts share: loading the benchmark's modules from a checkout,
running `bilevel` until its own clock passes a budget, the median table, and the CPU's name."""
import importlib.util
import json
import statistics
import subprocess
import time
from pathlib import Path


def load(path, name):
    """The module at `path` (a file of the benchmark checkout), imported as `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cli_for(cmd, metrics, seconds, grace):
    """Runs `cmd` (which writes JSON-lines metrics to `metrics`) until its last line's
    "seconds" reaches `seconds` (or `seconds + grace` of wall clock pass), stops it, and
    returns its evaluation lines (the summary left out): the curve so far."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + seconds + grace
    while p.poll() is None and time.time() < deadline:
        time.sleep(0.5)
        if metrics.exists():
            lines = metrics.read_text().splitlines()
            if lines and json.loads(lines[-1]).get("seconds", 0) >= seconds:
                break
    p.kill()
    p.wait()
    if not metrics.exists():
        return []
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    return [m for m in rows if "summary" not in m]


def median_table(rows, metric, label, times, thresholds, value_format, threshold_format):
    """One line per (side, solver): the median over its seeds of the best `metric` seen by each
    of `times` (seconds), then of the time at which it first reached each of `thresholds`."""
    keys = sorted({(r["side"], r["solver"]) for r in rows})
    out = ["| side | solver | " + " | ".join(f"{label} at {t:g} s" for t in times) + " | " +
           " | ".join(f"time to {e:{threshold_format}}" for e in thresholds) + " |",
           "|---|---|" + "---|" * (len(times) + len(thresholds))]
    for side, solver in keys:
        seeds = sorted({r["seed"] for r in rows if (r["side"], r["solver"]) == (side, solver)})
        at, reach = [], []
        for s in seeds:
            curve = sorted((r["seconds"], r[metric]) for r in rows
                           if (r["side"], r["solver"], r["seed"]) == (side, solver, s))
            at.append([min([v for t, v in curve if t <= limit] or [float("nan")]) for limit in times])
            reach.append([next((t for t, v in curve if v <= th), float("inf")) for th in thresholds])
        med = statistics.median
        cells = [f"{med([a[k] for a in at]):{value_format}}" for k in range(len(times))]
        cells += [(lambda v: "not reached" if v == float("inf") else f"{v:.2f} s")(med([r[k] for r in reach]))
                  for k in range(len(thresholds))]
        out.append(f"| {side} | {solver} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"
