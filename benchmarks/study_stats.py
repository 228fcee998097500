"""Statistics of the co-training study: seed means with t intervals, paired differences.

Each setting of `benchmarks/cotrain.py` runs with several seeds; a seed changes the model's
initialisation and the data order, so the spread over seeds is the run-to-run noise a single
run's number carries. Intervals are two-sided Student-t intervals over the seeds; a difference
between two settings is paired by seed (seed s of both settings), which removes what the seed
shares between them, and gets its own t interval. One run's own sampling error on its test split
is `binomial_standard_error` (the test split is finite).
"""

import math

from scipy import stats


def t_quantile(confidence: float, dof: int) -> float:
    """The two-sided Student-t quantile: P(|T_dof| <= q) = confidence."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if dof < 1:
        raise ValueError(f"dof must be >= 1, got {dof}")
    return float(stats.t.ppf(0.5 + confidence / 2, dof))


def mean_interval(values, confidence: float = 0.95) -> dict:
    """Mean of `values` (one per seed) with its two-sided t interval.

    Returns {"mean", "sd" (sample, n-1), "n", "half_width", "low", "high", "values"}; with one
    value the spread is unknown and sd, half_width, low, high are None.
    """
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("mean_interval needs at least one value")
    mean = sum(values) / n
    summary = {"mean": mean, "n": n, "values": values}
    if n == 1:
        return {**summary, "sd": None, "half_width": None, "low": None, "high": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(confidence, n - 1) * sd / math.sqrt(n)
    return {**summary, "sd": sd, "half_width": half, "low": mean - half, "high": mean + half}


def paired_difference(treatment: dict, control: dict, confidence: float = 0.95) -> dict:
    """`treatment - control` paired by seed ({seed: value} each), with its t interval.

    Only seeds present in both count (their list is under "seeds"). "excludes_zero" says whether
    the interval lies entirely on one side of 0 (None when it is unknown: fewer than 2 pairs).
    """
    seeds = sorted(set(treatment) & set(control))
    if not seeds:
        raise ValueError(
            f"no common seed: treatment has {sorted(treatment)}, control has {sorted(control)}"
        )
    summary = mean_interval([treatment[s] - control[s] for s in seeds], confidence)
    excludes = None if summary["low"] is None else summary["low"] > 0 or summary["high"] < 0
    return {**summary, "seeds": seeds, "excludes_zero": excludes}


def binomial_standard_error(accuracy: float, num_examples: int) -> float:
    """Standard error of an accuracy measured on `num_examples` independent test examples."""
    if num_examples < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}")
    return math.sqrt(accuracy * (1 - accuracy) / num_examples)


def format_interval(summary: dict | None, scale: float = 100.0, digits: int = 1) -> str:
    """ "mean [low, high]" in percent points (or "mean (n=1)" without an interval; "-" for None)."""
    if summary is None:
        return "-"
    mean = f"{scale * summary['mean']:.{digits}f}"
    if summary["low"] is None:
        return f"{mean} (n=1)"
    return f"{mean} [{scale * summary['low']:.{digits}f}, {scale * summary['high']:.{digits}f}]"
