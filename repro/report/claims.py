"""Claims as data: every sentence of the write-up that states a number of ours, a direction or a significance.

A claims file (paper/claims.toml) declares, for each claim, its `name`, the `values` it reads, the condition
under which it `holds`, and its `text`. `repro report --study` evaluates every claim on the re-made tables and
records, fails naming each claim whose condition no longer holds (ClaimError), and renders each claim's text
into the documents between `<!-- claim:NAME -->` and `<!-- /claim -->`. Figures quoted from the 1989 paper or
from other reproductions are citations, not claims.

Values (strings in a claim's [values] table):

- `table NAME ROW COLUMN`: the cell of the report's table NAME (tables/NAME.csv) in the row whose `label` (or,
  without one, first column) is ROW, or selected by `col=value,col=value`, as a number.
  A cell that is not a number is read as text. A ROW with spaces is quoted: `table guesses "measured
  on=paper,guess=mu-0.005" verdict`.
- `count NAME ROW`: how many rows of table NAME the selection ROW (as above) matches.
- `sum|min|max|median|absmax NAME ROW COLUMN`: that aggregate of COLUMN over the rows ROW selects (`*`: every
  row).
- `= EXPRESSION`: computed from the values declared above it (same forms as `holds`).
- `runs DATASET LABEL`: the runs of a configuration that did not collapse: `.n`, `.mean`, `.std`, `.median`,
  `.min`, `.max` of their final test error (%), `.train_mean` etc. of their train error; `.all_mean`: the mean
  test error of every finished run, collapsed ones included.
- `runs_below DATASET LABEL METRIC VALUE`: how many runs of a configuration that did not collapse end with METRIC
  (`test_error` or `train_error`, %) below VALUE.
- `collapsed DATASET LABEL`: `.k` collapsed of `.n` runs (the records' `collapsed`), `.share`, and `.low`,
  `.high`: its 95% Clopper–Pearson interval, in %.
- `diff DATASET A B METRIC in FAMILY`: mean of B minus mean of A of METRIC (`test_error` or `train_error`, %,
  of the runs that did not collapse, as in the tables' Δ columns): `.diff`, `.low`, `.high` (95% interval, paired
  by seed where both ran the same seeds and none collapsed, else Welch's: repro.report.records.difference),
  `.p`, `.paired`, `.corr` (the correlation over seeds when paired), the equivalence test at
  EQUIVALENCE_MARGIN points (`.equivalent`: the 90% interval `.eq_low`, `.eq_high` lies inside +-`.margin`,
  two one-sided tests at 5%), and,
  over the declared family FAMILY ([family.FAMILY] comparisons = ["DATASET A B METRIC", ...]): `.p_holm` (Holm's
  adjusted p-value) and `.low_adj`, `.high_adj` (Bonferroni-simultaneous 95% interval over the family's size).
  A difference must belong to a declared family: the correction covers every comparison of the family, cited
  or not.

`holds` is an expression over the values: comparisons, `and`, `or`, `not`, arithmetic, `abs`, `min`, `max`,
`sqrt`, attribute access. `text` is a Python format string over the values (`{d.diff:+.2f}`).
"""

from __future__ import annotations

import ast
import math
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from repro.report.records import Group, ReportError, difference
from repro.report.stats import clopper_pearson

MARKER = re.compile(r"<!-- claim:([A-Za-z0-9_.-]+) -->(.*?)<!-- /claim -->", re.DOTALL)
FAMILY_LEVEL = 0.95
EQUIVALENCE_MARGIN = 0.3  # points: "no effect" is claimed only when a difference is shown to lie within it


class ClaimError(ReportError):
    """A claim that does not hold on the re-made study, or a claims file that cannot be read."""


@dataclass(frozen=True)
class Claim:
    name: str
    text: str
    holds: str
    values: dict[str, str]


