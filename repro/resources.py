"""Where the project's own files are found: the rungs, the committed study, the paper.

Run from a checkout (an editable install, or `python -m repro.cli` beside pyproject.toml), the checkout's
own `ablations/`, `results/` and `paper/` are used, so edits to them take effect at once. Installed from a
wheel there is no checkout: the rungs come from the copy the wheel carries (`repro/_ablations`, built from
`ablations/`), and the committed study from its summary (`repro/_study/summary.json`, written by
`repro report --study`; see repro.jobs.packaged_study). A wheel carries no paper.

This module imports nothing from the package, so every layer may use it.
"""

from __future__ import annotations

from importlib import resources as _importlib_resources
from pathlib import Path

PACKAGE = "repro"
SUMMARY_NAME = "summary.json"


def checkout_root() -> Path | None:
    """The checkout this package runs from, or None when it is installed (no pyproject.toml beside it)."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "ablations").is_dir() else None


def _packaged(name: str) -> Path:
    # A wheel is installed as plain files, so the traversable is a real folder.
    return Path(str(_importlib_resources.files(PACKAGE) / name))


def ladder_dir() -> Path:
    """The rungs: the checkout's ablations/, else the copy inside the installed package."""
    root = checkout_root()
    return root / "ablations" if root else _packaged("_ablations")


def study_dir() -> Path:
    """The committed study: the checkout's results/ (full run records), else the installed package's folder
    holding the study's summary (what `report --check` compares with)."""
    root = checkout_root()
    return root / "results" if root else _packaged("_study")


def paper_dir() -> Path | None:
    """The checkout's paper/; None when installed (a wheel carries no paper)."""
    root = checkout_root()
    return root / "paper" if root else None


def summary_file() -> Path:
    """The packaged summary of the committed study; `repro report --study` rewrites it in a checkout."""
    return Path(__file__).resolve().parent / "_study" / SUMMARY_NAME
