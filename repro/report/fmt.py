"""How the report writes numbers: the one mean ± std formatter, plain numbers and intervals."""

from __future__ import annotations

import pandas as pd


def ok(x) -> bool:
    """A number to show (not None, not nan)."""
    return x is not None and not pd.isna(x)


def num(x, digits: int = 2, sign: bool = False) -> str:
    """`x` to `digits` decimals (with its sign where `sign`); a value that rounds to zero is written as +0.00 or
    0.00, never -0.00, whichever side of zero rounding noise left it on (the `z` of the format)."""
    if not ok(x):
        return ""
    return f"{x:+z.{digits}f}" if sign else f"{x:z.{digits}f}"


def mean_std(mean, std, digits: int = 2, pm: str = " ± ") -> str:
    """`mean ± std`; the mean alone when there is no spread (one run)."""
    if not ok(mean):
        return ""
    return num(mean, digits) + (pm + num(std, digits) if ok(std) else "")


def interval(low, high, digits: int = 2, sign: bool = True, lb: str = "[", rb: str = "]") -> str:
    if not (ok(low) and ok(high)):
        return ""
    return f"{lb}{num(low, digits, sign)}, {num(high, digits, sign)}{rb}"


def sci(mean, std=None) -> str:
    """A loss in scientific notation, with its spread over seeds when there is one."""
    if not ok(mean):
        return ""
    return f"{mean:.2e}" + (f" ± {std:.1e}" if ok(std) else "")
