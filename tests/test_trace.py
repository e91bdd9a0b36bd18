"""How far one small run travels: `repro ablate --rungs baseline --dataset usps --seeds 1 --passes 1`, traced
in-process from the command's entry to its end, touches few of the package's files and seldom calls from a lower
layer into a higher one (the order below; a package's folder is one layer). The data folder is a user's: writable,
its prepared tensors cached by an earlier command, as they are after a user's first run."""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

import repro
from repro.cli import main
from repro.data import load_dataset

from tests.conftest import data_dir

PACKAGE = Path(repro.__file__).resolve().parent

# Lowest first. A module may call those of its own layer and lower ones freely; a call upward is counted.
LAYERS = [
    {"errors.py", "atomic_files.py", "png.py", "hardware.py", "resources.py", "config.py", "optim.py"},
    {"net", "data"},
    {"engines"},
    {"rung_code.py", "jobs"},
    {"report"},
    {"page", "predict.py"},
    {"api.py", "cli.py"},
]
# Measured: 27 files (34 before the engines shared one members module, the job's table formatted its own numbers,
# the data's cache joined its preparation and the device's file-name slug its description); the aim is about 25.
# A change that adds a file to this path raises the count and fails here.
MAX_FILES = 27
MAX_UPWARD_CALLS = 4  # distinct call sites


def layer_of(path: Path) -> int:
    top = path.relative_to(PACKAGE).parts[0]
    for level, names in enumerate(LAYERS):
        if top in names:
            return level
    raise AssertionError(f"{path.relative_to(PACKAGE)} is in no declared layer: add it to LAYERS")


def trace_run(results_dir: Path, data: Path) -> tuple[set[Path], set[tuple[str, str]]]:
    """Every package file that gets a call while the command runs, and each place that calls from a lower layer
    upward (the caller's file and line, the callee's file and function)."""
    files: set[Path] = set()
    upward: set[tuple[str, str]] = set()

    def inside(code) -> Path | None:
        path = Path(code.co_filename)
        return path if path.is_relative_to(PACKAGE) and path.suffix == ".py" else None

    def profile(frame, event, arg):
        if event != "call" or frame.f_code.co_name == "<module>":  # calls, not imports
            return
        callee = inside(frame.f_code)
        if callee is None:
            return
        files.add(callee)
        caller_frame = frame.f_back
        while caller_frame is not None and inside(caller_frame.f_code) is None:
            caller_frame = caller_frame.f_back  # through the standard library and torch, to the package's caller
        if caller_frame is not None:
            caller = inside(caller_frame.f_code)
            if layer_of(caller) < layer_of(callee):
                upward.add((f"{caller.relative_to(PACKAGE)}:{caller_frame.f_lineno}",
                            f"{callee.relative_to(PACKAGE)}:{frame.f_code.co_name}"))

    args = ["ablate", "--rungs", "baseline", "--dataset", "usps", "--seeds", "1", "--passes", "1",
            "--results-dir", str(results_dir), "--data-dir", str(data)]
    sys.setprofile(profile)
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        sys.setprofile(None)
    assert result.exit_code == 0, result.output
    assert list((results_dir / "runs").rglob("*.json")), "no record written"
    return files, upward


def users_data_dir(folder: Path) -> Path:
    """A writable data folder whose raw USPS files are the shared ones, its prepared tensors cached."""
    (folder / "usps").mkdir(parents=True)
    for raw in (data_dir() / "usps").iterdir():
        (folder / "usps" / raw.name).symlink_to(raw)
    load_dataset("usps", folder)
    return folder


def test_one_small_run_touches_few_files_and_seldom_calls_upward(tmp_path):
    files, upward = trace_run(tmp_path / "ws", users_data_dir(tmp_path / "data"))
    names = sorted(str(f.relative_to(PACKAGE)) for f in files)
    assert len(files) <= MAX_FILES, f"{len(files)} files: {names}"
    assert len(upward) <= MAX_UPWARD_CALLS, f"{len(upward)} upward calls: {sorted(upward)}"