def load_claims(path: Path) -> tuple[list[Claim], dict[str, list[str]]]:
    """The claims and the families of comparisons declared in `path`."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ClaimError(f"claims file {path} not readable: {e}") from e
    families = {name: list(f.get("comparisons", [])) for name, f in data.get("family", {}).items()}
    claims, seen = [], set()
    for entry in data.get("claim", []):
        missing = {"name", "text", "holds"} - set(entry)
        if missing:
            raise ClaimError(f"claim {entry.get('name', '?')!r} in {path} lacks {sorted(missing)}")
        if entry["name"] in seen:
            raise ClaimError(f"claim {entry['name']!r} is declared twice in {path}")
        seen.add(entry["name"])
        claims.append(Claim(entry["name"], entry["text"], entry["holds"], dict(entry.get("values", {}))))
    return claims, families


# ----------------------------------------------------------------------------------------- values
class _Sources:
    """Reads the values claims name, from the report's tables and the grouped records."""

    def __init__(self, table_dir: Path, groups: dict[tuple[str, str], Group], families: dict[str, list[str]]):
        self.table_dir, self.groups, self.families = Path(table_dir), groups, families
        self._tables: dict[str, pd.DataFrame] = {}
        self._family_cache: dict[str, dict[str, SimpleNamespace]] = {}

    def group(self, dataset: str, label: str) -> Group:
        g = self.groups.get((dataset, label))
        if g is None or not g.ok:
            raise KeyError(f"no finished runs of {dataset} `{label}`")
        return g

    def _rows(self, name: str, row: str) -> tuple[pd.DataFrame, np.ndarray]:
        if name not in self._tables:
            path = self.table_dir / f"{name}.csv"
            if not path.is_file():
                raise KeyError(f"no table {name} ({path})")
            self._tables[name] = pd.read_csv(path, keep_default_na=False, na_values=[""])
        df = self._tables[name]
        key = "label" if "label" in df.columns else df.columns[0]
        if row == "*=*":
            return df, np.ones(len(df), dtype=bool)
        conditions = dict(c.split("=", 1) for c in row.split(",")) if "=" in row else {key: row}
        mask = np.ones(len(df), dtype=bool)
        for col, value in conditions.items():
            if col not in df.columns:
                raise KeyError(f"table {name} has no column {col}")
            mask &= df[col].astype(str) == value
        return df, mask

    def table(self, name: str, row: str, column: str) -> float | str:
        df, mask = self._rows(name, row)
        if column not in df.columns:
            raise KeyError(f"table {name} has no column {column}")
        if mask.sum() != 1:
            raise KeyError(f"table {name} has {int(mask.sum())} rows for {row}")
        cell = df.loc[mask, column].iloc[0]
        try:
            return float(cell)
        except (TypeError, ValueError):
            return str(cell)

    def count(self, name: str, row: str) -> int:
        return int(self._rows(name, row)[1].sum())

    def aggregate(self, how: str, name: str, row: str, column: str) -> float:
        df, mask = self._rows(name, row) if row != "*" else (self._rows(name, "*=*")[0], None)
        if column not in df.columns:
            raise KeyError(f"table {name} has no column {column}")
        values = pd.to_numeric((df if mask is None else df.loc[mask])[column], errors="coerce").dropna().to_numpy()
        if not len(values):
            raise KeyError(f"table {name} has no numbers in {column} for {row}")
        return float({"sum": values.sum(), "min": values.min(), "max": values.max(), "median": np.median(values),
                      "absmax": np.abs(values).max()}[how])

    def runs(self, dataset: str, label: str) -> SimpleNamespace:
        g = self.group(dataset, label)
        test, train = np.array(g.stable_values("test_error", 100.0)), np.array(g.stable_values("train_error", 100.0))

        def stats(v: np.ndarray, prefix: str = "") -> dict:
            if not len(v):
                return {f"{prefix}{k}": math.nan for k in ("mean", "std", "median", "min", "max")}
            return {f"{prefix}mean": float(v.mean()), f"{prefix}std": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
                    f"{prefix}median": float(np.median(v)), f"{prefix}min": float(v.min()),
                    f"{prefix}max": float(v.max())}

        return SimpleNamespace(n=len(test), **stats(test), **stats(train, "train_"),
                               all_mean=float(np.mean(g.values("test_error", 100.0))))

    def runs_below(self, dataset: str, label: str, metric: str, value: str) -> int:
        return sum(v < float(value) for v in self.group(dataset, label).stable_values(metric, 100.0))

    def collapsed(self, dataset: str, label: str) -> SimpleNamespace:
        g = self.group(dataset, label)
        k, n = g.n_collapsed, len(g.records)
        low, high = clopper_pearson(k, n)
        return SimpleNamespace(k=k, n=n, share=k / n, low=100.0 * low, high=100.0 * high)

    def _difference(self, comparison: str) -> SimpleNamespace:
        dataset, a, b, metric = comparison.split()
        ga, gb = self.group(dataset, a), self.group(dataset, b)
        d = difference(ga, gb, metric)
        iv = d.interval
        # Equivalence (two one-sided tests at 5%): the 90% interval lies inside +-EQUIVALENCE_MARGIN points.
        eq = difference(ga, gb, metric, level=1.0 - 2.0 * (1.0 - FAMILY_LEVEL)).interval
        return SimpleNamespace(diff=iv.diff, low=iv.low, high=iv.high, p=iv.p, paired=d.paired, corr=d.corr,
                               eq_low=eq.low, eq_high=eq.high, margin=EQUIVALENCE_MARGIN,
                               equivalent=-EQUIVALENCE_MARGIN < eq.low and eq.high < EQUIVALENCE_MARGIN,
                               groups=(ga, gb, metric))

    def family(self, name: str) -> dict[str, SimpleNamespace]:
        if name not in self._family_cache:
            if name not in self.families:
                raise KeyError(f"no family {name} declared")
            members = {" ".join(c.split()): self._difference(c) for c in self.families[name]}
            m = len(members)
            ordered = sorted(members.values(), key=lambda d: d.p)
            running = 0.0
            for rank, d in enumerate(ordered):  # Holm's adjusted p-values: monotone step-down
                running = max(running, min(1.0, (m - rank) * d.p))
                d.p_holm = running
            for d in members.values():
                adj = difference(*d.groups, level=1.0 - (1.0 - FAMILY_LEVEL) / m).interval
                d.low_adj, d.high_adj, d.m = adj.low, adj.high, m
            self._family_cache[name] = members
        return self._family_cache[name]

    def value(self, ref: str):
        words = shlex.split(ref)
        kind, args = words[0], words[1:]
        if kind == "table" and len(args) == 3:
            return self.table(*args)
        if kind == "count" and len(args) == 2:
            return self.count(*args)
        if kind in ("sum", "min", "max", "median", "absmax") and len(args) == 3:
            return self.aggregate(kind, *args)
        if kind == "runs" and len(args) == 2:
            return self.runs(*args)
        if kind == "runs_below" and len(args) == 4:
            return self.runs_below(*args)
        if kind == "collapsed" and len(args) == 2:
            return self.collapsed(*args)
        if kind == "diff" and len(args) == 6 and args[4] == "in":
            members = self.family(args[5])
            key = " ".join(args[:4])
            if key not in members:
                raise KeyError(f"{key} is not a comparison of family {args[5]}")
            return members[key]
        raise KeyError(f"cannot read {ref!r} (see repro.report.claims for the forms)")


