"""When a training run counts as collapsed: the one rule every record, table and attribution uses.

A run has collapsed when it diverged (its loss stopped being finite) or when, after its last pass, it
misclassifies more than half of its own training patterns (COLLAPSE_TRAIN_ERROR).

Why this rule: collapsed runs are not a tail of bad runs but a different outcome. In the records of the
committed study they end with every output unit at -1, so that all patterns tie for the top, or with the net
naming one or two classes for nearly every pattern: training error 57-100%,
test error 58-100% (always naming the most common class would score about 83-92%). Runs that train at all end
below 47% training error, most below 2%; no run lies between 47% and 57%. A threshold at one half sits in that
gap and has a plain meaning: the net gets more of the patterns it was trained on wrong than right. It is read
on training data only, so nothing about it is chosen on the test set, and on the final figures only, so every
engine gets the same answer from the record it writes. Runs that degrade without collapsing (for example
ReLU runs at 12-47% error) stay in the error statistics; the tables describe such rows by median and range.
"""

from __future__ import annotations

import math

COLLAPSE_TRAIN_ERROR = 0.5  # final training error above this: the run collapsed


def is_collapsed(final_train_error: float | None, diverged: bool) -> bool:
    """True when a run diverged, has no final training error, or ends above COLLAPSE_TRAIN_ERROR on training data."""
    if diverged or final_train_error is None or not math.isfinite(final_train_error):
        return True
    return final_train_error > COLLAPSE_TRAIN_ERROR
