"""The peers' single runs beside our seeds: where each published figure falls in the distribution of the rung of
ours it stands beside (references.PEER_FIGURES), and how far our run from the earlier reproduction's initial
weights lands from what its own code gives on the same draw (committed data: results/measured/code-reruns-mnist16.json,
repro.report.measured).

Where a figure falls: its percentile among our runs' final errors (mid-rank: the share of our runs below it,
plus half of those equal to it), and whether it lies inside our min-max range. Besides what `differs` names,
every peer figure scores errors by argmax, where a tie between outputs counts as right; ours count it as wrong.
Where every run of a rung has a checkpoint (scripts/keep_checkpoints.py), its runs are scored by argmax too
(repro.report.tie_rule.argmax_errors), and the figure's percentile among them is given beside the tie rule's.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Callable

import pandas as pd

from repro.data import dataset_spec
from repro.report import measured
from repro.report.records import Group, ReportError
from repro.report.tie_rule import argmax_errors
from repro.report.references import PEER_DRAW, PEER_FIGURES, PEER_SEED, PEER_WEIGHTS_LABEL, PeerFigure
from repro.report.tables import to_csv

REPRODUCIBLE = "reproducible with the peer's initial weights"
DRAW = "a single draw"
SPLITS = (("train", "train_error"), ("test", "test_error"))
COLUMNS = ("rung", "peer run", "kind", "passes", "split", "peer %", "seeds", "ours mean %", "ours median %",
           "ours min %", "ours max %", "percentile", "where", "argmax seeds", "argmax percentile", "argmax where",
           "from peer weights", "from peer weights %", "differs", "source")
Scores = dict[str, dict[str, dict[str, list[float]]]]  # dataset -> rung -> error key -> our runs' argmax errors, %


def percentile(value: float, ours: list[float]) -> float:
    """Mid-rank percentile of `value` among `ours` (NaN when there are none)."""
    if not ours:
        return math.nan
    below = sum(v < value for v in ours)
    equal = sum(v == value for v in ours)
    return 100.0 * (below + 0.5 * equal) / len(ours)


def where(value: float, ours: list[float]) -> str:
    if not ours:
        return "no runs of ours"
    if value < min(ours):
        return "below our range"
    if value > max(ours):
        return "above our range"
    return "inside our range"


def argmax_scores(groups: dict[tuple[str, str], Group], results_dir: Path, data_dir: str | None,
                  warn: Callable[[str], None]) -> Scores:
    """Our runs of the rungs the peers' figures stand beside, scored by argmax where their checkpoints are kept."""
    return {ds: argmax_errors(groups, ds, sorted({f.rung for f in PEER_FIGURES if f.ref.dataset == ds}),
                              results_dir, data_dir, warn)
            for ds in sorted({f.ref.dataset for f in PEER_FIGURES})}


def build_table(groups: dict[tuple[str, str], Group], dataset: str,
                figures: tuple[PeerFigure, ...] = PEER_FIGURES, argmax: Scores | None = None) -> pd.DataFrame:
    """One row per (peer figure of `dataset`, split it reports), beside the runs of its rung in `groups`, and
    beside them scored by argmax where `argmax` has them."""
    rows = []
    for fig in (f for f in figures if f.ref.dataset == dataset):
        g = groups.get((dataset, fig.rung))
        for split, key in SPLITS:
            value = getattr(fig.ref, key)
            if value is None:
                continue
            ours = g.values(key, 100.0) if g is not None else []
            by_argmax = ((argmax or {}).get(dataset, {}).get(fig.rung) or {}).get(key, [])
            rows.append({
                "rung": fig.rung, "peer run": fig.ref.name, "kind": REPRODUCIBLE if fig.reproducible else DRAW,
                "passes": fig.ref.passes, "split": split, "peer %": value, "seeds": len(ours),
                "ours mean %": statistics.fmean(ours) if ours else math.nan,
                "ours median %": statistics.median(ours) if ours else math.nan,
                "ours min %": min(ours, default=math.nan), "ours max %": max(ours, default=math.nan),
                "percentile": percentile(value, ours), "where": where(value, ours),
                "argmax seeds": len(by_argmax), "argmax percentile": percentile(value, by_argmax),
                "argmax where": where(value, by_argmax) if by_argmax else "",
                "from peer weights": fig.retrained, "from peer weights %": retrained(groups, dataset, fig, key),
                "differs": fig.differs, "source": fig.ref.source})
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for c in ("passes", "seeds", "argmax seeds"):
        df[c] = df[c].astype("Int64")
    return df


def retrained(groups: dict[tuple[str, str], Group], dataset: str, fig: PeerFigure, key: str) -> float:
    """Our run of the figure's step from the peer's initial weights (seed 1337): its error `key` (%) at the pass
    the figure is read at; NaN without such a run."""
    g = groups.get((dataset, fig.retrained)) if fig.retrained else None
    rec = next((r for r in g.ok if r["seed"] == PEER_SEED), None) if g is not None else None
    if rec is None:
        return math.nan
    return 100.0 * (rec[key][fig.read_at_pass - 1] if fig.read_at_pass else rec["final"][key])


def code_reruns(dataset: str = "mnist16") -> measured.Measurement | None:
    """The peer's own code, run unchanged on each draw of `dataset` (committed data); None where there is none
    (an installed package carries no results/measured/)."""
    try:
        return measured.load(f"code-reruns-{dataset}")
    except ReportError:
        return None


