"""The package as users install it: files found in a checkout and in an installed wheel (repro.resources), the
study's summary that a wheel carries (repro.jobs.packaged_study), and a wheel built from the tree holding every
sub-package, the native engine's C files, the rungs and the summary. CI also installs the wheel in a fresh
environment and runs the commands from outside the checkout (.ci/run)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from repro import resources
from repro.report.build import write_report
from repro.report.records import load_records
from repro.jobs.packaged_study import read_summary, summary_json
from tests.conftest import REPO

# Two configurations of the committed study, a few seeds each: a workspace that must agree with it.
SAMPLE = {"usps": ("baseline", "dropout"), "mnist16": ("shift",)}


def test_a_checkout_uses_its_own_files():
    assert resources.checkout_root() == REPO
    assert resources.ladder_dir() == REPO / "ablations"
    assert resources.study_dir() == REPO / "results"
    assert resources.paper_dir() == REPO / "paper"
    assert resources.summary_file() == REPO / "repro" / "_study" / resources.SUMMARY_NAME


def test_an_installed_package_does_not_write_a_study(monkeypatch):
    from repro.jobs import workspace

    monkeypatch.setattr(workspace, "checkout_root", lambda: None)
    with pytest.raises(workspace.WorkspaceError, match="carries only its summary"):
        workspace.output_dir(None, study=True)


def test_the_packaged_summary_is_the_committed_studys():
    """`repro report --study` writes it; regenerate with that command when this fails."""
    records = load_records(resources.study_dir()).records
    assert resources.summary_file().read_bytes() == summary_json(records)
    rows = {r["_file"]: r for r in records}
    summary = read_summary(resources.summary_file())
    assert len(summary) == len(records) and {r["_file"] for r in summary} == set(rows)
    for short in summary:  # the records' own shape, less what the check does not read
        row = rows[short["_file"]]
        shared = [k for k in short if k not in ("final", "versions")]
        assert {k: short[k] for k in shared} == {k: row[k] for k in shared}
        assert short["final"].items() <= row["final"].items() and short["versions"].items() <= row["versions"].items()


def _sample_workspace(folder: Path, seeds: int = 3) -> Path:
    for ds, labels in SAMPLE.items():
        (folder / "runs" / ds).mkdir(parents=True)
        for label in labels:
            for path in sorted((resources.study_dir() / "runs" / ds).glob(f"{label}-*-s*.json"))[:seeds]:
                shutil.copy(path, folder / "runs" / ds / path.name)
    return folder


def test_the_check_against_the_summary_is_the_check_against_the_records(tmp_path):
    ws = _sample_workspace(tmp_path / "ws")
    packaged = tmp_path / "installed-study"  # what an installed package's study folder holds: the summary only
    packaged.mkdir()
    shutil.copy(resources.summary_file(), packaged / resources.SUMMARY_NAME)
    by_records = write_report(ws, out_dir=tmp_path / "a", reference_dir=resources.study_dir(), make_figures=False)
    by_summary = write_report(ws, out_dir=tmp_path / "b", reference_dir=packaged, make_figures=False)
    assert by_records.all_agree and by_summary.all_agree
    assert len(by_summary.comparison.table) == sum(len(v) for v in SAMPLE.values())
    assert by_summary.comparison.table.equals(by_records.comparison.table)


def _setuptools_version() -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version("setuptools").split(".")[:2])
    except Exception:  # not installed, or a version string that is not plain numbers
        return (0,)


def _build_wheel(tmp_path: Path) -> Path:
    """A wheel built from a copy of the tree (a build writes build/ and *.egg-info beside its sources)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    for folder in ("repro", "ablations"):
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    # This environment's setuptools builds the wheel offline when it can (70.1 and later make wheels without the
    # `wheel` package); an older one leaves pip to fetch the build requirements.
    offline = ["--no-build-isolation"] if _setuptools_version() >= (70, 1) else []
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *offline, "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    return wheel


def test_the_wheel_holds_every_subpackage_the_kernel_the_rungs_and_the_summary(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    package = REPO / "repro"
    for init in package.rglob("__init__.py"):
        assert init.relative_to(REPO).as_posix() in names
    for module in package.rglob("*.py"):
        if "__pycache__" not in module.parts:
            assert module.relative_to(REPO).as_posix() in names
    for kernel in package.rglob("*.c"):
        assert kernel.relative_to(REPO).as_posix() in names
    rungs = [p for p in (REPO / "ablations").rglob("*") if p.suffix in (".toml", ".py") and "__pycache__" not in p.parts]
    assert rungs
    for rung in rungs:
        assert "repro/_ablations/" + rung.relative_to(REPO / "ablations").as_posix() in names
    assert "repro/_study/summary.json" in names

    # Installed (outside the checkout), the package finds its own copies.
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True)
    probe = ("from repro import resources; from repro.jobs.ladder import load_rungs; import repro.cli; "
             "print(resources.checkout_root(), len(load_rungs()), (resources.study_dir() / 'summary.json').is_file(),"
             " resources.ladder_dir().is_relative_to(resources.summary_file().parents[1]))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, check=True, capture_output=True, text=True,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}).stdout.split()
    assert out == ["None", str(len(list((REPO / "ablations").glob("*.toml")))), "True", "True"]


def _layout_rows() -> list[tuple[str, str]]:
    """The README's "What is in here" table: (first column, second column) per row."""
    text = (REPO / "README.md").read_text()
    table = text.split("## What is in here", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in table.splitlines() if line.startswith("| `")]
    return [(first.strip(), second.strip()) for first, second in rows]


def test_the_readme_layout_table_matches_the_tree():
    rows = _layout_rows()
    named = {p for first, _ in rows for p in re.findall(r"`([^`]+)`", first)}
    for path in named:
        assert (REPO / path).exists(), f"README names {path}, which is not in the tree"
    # every module and sub-package of repro/ has a row (private ones, _study, are data the wheel carries)
    for entry in sorted((REPO / "repro").iterdir()):
        if entry.name.startswith("_") or entry.name == "__pycache__" or entry.suffix not in ("", ".py"):
            continue
        shown = f"repro/{entry.name}" + ("/" if entry.is_dir() else "")
        assert shown in named, f"{shown} has no row in the README's layout table"
    # the files a folder's row names are in that folder
    for first, second in rows:
        folder = REPO / re.findall(r"`([^`]+)`", first)[0]
        if folder.is_dir():
            for name in re.findall(r"`([\w./]+\.(?:py|c))`", second):
                assert any(folder.rglob(Path(name).name)), f"README's row {first} names {name}, not in {folder}"
