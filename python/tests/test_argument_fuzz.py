"""The Python package's argument handling under hostile values (seeded, a few hundred calls).

Every public entry point is called with its arguments replaced, one at a time, by values drawn
from a hostile pool: NaN, infinities, negatives, zero, integers past 64 bits, fractions where
integers belong, strings, None, lists and booleans. Each call must either run (the value is a
legal one) or raise ValueError, TypeError or OverflowError with a message (or DivergenceError,
for a legal step so large that the run diverges) - never crash the
interpreter, never another exception, and never take a fraction for an integer or NaN for a
number (that was a default silently substituted, or a value silently truncated)."""
import math
import random

import numpy as np
import pytest

import bilevel

HOSTILE = [float("nan"), float("inf"), float("-inf"), -1, -1.0, 0, 0.0, 2**64, -(2**63) - 1,
           2.5, 1e308, -1e-308, "3", "", None, [1], (), True, False, np.float32("nan"),
           np.int64(-5), np.uint64(2**63)]
REFUSALS = (ValueError, TypeError, OverflowError)
# a legal but extreme value (a step of 1e308) may make a run diverge: reported, by name
OUTCOMES = REFUSALS + (bilevel.DivergenceError,)

_cpu = bilevel.Executor("cpu", threads=1)
_quadratic = bilevel.QuadraticProblem(_cpu, dx=3, dy=4, samples=40, seed=1)

# arguments whose None means "the preset's default" (documented)
OPTIONAL = {"inner_steps", "inner_step", "damping", "test_steps"}

# entry point -> (the call, small legal arguments, the integer-valued ones, the real-valued ones)
ENTRIES = {
    "solve": (lambda **a: bilevel.solve(_quadratic, "stocbio", progress=False, **a),
              dict(iterations=2, inner_steps=2, lower_batch=8, upper_batch=8, eval_every=1,
                   inner_step=0.1, outer_step=0.1, neumann_eta=0.1, neumann_terms=2, seed=0),
              {"iterations", "inner_steps", "lower_batch", "upper_batch", "eval_every",
               "neumann_terms", "seed"},
              {"inner_step", "outer_step", "neumann_eta"}),
    "meta_sinusoid": (lambda **a: bilevel.meta_sinusoid("maml", executor=_cpu, **a),
                      dict(meta_batch=2, shots=3, query=3, iterations=2, outer_step=0.01,
                           eval_every=1, seed=0, test_tasks=2, inner_steps=1, inner_step=0.01),
                      {"meta_batch", "shots", "query", "iterations", "eval_every", "seed",
                       "test_tasks", "inner_steps"},
                      {"outer_step", "inner_step"}),
    "align_bandit": (lambda **a: bilevel.align_bandit("a-parl", executor=_cpu, **a),
                     dict(actions=4, tau=0.5, feedback=16, iterations=2, inner_steps=2,
                          outer_step=0.1, instances=1, eval_every=1, seed=0),
                     {"actions", "feedback", "iterations", "inner_steps", "instances",
                      "eval_every", "seed"},
                     {"tau", "outer_step"}),
    "align_gridworld": (lambda **a: bilevel.align_gridworld("a-parl", executor=_cpu, **a),
                        dict(side=2, horizon=3, gamma=0.9, slip=0.1, tau=0.1, beta=1.0,
                             feedback=4, iterations=2, inner_steps=2, outer_step=0.1,
                             outer_decay=0.0, instances=1, eval_every=1, seed=0),
                        {"side", "horizon", "feedback", "iterations", "inner_steps",
                         "instances", "eval_every", "seed"},
                        {"gamma", "slip", "tau", "beta", "outer_step", "outer_decay"}),
    "Executor": (lambda **a: bilevel.Executor("cpu", **a), dict(threads=1), {"threads"}, set()),
}


def _is_fraction(v):
    return isinstance(v, (float, np.floating)) and not (math.isfinite(v) and float(v).is_integer())


def _is_non_finite(v):
    return isinstance(v, (float, np.floating)) and not math.isfinite(v)


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_hostile_arguments_are_run_or_refused_by_name(entry):
    call, legal, integers, reals = ENTRIES[entry]
    call(**legal)  # the legal arguments run
    rng = random.Random(f"argument-fuzz {entry}")
    cases = [(name, value) for name in sorted(legal) for value in HOSTILE]
    rng.shuffle(cases)
    for name, value in cases:
        args = dict(legal, **{name: value})
        try:
            call(**args)
        except OUTCOMES as e:
            assert str(e), f"{entry}({name}={value!r}): {type(e).__name__} without a message"
            continue
        except Exception as e:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"{entry}({name}={value!r}) raised {type(e).__name__}: {e}")
        # it ran: then the value must have been a legal one, taken as it is (solve's steps
        # take a list, one value per instance)
        per_instance = entry == "solve" and name in reals
        legal_list = per_instance and isinstance(value, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value)
        documented_none = value is None and entry.startswith("meta") and name in OPTIONAL
        assert legal_list or documented_none or not isinstance(value, (str, list, tuple,
                                                                       type(None))), \
            f"{entry}({name}={value!r}) was accepted"
        if name in integers:
            assert not _is_fraction(value) and not isinstance(value, bool), \
                f"{entry}({name}={value!r}): a non-integer taken for an integer"
        if name in reals:
            assert not _is_non_finite(value), f"{entry}({name}={value!r}): taken as a number"
