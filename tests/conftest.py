"""Shared fixtures. Data comes from $REPRO_DATA_DIR, else ../shared/data beside the checkout; missing data
is a test failure (CI must have it), never a skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    # The fused engine's Triton kernel runs on CPU only in Triton's interpreter, which has to be chosen before
    # anything imports Triton (torch.optim does, lazily). Harmless when Triton is not installed.
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    env = os.environ.get("REPRO_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def usps():
    from repro.data import load_dataset

    return load_dataset("usps", data_dir(), download=False)


@pytest.fixture(scope="session")
def mnist16():
    from repro.data import load_dataset

    return load_dataset("mnist16", data_dir(), download=False)


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)  # like CI; keeps timings comparable


def interruptible() -> None:
    """preexec_fn for a child that a test interrupts with SIGINT: a shell runs background jobs with SIGINT
    ignored, the child would inherit that, and Python then installs no KeyboardInterrupt handler."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
