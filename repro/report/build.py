"""`repro report`: read every run record, check it, group the runs, and write tables and figures.

Inputs: results/runs/<dataset>/<label>-<digest>-s<seed>.json (one record per run, see store.py/runner.py)
and, for the figures that need weights, results/checkpoints/<dataset>/<label>-<digest>-s000.pt.
Outputs (all byte-for-byte deterministic for the same inputs, no timestamps):

    <results-dir>/results.md             both datasets' tables, footnotes, figure links and warnings
    <paper-dir>/tables/<dataset>.csv      the same numbers, unformatted
    <paper-dir>/tables/<dataset>.tex      a booktabs tabular for the paper
    <paper-dir>/figures/*.png             see plots.py

Rules (each also stated in results.md):
- A file under runs/ that is not a valid record (bad JSON, missing or ill-typed fields, a name that does not
  match its contents, or anything that is not runs/<dataset>/<name>.json) is skipped with a warning naming
  it and why; with strict=True the report stops with a ReportError instead. Hidden files (".name.tmp") are
  atomic writes in progress and are ignored silently.
- Runs are grouped by (dataset, label). A group whose records disagree on dataset_fingerprint,
  config_digest or versions["repro"] keeps only the most common combination (ties: the one with the newest
  record, then the smallest key) and the others are dropped with a warning naming them.
- A run with diverged_at_pass set is counted in the "diverged" column and left out of every mean, spread,
  interval and curve.
- Differences between rows come with a 95% Welch t-interval (Welch-Satterthwaite degrees of freedom; the
  t quantile is computed here from the regularised incomplete beta function, no scipy).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from repro.study.store import DEFAULT_RESULTS_DIR, REPO_ROOT, SCHEMA_VERSION, run_path

DEFAULT_PAPER_DIR = REPO_ROOT / "paper"
CI_LEVEL = 0.95
CI_METHOD = (
    "95% Welch t-interval for the difference of means (Welch-Satterthwaite degrees of freedom; "
    "t quantile from the regularised incomplete beta function); runs are treated as independent samples"
)


# ----------------------------------------------------------------------------------------- references
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


class ReportError(RuntimeError):
    """Stops the report (only raised for damaged inputs under strict=True, or unusable arguments)."""


# ----------------------------------------------------------------------------------------- statistics
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with df > 0 degrees of freedom (df may be fractional or inf)."""
    if math.isinf(df):
        return 0.5 * (1.0 + math.erf(t / math.sqrt(2.0)))
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with t_cdf(t, df) = p, by bisection (to ~1e-12 relative)."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); nan for n < 2
    min: float
    max: float


def summarize(values) -> Summary:
    v = np.asarray(list(values), dtype=np.float64)
    if len(v) == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    std = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
    return Summary(len(v), float(np.mean(v)), std, float(np.min(v)), float(np.max(v)))


@dataclass(frozen=True)
class Interval:
    diff: float  # mean(b) - mean(a)
    low: float
    high: float
    df: float


def welch_interval(a, b, level: float = CI_LEVEL) -> Interval:
    """Confidence interval for mean(b) - mean(a) by Welch's t-interval. nan bounds when a side has < 2 values."""
    a, b = np.asarray(list(a), dtype=np.float64), np.asarray(list(b), dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan)
    diff = float(b.mean() - a.mean())
    if len(a) < 2 or len(b) < 2:
        return Interval(diff, math.nan, math.nan, math.nan)
    va, vb = float(a.var(ddof=1)) / len(a), float(b.var(ddof=1)) / len(b)
    se2 = va + vb
    if se2 == 0.0:
        return Interval(diff, diff, diff, math.inf)
    df = se2 ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = t_quantile(0.5 + level / 2.0, df) * math.sqrt(se2)
    return Interval(diff, diff - half, diff + half, df)


# ----------------------------------------------------------------------------------------- records
_NUM = (int, float)
_REQUIRED: dict[str, tuple[type, ...]] = {
    "schema": (int,), "rung": (str,), "label": (str,), "mode": (str,), "rung_title": (str,), "dataset": (str,),
    "dataset_fingerprint": (str,), "seed": (int,), "config": (dict,), "config_digest": (str,), "passes": (int,),
    "presentations": (int,), "train_loss": (list,), "train_error": (list,), "test_loss": (list,),
    "test_error": (list,), "final": (dict,), "engine": (str,), "population_members": (int,),
    "wall_time_s": _NUM, "device": (str,), "versions": (dict,), "git_commit": (str,), "created": (str,),
}
HISTORY_KEYS = ("train_loss", "train_error", "test_loss", "test_error")
FINAL_KEYS = HISTORY_KEYS + ("test_rejection_at_1pct",)


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool)