# ----------------------------------------------------------------------------------------- conditions
_FUNCTIONS = {"abs": abs, "min": min, "max": max, "sqrt": math.sqrt}


def _evaluate(node: ast.AST, names: dict):
    """A restricted evaluator: the expression forms the module doc lists, nothing else."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, names)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool, str)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise KeyError(f"unknown name {node.id}")
        return names[node.id]
    if isinstance(node, ast.Attribute) and not node.attr.startswith("_"):
        return getattr(_evaluate(node.value, names), node.attr)
    if isinstance(node, ast.BoolOp):
        values = [_evaluate(v, names) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        v = _evaluate(node.operand, names)
        return (not v) if isinstance(node.op, ast.Not) else -v
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        a, b = _evaluate(node.left, names), _evaluate(node.right, names)
        if isinstance(node.op, ast.Div):
            return a / b if b else math.nan
        return a + b if isinstance(node.op, ast.Add) else a - b if isinstance(node.op, ast.Sub) else a * b
    if isinstance(node, ast.Compare):
        ops = {ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b,
               ast.GtE: lambda a, b: a >= b, ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b}
        left = _evaluate(node.left, names)
        for op, comp in zip(node.ops, node.comparators):
            right = _evaluate(comp, names)
            if type(op) not in ops or not ops[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        return _FUNCTIONS[node.func.id](*(_evaluate(a, names) for a in node.args))
    raise ValueError(f"not allowed in a condition: {ast.dump(node)[:60]}")


def evaluate(claims_file: Path, table_dir: Path, groups: dict[tuple[str, str], Group],
             only: set[str] | None = None) -> dict[str, str]:
    """Every claim of `claims_file` (or those named in `only`) checked on the tables in `table_dir` and the
    grouped records: the rendered text of each, by name. ClaimError naming every claim that does not hold or
    cannot be read."""
    claims, families = load_claims(claims_file)
    claims = [c for c in claims if only is None or c.name in only]
    sources = _Sources(table_dir, groups, families)
    texts, failures = {}, []
    for claim in claims:
        try:
            names = {}
            for k, v in claim.values.items():  # in order: "= expression" reads the values above it
                names[k] = (_evaluate(ast.parse(v[1:].strip(), mode="eval"), names) if v.startswith("=")
                            else sources.value(v))
            ok = bool(_evaluate(ast.parse(claim.holds, mode="eval"), names))
            text = claim.text.format(**names)
        except (KeyError, ValueError, AttributeError, IndexError, SyntaxError, TypeError) as e:
            failures.append(f"claim {claim.name}: cannot be evaluated ({e})")
            continue
        if not ok:
            failures.append(f"claim {claim.name}: no longer holds ({claim.holds}; it would read: {text})")
        texts[claim.name] = text
    if failures:
        raise ClaimError("the study no longer supports what the text says:\n  " + "\n  ".join(failures))
    return texts


def render(document: str, texts: dict[str, str], where: str = "the document") -> str:
    """`document` with the text between each claim's markers replaced by the claim's rendered text;
    ClaimError for a marker naming no declared claim."""
    unknown = sorted({m.group(1) for m in MARKER.finditer(document)} - set(texts))
    if unknown:
        raise ClaimError(f"{where} cites undeclared claim(s): {', '.join(unknown)}")
    return MARKER.sub(lambda m: f"<!-- claim:{m.group(1)} -->{texts[m.group(1)]}<!-- /claim -->", document)


def cited(document: str) -> set[str]:
    """The names of the claims a document cites."""
    return {m.group(1) for m in MARKER.finditer(document)}
