"""What the benchopt comparison scripts share: loading the benchmark's modules from a checkout,
running `bilevel` until its own clock passes a budget, and the CPU's name."""
import importlib.util
import json
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


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"
