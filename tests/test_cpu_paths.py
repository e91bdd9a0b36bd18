"""The CPU-sensitive tests (conftest.CPU_SENSITIVE: engines against the reference loop, members against their
neighbours, the committed report's bytes) once more in a child process on the plainer code path this CPU can
run (tests/cpu_paths.py), so that a tolerance or an order that holds only on this CPU's kernels fails here
and not first on another machine."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import data_dir
from tests.cpu_paths import CAPABILITY, PATH_VARIABLE, child_environment, other_path

REPO = Path(__file__).resolve().parents[1]
OTHER = other_path()
needs_other = pytest.mark.skipif(OTHER is None, reason="this CPU has no AVX2: no plainer path to select")


def _run_on_other_path(*pytest_args: str) -> None:
    name, variables = OTHER
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
                          cwd=REPO, env=child_environment(name, variables), capture_output=True, text=True)
    tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
    assert done.returncode == 0, f"on the {name} path:\n{tail}"


@needs_other
def test_cpu_sensitive_tests_pass_on_the_other_code_path():
    _run_on_other_path("-m", "cpu_sensitive and not slow")


@needs_other
def test_mnist16_is_prepared_to_the_same_bits_on_the_other_code_path():
    name, variables = OTHER
    script = ("import gzip, hashlib, os, numpy, torch; from repro.data.mnist16 import mnist_resize; "
              "raw = gzip.open(os.path.join(os.environ['REPRO_DATA_DIR'], 'mnist', 't10k-images-idx3-ubyte.gz')).read(); "
              "x = torch.from_numpy(numpy.frombuffer(raw[16:], dtype=numpy.uint8).reshape(-1, 28, 28).copy()); "
              "print(hashlib.sha256(mnist_resize(x).numpy().tobytes()).hexdigest())")
    env = {**child_environment(name, variables), "REPRO_DATA_DIR": str(data_dir())}
    here, there = (subprocess.run([sys.executable, "-c", script], cwd=REPO, env=e, capture_output=True, text=True,
                                  check=True).stdout for e in ({**os.environ, "REPRO_DATA_DIR": str(data_dir())}, env))
    assert here == there, f"mnist16's test digits on this CPU's path and on the {name} path differ"


@pytest.mark.slow
@needs_other
def test_committed_report_is_the_same_bytes_on_the_other_code_path():
    _run_on_other_path("-m", "cpu_sensitive", "tests/test_committed_report.py", "tests/test_cpu_paths.py")


def test_the_child_runs_on_the_path_it_was_given():
    """In the child: torch took the kernels asked for (so the rerun is not the same path twice)."""
    name = os.environ.get(PATH_VARIABLE)
    if name is None:
        pytest.skip("runs in the child of the tests above")
    assert torch.backends.cpu.get_cpu_capability() == CAPABILITY[name]