def record_problem(rec: Any, rel: str) -> str | None:
    """Why `rec` (parsed from runs/<rel>) is not a usable record, or None if it is."""
    if not isinstance(rec, dict):
        return f"not a run record (JSON {type(rec).__name__}, expected an object)"
    missing = [k for k in (*_REQUIRED, "diverged_at_pass") if k not in rec]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    bad = [k for k, kinds in _REQUIRED.items() if not _is(rec[k], kinds)]
    if bad:
        return "wrong type for field(s) " + ", ".join(f"{k} ({type(rec[k]).__name__})" for k in bad)
    if rec["schema"] != SCHEMA_VERSION:
        return f"schema {rec['schema']} (this report reads schema {SCHEMA_VERSION})"
    if not _is(rec["versions"].get("repro"), (str,)):
        return "versions.repro missing"
    div = rec["diverged_at_pass"]
    if div is not None and not (_is(div, (int,)) and 1 <= div <= rec["passes"]):
        return f"diverged_at_pass = {div!r} (expected null or 1..passes)"
    lengths = {len(rec[k]) for k in HISTORY_KEYS}
    if len(lengths) != 1 or any(not _is(v, _NUM) for k in HISTORY_KEYS for v in rec[k]):
        return "per-pass lists differ in length or hold non-numbers"
    if div is None:
        if lengths != {rec["passes"]}:
            return f"per-pass lists hold {lengths.pop()} passes, the record says passes = {rec['passes']}"
        final = rec["final"]
        missing = [k for k in (*FINAL_KEYS, "test_rejection_curve") if k not in final]
        if missing:
            return f"missing field(s) final.{', final.'.join(missing)}"
        if any(not _is(final[k], _NUM) or not math.isfinite(final[k]) for k in FINAL_KEYS):
            return "final values are not finite numbers"
        if not (0.0 <= final["train_error"] <= 1.0 and 0.0 <= final["test_error"] <= 1.0):
            return "final errors are not fractions in [0, 1]"
        curve = final["test_rejection_curve"]
        if not isinstance(curve, dict) or not curve or any(not _is(v, _NUM) for v in curve.values()):
            return "final.test_rejection_curve is not a mapping of error level -> rejection"
        try:
            [float(k) for k in curve]
        except ValueError:
            return "final.test_rejection_curve has a key that is not a number"
    parts = Path(rel).parts
    if parts[0] != rec["dataset"]:
        return f"record of dataset {rec['dataset']!r} stored in folder {parts[0]!r}"
    expected = run_path(Path("."), rec["dataset"], rec["label"], rec["config_digest"], rec["seed"]).name
    if parts[-1] != expected:
        return f"file name does not match its contents (expected {expected})"
    return None


@dataclass
class Inputs:
    records: list[dict]  # valid records, each with "_file" (path relative to runs/) added
    skipped: list[tuple[str, str]]  # (path relative to runs/, reason)


def load_records(results_dir: Path, strict: bool = False, warn: Callable[[str], None] = lambda m: None) -> Inputs:
    """Read every file under <results_dir>/runs; invalid ones are skipped with a warning (strict: ReportError)."""
    runs = Path(results_dir) / "runs"
    records, skipped = [], []
    if not runs.is_dir():
        return Inputs(records, skipped)
    for root, dirs, files in os.walk(runs):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue  # a record being written atomically (store.atomic_write_bytes), or OS clutter
            path = Path(root) / name
            rel = path.relative_to(runs).as_posix()
            if len(Path(rel).parts) != 2 or not name.endswith(".json"):
                problem = "not a run record (records are runs/<dataset>/<label>-<digest>-s<seed>.json)"
            else:
                try:
                    rec = json.loads(path.read_text())
                    problem = record_problem(rec, rel)
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                    problem = f"not valid JSON ({e})"
            if problem:
                msg = f"runs/{rel}: {problem}"
                if strict:
                    raise ReportError(f"{msg} (--strict: stopping; move or fix the file)")
                warn(f"skipped {msg}")
                skipped.append((rel, problem))
                continue
            rec["_file"] = rel
            records.append(rec)
    return Inputs(records, skipped)


