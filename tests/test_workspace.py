"""A user's runs go to the workspace: in a clone, every command run with its default folders leaves the
committed files untouched (`git status --porcelain` stays empty); --dry-run shows the plan; the README's
Python example runs."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, data_dir


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A clone of this checkout as it is now: its tracked and untracked (not ignored) files, committed."""
    dest = tmp_path_factory.mktemp("clone")
    files = _git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "clone")
    return dest


def _repro(clone: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m repro.cli ...` run inside the clone: its own code (cwd comes first on sys.path)."""
    env = {k: v for k, v in os.environ.items() if k != "REPRO_WORKSPACE"}
    env.update(REPRO_DATA_DIR=str(data_dir()), PYTHONUNBUFFERED="1")
    done = subprocess.run([sys.executable, "-m", "repro.cli", *args], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=900)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_commands_with_default_folders_leave_the_committed_study_alone(clone):
    _repro(clone, "train", "--seeds", "1", "--passes", "1", "--device", "cpu")
    _repro(clone, "ablate", "--rungs", "baseline,relu", "--seeds", "1", "--passes", "1", "--device", "cpu")
    _repro(clone, "sweep", "--rung", "baseline", "--lrs", "0.03", "--seeds", "1", "--passes", "1", "--device", "cpu")
    _repro(clone, "bench", "--populations", "1", "--estimate", "--device", "cpu", "--engines", "native")
    done = _repro(clone, "report", "--no-figures")
    assert _git(clone, "status", "--porcelain") == ""
    ws = clone / "workspace"
    assert len(list((ws / "runs" / "usps").glob("*.json"))) == 3
    assert list((ws / "sweeps").glob("*.json")) and list((ws / "bench").glob("*.json"))
    assert (ws / "report" / "report.md").exists()
    assert "committed study" in done.stdout + done.stderr


def test_dry_run_lists_done_and_to_do_seeds(clone, tmp_path):
    args = ["ablate", "--rungs", "baseline,relu", "--seeds", "3", "--passes", "1", "--device", "cpu",
            "--results-dir", str(tmp_path)]
    _repro(clone, "ablate", "--rungs", "baseline", "--seeds", "2", "--passes", "1", "--device", "cpu",
           "--results-dir", str(tmp_path))
    out = _repro(clone, *args, "--dry-run").stdout
    rows = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith("usps ")}
    assert rows["baseline"][3:6] == ["2", "1", "2"]  # done, to do, which seeds
    assert rows["relu"][3:6] == ["0", "3", "0-2"]
    assert re.search(r"total: 6 runs: 2 done, 4 to do", out)
    assert "estimated" in out or "no estimate" in out
    assert not list((tmp_path / "runs" / "usps").glob("relu*"))  # a dry run trains nothing


def test_the_readme_python_example_runs(tmp_path):
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- api-example:start -->\s*```python\n(.*?)```", text, re.S)
    assert block, "README has no Python API example between api-example markers"
    env = {**os.environ, "REPRO_DATA_DIR": str(data_dir()), "REPRO_WORKSPACE": str(tmp_path / "ws")}
    done = subprocess.run([sys.executable, "-c", block.group(1)], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list((tmp_path / "ws" / "runs").glob("*/*.json"))
