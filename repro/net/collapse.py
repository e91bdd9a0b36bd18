"""When a training run counts as collapsed: the one rule every record, table and attribution uses.

A run has collapsed when it diverged (its loss stopped being finite) or when, after its last pass, it
misclassifies more than half of its own training patterns (COLLAPSE_TRAIN_ERROR).

Why this rule: collapsed runs are not a tail of bad runs but a different outcome. In the committed study's
records they end with every output unit at -1, so that all patterns tie for the top (a tie is an error), or
with the net naming one or two classes for nearly every pattern, far above half of the training patterns
wrong; runs that train at all end far below half, most under 2%. The band around one half is nearly empty
but not quite: at 16 seeds of the factorial, one mnist16 run (`f:relu+lr-decay+dropout+shift+long`, seed 12)
ends at 55.9% training and 55.1% test error, and a few committed runs end between 40% and 60%
(tests/test_outcomes.py checks that such runs stay under 1%, and that every run the rule calls collapsed ends
above 55% test error too; the report's collapse-threshold table, repro.report.thresholds, counts them and gives
every collapse-based number at 40% and 60% as well). A threshold at one half sits in that band and
has a plain meaning: the net gets more of the patterns it was trained on wrong than right. It is read on
training data only, so nothing about it is chosen on the test set, and on the final figures only, so every
engine gets the same answer from the record it writes. Runs that degrade without collapsing (ReLU runs at a
few tens of percent error) stay in the error statistics; the tables name them as runs far from their row's
median and show the median and range beside mean ± std.
"""

from __future__ import annotations

import math

COLLAPSE_TRAIN_ERROR = 0.5  # final training error above this: the run collapsed


def is_collapsed(final_train_error: float | None, diverged: bool) -> bool:
    """True when a run diverged, has no final training error, or ends above COLLAPSE_TRAIN_ERROR on training data."""
    if diverged or final_train_error is None or not math.isfinite(final_train_error):
        return True
    return final_train_error > COLLAPSE_TRAIN_ERROR