# ----------------------------------------------------------------------------------------- groups
COMPAT_FIELDS = ("dataset_fingerprint", "config_digest", "repro version")


def _compat_key(rec: dict) -> tuple[str, str, str]:
    return rec["dataset_fingerprint"], rec["config_digest"], rec["versions"]["repro"]


@dataclass
class Group:
    dataset: str
    label: str
    records: list[dict]  # the kept, mutually compatible records, by seed
    dropped: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> list[dict]:
        return [r for r in self.records if r["diverged_at_pass"] is None]

    @property
    def n_diverged(self) -> int:
        return len(self.records) - len(self.ok)

    @property
    def first(self) -> dict:
        return self.records[0]

    def values(self, key: str, scale: float = 1.0) -> list[float]:
        return [scale * r["final"][key] for r in self.ok]


def group_records(records: list[dict], warn: Callable[[str], None] = lambda m: None) -> dict[tuple[str, str], Group]:
    """(dataset, label) -> Group; incompatible minorities are dropped with a warning."""
    by_key: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        by_key.setdefault((r["dataset"], r["label"]), []).append(r)
    groups = {}
    for (ds, label), recs in sorted(by_key.items()):
        counts = Counter(_compat_key(r) for r in recs)
        newest = {k: max(r["created"] for r in recs if _compat_key(r) == k) for k in counts}
        keep = sorted(counts, key=lambda k: (-counts[k], _desc(newest[k]), k))[0]
        kept = sorted((r for r in recs if _compat_key(r) == keep), key=lambda r: (r["seed"], r["_file"]))
        dropped = sorted((r for r in recs if _compat_key(r) != keep), key=lambda r: r["_file"])
        if dropped:
            for k in sorted({_compat_key(r) for r in dropped}):
                files = [r["_file"] for r in dropped if _compat_key(r) == k]
                diff = "; ".join(f"{n} {v} (kept: {kv})" for n, v, kv in zip(COMPAT_FIELDS, k, keep) if v != kv)
                warn(f"{ds}/{label}: dropped {len(files)} record(s) incompatible with the {len(kept)} kept: {diff}; "
                     f"files: {', '.join('runs/' + f for f in files)}")
        groups[(ds, label)] = Group(ds, label, kept, dropped)
    return groups


def _desc(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)  # sorts strings in descending order inside an ascending sort key


def label_order(labels, ladder: list[str]) -> list[str]:
    """Ladder rungs in ladder order, then any other labels sorted."""
    labels = set(labels)
    return [n for n in ladder if n in labels] + sorted(labels - set(ladder))


def comparison_label(label: str, present: list[str], ladder: list[str]) -> str | None:
    """Which row a row's test error is compared with: the previous ladder rung present; for labels outside the
    ladder, 'full' for 'minus:*' rows, else the first rung (the baseline)."""
    if label in ladder:
        before = [n for n in ladder[: ladder.index(label)] if n in present]
        return before[-1] if before else None
    if label.startswith("minus:") and "full" in present:
        return "full"
    return ladder[0] if ladder and ladder[0] in present and label != ladder[0] else None


