"""Published results shown next to the runs: the paper's own numbers and an earlier reproduction's."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """A published single-run result shown as a reference row. Errors and rejection in %, losses as given."""

    name: str
    dataset: str  # the table it belongs to: the dataset closest to the one it was measured on
    source: str
    passes: int | None = None
    train_error: float | None = None
    test_error: float | None = None
    train_loss: float | None = None
    test_loss: float | None = None
    rejection_1pct: float | None = None


PAPER = Reference(
    name="paper: Net-1989, its own data",
    dataset="usps",
    source="LeCun et al. (1989), Neural Computation 1(4):541-551, results table (23 passes, 1 run)",
    passes=23, train_error=0.14, test_error=5.00, train_loss=2.5e-3, test_loss=1.8e-2, rejection_1pct=12.1,
)
KARPATHY_BASELINE = Reference(
    name="Karpathy 2022: baseline",
    dataset="mnist16",
    source="A. Karpathy, lecun1989-repro (2022), github.com/karpathy/lecun1989-repro, README (MNIST approximation, 1 run)",
    passes=23, test_error=4.09,
)
KARPATHY_TOP = Reference(
    name="Karpathy 2022: modernised",
    dataset="mnist16",
    source="A. Karpathy, lecun1989-repro (2022), github.com/karpathy/lecun1989-repro, README (top of its ladder, 1 run)",
    test_error=1.59,
)
PAPER_FC40 = Reference(
    name="paper: fully connected, 40 hidden units",
    dataset="usps",
    source="LeCun et al. (1989), results table: comparison network (10,690 connections, 1 run)",
    train_error=1.6, test_error=8.1, rejection_1pct=19.4,
)
REFERENCES: tuple[Reference, ...] = (PAPER, KARPATHY_BASELINE, KARPATHY_TOP)
FAITHFUL_REFERENCES: tuple[Reference, ...] = (PAPER, PAPER_FC40)
FAITHFUL_DATASET = "usps"  # the faithfulness study asks about the paper's own data
