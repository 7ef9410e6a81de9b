"""The 95% confidence interval of a mean: one home for it, for the results' tables
(a policy's mean over repetitions or traces) and for the control loop (what a period is
sure of, from the capacities of its control steps)."""

import math
import statistics


def half_width(values):
    """Half the width of the 95% confidence interval of the mean of values (Student's
    t; 0 with fewer than two)."""
    from scipy import stats
    if len(values) < 2:
        return 0.0
    return float(stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) /
                 math.sqrt(len(values)))