# ----------------------------------------------------------------------------------------- entry point
def write_report(results_dir: Path = DEFAULT_RESULTS_DIR, paper_dir: Path = DEFAULT_PAPER_DIR, *,
                 data_dir: str | None = None, ladder_dir: Path | None = None, strict: bool = False,
                 make_figures: bool = True, warn: Callable[[str], None] = lambda m: None) -> list[Path]:
    """Write results.md, the tables and (unless make_figures=False) the figures; return the paths written.

    Warnings go to `warn` and into results.md. Existing figures are left alone when make_figures=False.
    """
    from repro.report import plots
    from repro.report import tables
    from repro.config import ConfigError
    from repro.study.ladder import DEFAULT_LADDER_DIR, load_rungs
    from repro.study.store import atomic_write_bytes

    results_dir, paper_dir = Path(results_dir), Path(paper_dir)
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        warn(f"warning: {msg}")

    try:
        rungs = load_rungs(Path(ladder_dir) if ladder_dir else DEFAULT_LADDER_DIR)
    except ConfigError as e:
        note(f"ladder not readable ({e}); rows are sorted by label")
        rungs = []
    ladder = [r.name for r in rungs]

    inputs = load_records(results_dir, strict=strict, warn=note)
    groups = group_records(inputs.records, warn=note)
    # The faithfulness study (ablations/faithful/) gets its own table; its rows stay out of the main ladder's.
    faithful_ladder, faithful_extras = _faithful_rungs(Path(ladder_dir) if ladder_dir else DEFAULT_LADDER_DIR, note)
    faithful = [r.name for r in faithful_ladder + faithful_extras]
    faithful_top = faithful_ladder[-1].name if faithful_ladder else None
    faithful_groups = {k: g for k, g in groups.items() if k[0] == FAITHFUL_DATASET and k[1] in faithful}
    groups = {k: g for k, g in groups.items() if k[1] not in faithful or k[1] in ladder}
    datasets = sorted({ds for ds, _ in groups}, key=lambda d: (d != "usps", d))
    if not groups:
        note(f"no usable run records under {results_dir / 'runs'}; tables and figures skipped")
    order = {ds: label_order([lb for d, lb in groups if d == ds], ladder) for ds in datasets}

    written: list[Path] = []

    def put(path: Path, data: bytes) -> None:
        atomic_write_bytes(path, data)
        written.append(path)

    frames = {}
    for ds in datasets:
        frames[ds] = tables.build_table(groups, ds, order[ds], ladder)
        put(paper_dir / "tables" / f"{ds}.csv", tables.to_csv(frames[ds]).encode())
        put(paper_dir / "tables" / f"{ds}.tex", tables.to_latex(frames[ds], ds).encode())
    faithful_frame = None
    if faithful_groups:
        f_order = label_order([lb for _, lb in faithful_groups], faithful)
        faithful_frame = tables.build_table(faithful_groups, FAITHFUL_DATASET, f_order, faithful, FAITHFUL_REFERENCES)
        name = f"faithful-{FAITHFUL_DATASET}"
        put(paper_dir / "tables" / f"{name}.csv", tables.to_csv(faithful_frame).encode())
        put(paper_dir / "tables" / f"{name}.tex", tables.to_latex(faithful_frame, name).encode())

    figures = plots.make_figures(groups, order, ladder, results_dir, data_dir, warn=note) if make_figures else {}
    for name, png in figures.items():
        put(paper_dir / "figures" / name, png)

    md = tables.results_markdown(frames, groups, order, inputs, notes, rungs,
                                 {name: _rel(paper_dir / "figures" / name, results_dir) for name in figures},
                                 faithful_frame)
    put(results_dir / "results.md", md.encode())

    # Generated blocks inside hand-written documents: the paper's results section and the README headline.
    figs = {name: f"figures/{name}" for name in figures} or {
        p.name: f"figures/{p.name}" for p in sorted((paper_dir / "figures").glob("*.png"))}
    blocks = [(paper_dir / "paper.md", "results", tables.paper_results_block(frames, figs)),
              (paper_dir / "paper.md", "faithful", tables.faithful_block(faithful_frame)),
              (results_dir.parent / "README.md", "headline",
               tables.headline_block(frames, order, {k: _rel(paper_dir / v, results_dir.parent) for k, v in figs.items()},
                                     faithful_frame, faithful_top))]
    for path, name, text in blocks:
        updated = refresh_block(path, name, text)
        if updated is not None:
            put(path, updated.encode())
    return written


def _faithful_rungs(ladder_dir: Path, note: Callable[[str], None]) -> tuple[list, list]:
    """The faithfulness ladder (ablations/faithful/, beside the main ladder) and its extra rungs, if present."""
    from repro.config import ConfigError
    from repro.study.ladder import extra_rungs, load_rungs

    folder = Path(ladder_dir) / "faithful"
    if not folder.is_dir():
        return [], []
    try:
        return load_rungs(folder), extra_rungs(folder)
    except ConfigError as e:
        note(f"faithfulness ladder not readable ({e}); its table is skipped")
        return [], []


def refresh_block(path: Path, name: str, text: str) -> str | None:
    """`path`'s text with the part between its report:<name> markers replaced by `text`; None when the file
    or its markers are missing (then nothing is written)."""
    if not path.is_file():
        return None
    doc = path.read_text()
    start, end = f"<!-- report:{name}:start -->", f"<!-- report:{name}:end -->"
    if start not in doc or end not in doc:
        return None
    head, rest = doc.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{text.strip()}\n{end}{tail}"


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
