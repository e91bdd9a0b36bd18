"""The native engine on ARM64 (AArch64) computes the same bits as on x86-64, tested without an ARM machine: the
kernel's sources, built with the build's flags for AArch64 by Debian's cross compiler (gcc-aarch64-linux-gnu),
run under user-mode emulation (qemu-aarch64, package qemu-user) and are compared byte for byte with the x86-64
build's results.

How: every configuration of both ladders (and their extras and guesses), with members in the lanes and each
member alone, trains a pass of a few steps and is evaluated by the engine on this machine, while a recorder
between the engine and its library keeps every kernel call's inputs and outputs (training, evaluation, and the
draws of each pass from torch's generator state). `tests/native_c/replay.c`
replays the calls on a build of the kernel and writes what each produced: the x86-64 build's must equal what
the library gave the engine (the replay is faithful), and the AArch64 build's must equal the x86-64 build's.

The kernel's expf and logf (mathf.c) stand in for the C library's, whose bits differ between libraries: they
are checked here against this machine's glibc on every one of the 2^32 float inputs, and, on a sample, the
AArch64 build's results against the x86-64 build's (`tests/native_c/mathf_check.c`).

Not tested here: speed on ARM hardware (emulation says nothing about it), and Apple's compiler and C library
(the kernel uses neither's arithmetic: its exp and log are its own, and the rest is IEEE operations).
"""

from __future__ import annotations

import ctypes
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import torch

from repro.engines.native import build as native_build
from repro.engines.native import engine as native
from tests.test_native_builds import CONFIGS

HERE = Path(__file__).with_name("native_c")
NATIVE_DIR = native_build.ENTRY.parent
CROSS_CC, QEMU, SYSROOT = "aarch64-linux-gnu-gcc", "qemu-aarch64", "/usr/aarch64-linux-gnu"
X86_BUILD = native_build.Build("x86-64-v3", 8)  # the recording's lane width; AArch64's build has the same
ARM_BUILD = native_build.Build("armv8-a", 8)  # what default_build gives on an ARM64 machine
N_TRAIN, N_EVAL, SEEDS = 12, 20, [0, 1, 2]


