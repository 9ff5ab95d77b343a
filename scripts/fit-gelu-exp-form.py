#!/usr/bin/env python3
"""Refits the polynomial of include/vts/core/gelu_exp_form.hpp and prints its coefficients.

The lower tail of the standard normal distribution is written as
    Phi(-a) = t * exp(-a^2/2 + R(t)),   t = 1 / (1 + A*a),   a = |x| in [0, A_MAX],
and R, a polynomial of degree DEGREE in t, is fitted to the exact R (mpmath, 40 digits) at
Chebyshev nodes in t by iteratively reweighted least squares (Lawson's algorithm), which moves the
fit toward the minimax one. The header stores R * log2(e), so that the exponent is one fma in
log2 units. A development tool: the build and the tests do not run it. Needs numpy and mpmath.

    python3 scripts/fit-gelu-exp-form.py            # A = 0.4, degree 8: max |error in R| 8.7e-8
    python3 scripts/fit-gelu-exp-form.py --scan     # the error for other A and degrees
"""
import argparse
import math

import mpmath
import numpy as np

A_MAX = 14.0  # below Phi(-14) ~ 8e-45 the fp32 result is zero


def exact_r(a, slope):
    t = 1 / (1 + slope * a)
    return float(mpmath.log(mpmath.ncdf(-a) / t) + a * a / 2)


def fit(slope, degree, nodes):
    t_min = 1 / (1 + slope * A_MAX)
    k = np.arange(nodes)
    t = (1 + t_min) / 2 + (1 - t_min) / 2 * np.cos(np.pi * (k + 0.5) / nodes)
    r = np.array([exact_r(float(a), slope) for a in (1 / t - 1) / slope])
    basis = np.vander(t, degree + 1, increasing=True)
    weights = np.full(nodes, 1.0 / nodes)
    for _ in range(30):
        w = np.sqrt(weights)
        coef, *_ = np.linalg.lstsq(basis * w[:, None], r * w, rcond=None)
        err = np.abs(basis @ coef - r)
        weights = weights * err
        weights /= weights.sum()
    return coef, float(np.max(np.abs(basis @ coef - r)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slope", type=float, default=0.4, help="A in t = 1/(1 + A|x|)")
    parser.add_argument("--degree", type=int, default=8)
    parser.add_argument("--nodes", type=int, default=4000)
    parser.add_argument("--scan", action="store_true", help="print the error over a grid of A and degrees")
    args = parser.parse_args()
    mpmath.mp.dps = 40
    if args.scan:
        for degree in (7, 8, 9):
            for slope in np.linspace(0.25, 0.5, 11):
                print(f"degree {degree}  A {slope:.3f}  max error {fit(slope, degree, 1500)[1]:.2e}")
        return
    coef, err = fit(args.slope, args.degree, args.nodes)
    print(f"// A = {args.slope}, degree {args.degree}: max |error in R| {err:.2e}")
    print("// R(t) * log2(e), constant term first:")
    for c in coef / math.log(2):
        print(f"{np.float32(c):.9e}f")


if __name__ == "__main__":
    main()