def rerun_distance(groups: dict[tuple[str, str], Group], reruns: measured.Measurement,
                   dataset: str = "mnist16") -> str | None:
    """One sentence: our run from the peer's initial weights against its own code's result on the draw the
    published runs used; None without our run."""
    g = groups.get((dataset, PEER_WEIGHTS_LABEL))
    rec = next((r for r in g.ok if r["seed"] == PEER_SEED), None) if g is not None else None
    if rec is None:
        return None
    theirs = reruns.table.set_index("draw").loc[PEER_DRAW]
    spec = dataset_spec(dataset)
    final = rec["final"]
    train, test = round(final["train_error"] * spec.n_train), round(final["test_error"] * spec.n_test)
    return (f"Our `{PEER_WEIGHTS_LABEL}` run (init = \"repro2022\", seed {PEER_SEED}, {rec['passes']} passes, engine "
            f"{rec['engine']}) ends at {train} train / {test} test misses (ties counted as errors) and losses "
            f"{final['train_loss']:.3e} / {final['test_loss']:.3e}; the peer's own code on the same digits "
            f"({PEER_DRAW}): {theirs.train_misses} / {theirs.test_misses} misses, losses "
            f"{theirs.train_loss:.3e} / {theirs.test_loss:.3e}. Distance: {train - theirs.train_misses:+d} train, "
            f"{test - theirs.test_misses:+d} test misses; losses {_rel(final['train_loss'], theirs.train_loss)} / "
            f"{_rel(final['test_loss'], theirs.test_loss)}.")


def code_rerun_text(reruns: measured.Measurement) -> str:
    """One sentence: the peer's own code on each draw."""
    runs = "; ".join(f"{r.draw}: {r.train_misses} / {r.test_misses} train / test misses, losses "
                     f"{r.train_loss:.3e} / {r.test_loss:.3e}" for r in reruns.table.itertuples())
    return f"The peer's own `repro.py`, run unchanged on each mnist16 draw ({reruns.how}): {runs}."


def _rel(ours: float, theirs: float) -> str:
    return f"{100.0 * (ours - theirs) / theirs:+.1f}%"


def section_markdown(table: pd.DataFrame, dataset: str, rerun: str | None) -> str:
    lines = [f"## The peers' single runs beside our seeds ({dataset})", "",
             "Each published single run of the earlier reproduction (2022) and of the ladder blog that followed it "
             "(2023) beside the runs of the rung of ours it corresponds to: its percentile among our final errors "
             "(mid-rank) and whether it lies inside our min-max range. *" + REPRODUCIBLE + "*: nothing random "
             "follows its initial weights, so init = \"repro2022\", seed 1337 retrains it; *" + DRAW + "*: one "
             "draw of its own random streams (shifts, dropout masks). *from peer weights*: our run of the same "
             "step from the peer's initial weights (init = \"repro2022\", seed 1337, `ablations/peers/extra/`), "
             "read at the figure's pass; for single draws its shifts and dropout masks are ours, not the peer's. "
             "Besides `differs`, every peer figure scores by argmax (a tie between outputs counts as right; ours "
             "counts it as an error). *percentile, argmax*: the same among our runs scored by argmax from their "
             "checkpoints, as the peer figures are.", ""]
    if rerun:
        lines += [rerun, ""]
    cols = ["rung", "peer run", "kind", "passes", "split", "peer %", "seeds", "ours mean %", "ours median %",
            "ours min–max %", "percentile", "where", "percentile, argmax", "from peer weights %", "differs"]
    lines += ["| " + " | ".join(cols) + " |",
              "|" + "|".join("--:" if c in ("passes", "peer %", "seeds", "ours mean %", "ours median %", "percentile",
                                                "percentile, argmax", "from peer weights %")
                             else "---" for c in cols) + "|"]
    for _, r in table.iterrows():
        ours = r["seeds"] > 0
        cells = [f"`{r['rung']}`", r["peer run"], r["kind"], _int(r["passes"]), r["split"], f"{r['peer %']:.2f}",
                 str(r["seeds"]), _num(r["ours mean %"]), _num(r["ours median %"]),
                 f"{r['ours min %']:.2f}–{r['ours max %']:.2f}" if ours else "", _num(r["percentile"], 0),
                 r["where"], _num(r["argmax percentile"], 0), _retrained_cell(r), r["differs"] or "—"]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _retrained_cell(r) -> str:
    value = r["from peer weights %"]
    if not r["from peer weights"] or pd.isna(value):
        return ""
    return f"{value:.2f} (`{r['from peer weights']}`, {value - r['peer %']:+.2f})"


def _num(x: float, digits: int = 2) -> str:
    return "" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def _int(x) -> str:
    return "" if pd.isna(x) else str(int(x))


def write(groups: dict[tuple[str, str], Group], table_dir: Path, put: Callable[[Path, bytes], None],
          argmax: Scores | None = None) -> list[str]:
    """peers-<dataset>.md/.csv into `table_dir` for each dataset with peer figures and runs of ours; returns the
    sections for the report's text (none without runs of a rung a peer figure stands beside, or of the rerun)."""
    sections = []
    for dataset in sorted({f.ref.dataset for f in PEER_FIGURES}):
        if not any((dataset, label) in groups for label in [f.rung for f in PEER_FIGURES] + [PEER_WEIGHTS_LABEL]):
            continue
        table, reruns = build_table(groups, dataset, argmax=argmax), code_reruns(dataset)
        rerun = (" ".join(t for t in (code_rerun_text(reruns), rerun_distance(groups, reruns, dataset)) if t)
                 if reruns is not None else None)
        text = section_markdown(table, dataset, rerun)
        put(table_dir / f"peers-{dataset}.csv", to_csv(table).encode())
        put(table_dir / f"peers-{dataset}.md", (text + "\n").encode())
        sections.append(text)
    return sections