def _cross_tools() -> str | None:
    missing = [tool for tool in (CROSS_CC, QEMU) if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"
    return None


def _compile(cc: str, build: native_build.Build, source: Path, out: Path) -> Path:
    flags = [f for f in build.flags() if f != "-shared"]  # a program, not a library; the same code
    proc = subprocess.run([cc, *flags, f"-I{NATIVE_DIR}", "-o", str(out), str(source), "-lm"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cc} failed on {source.name}:\n{proc.stderr[-3000:]}"
    return out


def _run(program: Path, *args: str, arm: bool) -> str:
    cmd = [QEMU, "-L", SYSROOT, str(program), *args] if arm else [str(program), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}"
    return proc.stdout


def _floats(ptr: int, count: int) -> bytes:
    return ctypes.string_at(ptr, 4 * count)


class _Recorder:
    """Stands for the kernel library in a NativePopulation: passes each call on and keeps, for the job file,
    the call's inputs as the engine gave them and, as what a replay must produce, its outputs."""

    def __init__(self, lib: ctypes.CDLL):
        self._lib, self.job, self.want, self.calls = lib, [], [], 0

    def __getattr__(self, name):
        return getattr(self._lib, name)

    def native_train(self, spec, params, st1, st2, members, images, rows, keep, labels, n, threads):
        s = spec._obj
        lanes = self._lib.native_lanes()
        block = -(-members // lanes) * s.nparam * lanes
        row_ids = torch.frombuffer(bytearray(ctypes.string_at(rows, 8 * members * n)), dtype=torch.int64)
        used, compact = torch.unique(row_ids, return_inverse=True)  # only the images the call reads
        table = b"".join(_floats(images + 4 * 400 * int(r), 400) for r in used)
        self.job += [struct.pack("<ii", 0, ctypes.sizeof(s)), bytes(s),
                     struct.pack("<7i", members, n, lanes, len(used), st1 is not None, st2 is not None, keep is not None),
                     _floats(params, block), _floats(st1, block) if st1 else b"", _floats(st2, block) if st2 else b"",
                     table, compact.to(torch.int64).numpy().tobytes(),
                     ctypes.string_at(keep, members * n * 24) if keep else b"", ctypes.string_at(labels, 8 * n)]
        rc = self._lib.native_train(spec, params, st1, st2, members, images, rows, keep, labels, n, threads)
        self.want += [_floats(p, block) for p in (params, st1, st2) if p]
        self.calls += 1
        return rc

    def native_draw_pass(self, state, n, shift, dropout, n_train, rows, keep):
        size = 5056  # torch's CPU generator state (draws.c)
        self.job += [struct.pack("<4ifq", 2, n, shift, keep is not None, dropout, n_train), ctypes.string_at(state, size)]
        rc = self._lib.native_draw_pass(state, n, shift, dropout, n_train, rows, keep)
        self.want += [ctypes.string_at(state, size), ctypes.string_at(rows, 8 * n)]
        self.want += [ctypes.string_at(keep, 24 * n)] if keep else []
        self.calls += 1
        return rc

    def native_eval(self, spec, params, wide, members, images, labels, n, outs, losses, threads):
        s = spec._obj
        lanes = self._lib.native_lanes()
        block = -(-members // lanes) * s.nparam * lanes
        self.job += [struct.pack("<ii", 1, ctypes.sizeof(s)), bytes(s), struct.pack("<3i", members, n, lanes),
                     _floats(params, block), _floats(images, 400 * n), ctypes.string_at(labels, 8 * n)]
        rc = self._lib.native_eval(spec, params, wide, members, images, labels, n, outs, losses, threads)
        self.want += [_floats(outs, 10 * members * n), _floats(losses, members * n)]
        self.calls += 1
        return rc


def _record(usps) -> tuple[bytes, bytes, list[tuple[str, int, int]]]:
    """The job file of every configuration both ways, the bytes its replay must write, and per configuration
    (label, start, end) in those bytes."""
    lib = native_build.load(X86_BUILD)
    assert not isinstance(lib, str), lib
    rec = _Recorder(lib)
    spans = []
    for label, cfg in CONFIGS.items():
        for lane_use in ("members", "alone"):
            start = sum(map(len, rec.want))
            pop = native.NativePopulation(cfg.replace(passes=1), SEEDS, usps.x_train[:N_TRAIN], usps.y_train[:N_TRAIN],
                                          threads=2, build=X86_BUILD, lane_use=lane_use)
            pop._lib = pop._eval_lib = rec
            pop.train_pass(0)
            pop.evaluate(usps.x_test[:N_EVAL], usps.y_test[:N_EVAL])
            spans.append((f"{label} ({lane_use})", start, sum(map(len, rec.want))))
    job = b"L89J" + struct.pack("<i", rec.calls) + b"".join(rec.job)
    return job, b"".join(rec.want), spans


def _first_difference(want: bytes, got: bytes, spans) -> str:
    if len(want) != len(got):
        return f"{len(got)} bytes written, {len(want)} expected"
    for label, start, end in spans:
        if want[start:end] != got[start:end]:
            return label
    return "none"


def test_every_configuration_is_the_same_bits_on_arm64_under_emulation(usps, tmp_path):
    if why := _cross_tools():
        pytest.skip(why)
    job, want, spans = _record(usps)
    (tmp_path / "job").write_bytes(job)
    x86 = _compile(native_build._compiler() or "cc", X86_BUILD, HERE / "replay.c", tmp_path / "replay-x86")
    arm = _compile(CROSS_CC, ARM_BUILD, HERE / "replay.c", tmp_path / "replay-arm64")
    _run(x86, str(tmp_path / "job"), str(tmp_path / "x86.out"), arm=False)
    got_x86 = (tmp_path / "x86.out").read_bytes()
    assert got_x86 == want, f"the x86-64 replay differs from the engine's run: {_first_difference(want, got_x86, spans)}"
    _run(arm, str(tmp_path / "job"), str(tmp_path / "arm64.out"), arm=True)
    got_arm = (tmp_path / "arm64.out").read_bytes()
    assert got_arm == got_x86, f"ARM64 differs from x86-64: first in {_first_difference(got_x86, got_arm, spans)}"
    assert len(spans) == 2 * len(CONFIGS) and len(CONFIGS) >= 20


def test_the_kernels_exp_and_log_are_the_same_bits_on_arm64(tmp_path):
    if why := _cross_tools():
        pytest.skip(why)
    x86 = _compile(native_build._compiler() or "cc", X86_BUILD, HERE / "mathf_check.c", tmp_path / "mathf-x86")
    arm = _compile(CROSS_CC, ARM_BUILD, HERE / "mathf_check.c", tmp_path / "mathf-arm64")
    assert _run(arm, "digest", arm=True) == _run(x86, "digest", arm=False)


def test_denormals_flush_on_arm64_as_fpmode_says(tmp_path):
    """Both flush a denormal input and a result far below 2^-126; a product whose exact value lies just below
    2^-126 (here 2^-126 (1 - 2^-46)) is 2^-126 on x86-64, which flushes after rounding, and 0 on AArch64, which
    flushes before: the one case fpmode.c and the README name, shown as it is."""
    if why := _cross_tools():
        pytest.skip(why)
    x86 = _compile(native_build._compiler() or "cc", X86_BUILD, HERE / "mathf_check.c", tmp_path / "mathf-x86")
    arm = _compile(CROSS_CC, ARM_BUILD, HERE / "mathf_check.c", tmp_path / "mathf-arm64")
    both = {"denormal_times_one": "00000000", "far_below": "00000000"}
    assert dict(_named_bits(_run(x86, "flush", arm=False))) == {**both, "window_product": "00800000"}
    assert dict(_named_bits(_run(arm, "flush", arm=True))) == {**both, "window_product": "00000000"}


def _named_bits(text: str) -> list[tuple[str, str]]:
    """mathf_check's "name bits" lines as pairs"""
    return [tuple(line.split()) for line in text.splitlines()]


def test_the_kernels_exp_and_log_equal_glibcs_on_every_float(tmp_path):
    """On x86-64 glibc (what trained the committed study): no input differs, and no expf result before its
    rounding lies where x86-64 and AArch64 flush denormals differently (fpmode.c)."""
    if native_build.platform.machine() not in native_build.X86_64_MACHINES or native_build.platform.libc_ver()[0] != "glibc":
        pytest.skip("compares with x86-64 glibc's expf and logf")
    x86 = _compile(native_build._compiler() or "cc", X86_BUILD, HERE / "mathf_check.c", tmp_path / "mathf-x86")
    assert _run(x86, "all", arm=False).split() == ["expf_differs", "0", "logf_differs", "0", "expf_flush_window", "0"]
