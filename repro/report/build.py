"""`repro report`: read every run record, check it, group the runs, and write tables, figures and a report.

Module order (each imports only the ones above it): repro.report.stats, .fmt, .references, .records, .png,
.tables, .match, .plots, .compare, .calibration, .attribution, .attribution_text, .attribution_figures,
.thresholds, .guesses, .claims, then this module.

Two kinds of report, chosen by the caller (write_report's `study`):

- a **workspace** (a folder with the layout of results/: <dir>/runs/<dataset>/*.json, <dir>/checkpoints/):
  its own report goes to <out_dir> (default <dir>/report/): report.md, tables/<dataset>.csv|tex,
  figures/*.png, and, with a reference folder, tables/comparison.csv and a section checking its runs
  against the reference (repro.report.compare). Nothing outside <out_dir> is written.
  With factorial runs (labels `f:...`, `repro ablate --mode factorial`), also a section on what each change
  buys whatever the order (repro.report.attribution), tables/{factorial,attribution,interactions}-<dataset>.csv
  and figures/{attribution,interactions}_<dataset>.png; their rows stay out of the ladder's tables and figures.
  With guess runs (labels `guess:<rung>+<guess>`, `repro ablate --mode guesses`), a section judging each on
  training data (repro.report.guesses) and tables/guesses.csv; their rows too stay out of the ladder's.
- the **committed study** (study=True; results/): results/results.md, <paper_dir>/tables, <paper_dir>/figures,
  and the generated blocks of <paper_dir>/paper.md, README.md (beside results/) and results/README.md (the
  record schema); with factorial runs, the same attribution files, a section of results.md and paper.md's
  report:attribution block (and, with guess runs, the guesses section, table and paper.md's report:guesses
  block). Without factorial runs nothing about attribution is written.
- both, with the figures: the page (repro.page) in page/ (<out_dir>/page, <paper_dir>/page).

Outputs are byte-for-byte deterministic for the same inputs (no timestamps). Rules on damaged files,
incompatible records and diverged runs: see repro.report.records; intervals: repro.report.stats.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from repro.atomic_files import atomic_write_bytes
from repro.config import ConfigError
from repro.report import (
    attribution, attribution_figures, attribution_text, calibration, claims, compare, guesses, match, measured, peers,
    plots, speed, tables, thresholds, tie_rule)
from repro.report.compare import Comparison
from repro.page.build import build_page
from repro.png import styled_png
from repro.report.records import ReportError, group_records, label_order, load_records
from repro.report.references import FAITHFUL_DATASET, FAITHFUL_REFERENCES, MOST_LITERAL, PEER_FIGURES
from repro.resources import SUMMARY_NAME, paper_dir as _paper_dir
from repro.study.ladder import DEFAULT_LADDER_DIR, extra_rungs, factorial_subset, load_rungs
from repro.study.record import refresh_schema_block
from repro.study.store import DEFAULT_RESULTS_DIR
from repro.study.summary import read_summary, summary_json

DEFAULT_PAPER_DIR = _paper_dir()  # None when installed from a wheel
# our runs of the peers' steps from their initial weights, but the baseline's (`peer-weights`, a row of its own)
RETRAINED_PEER_STEPS = {f.retrained for f in PEER_FIGURES if f.retrained} - {"peer-weights"}


@dataclass
class Report:
    """What write_report did: the files written, and the check against the reference (None without one)."""

    written: list[Path]
    comparison: Comparison | None = None

    @property
    def all_agree(self) -> bool:
        """False when a configuration differs from the reference, or when a reference was given and nothing
        could be compared; True without a reference."""
        return True if self.comparison is None else self.comparison.all_agree

    @property
    def comparison_text(self) -> str:
        """One line for the terminal ("check: ..."), empty without a reference."""
        return "" if self.comparison is None else compare.summary_line(self.comparison)


def write_report(results_dir: Path = DEFAULT_RESULTS_DIR, *, study: bool = False, out_dir: Path | None = None,
                 paper_dir: Path | None = None, reference_dir: Path | None = None, data_dir: str | None = None,
                 ladder_dir: Path | None = None, strict: bool = False, make_figures: bool = True,
                 summary_file: Path | None = None, warn: Callable[[str], None] = lambda m: None) -> Report:
    """Write the report of the runs under `results_dir`/runs; return what was written and the check.

    study=False (a workspace): report.md, tables/ and figures/ go to `out_dir` (default results_dir/report);
    with `reference_dir` (the committed study's results/), the runs are checked against its runs
    (repro.report.compare) in report.md and tables/comparison.csv. Nothing else is written.
    study=True (the committed study): results.md into `results_dir`, tables/ and figures/ into `paper_dir`
    (default: paper/ beside results_dir), and the generated blocks of paper.md, README.md and
    results_dir/README.md. `out_dir` and `reference_dir` are not accepted then. With `summary_file`, the
    study's summary (repro.study.summary: what a wheel's `report --check` compares with) is written there too.
    A `reference_dir` without runs/ but with the summary (an installed package's study) is read from it.

    ReportError: a folder with no run records (none at all, or every one skipped as damaged), a damaged file
    under strict=True, or arguments that do not fit the kind of report. Warnings go to `warn` and into the
    report's text. Existing figures are left alone when make_figures=False.
    """
    results_dir = Path(results_dir)
    if study:
        if out_dir is not None or reference_dir is not None:
            raise ReportError("the committed study's report is written to results/ and paper/: out_dir and "
                              "reference_dir are for a workspace's report (study=False)")
        paper_dir = Path(paper_dir) if paper_dir is not None else results_dir.parent / "paper"
    else:
        if paper_dir is not None:
            raise ReportError("paper_dir is only for the committed study (study=True); a workspace's report "
                              "goes to out_dir")
        out_dir = Path(out_dir) if out_dir is not None else results_dir / "report"
        for committed in (DEFAULT_RESULTS_DIR, DEFAULT_PAPER_DIR, *((reference_dir,) if reference_dir else ())):
            if committed is not None and _inside(out_dir, Path(committed)):
                raise ReportError(f"a workspace's report would be written into {committed} ({out_dir}); the "
                                  "committed study is written only when asked for (study=True)")
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        warn(f"warning: {msg}")

    ladder_root = Path(ladder_dir) if ladder_dir else DEFAULT_LADDER_DIR
    try:
        rungs = load_rungs(ladder_root)
    except ConfigError as e:
        note(f"ladder not readable ({e}); rows are sorted by label")
        rungs = []
    ladder = [r.name for r in rungs]

    inputs = load_records(results_dir, strict=strict, warn=note)
    if not inputs.records:
        skipped = f" ({len(inputs.skipped)} file(s) there skipped as damaged or foreign)" if inputs.skipped else ""
        raise ReportError(f"no run records under {results_dir / 'runs'}{skipped}: nothing to report "
                          "(runs are written there by `repro train` and `repro ablate`)")
    groups = group_records(inputs.records, warn=note)
    all_groups = dict(groups)
    # The faithfulness study (ablations/faithful/) gets its own table; its rows stay out of the main ladder's.
    faithful_ladder, faithful_extras = _faithful_rungs(ladder_root, note)
    faithful = [r.name for r in faithful_ladder + faithful_extras]
    faithful_groups = {k: g for k, g in groups.items() if k[0] == FAITHFUL_DATASET and k[1] in faithful}
    groups = {k: g for k, g in groups.items() if k[1] not in faithful or k[1] in ladder}
    # A factorial's 2^n configurations get their own section (repro.report.attribution), not 2^n ladder rows.
    factorial_groups = {k: g for k, g in groups.items() if factorial_subset(k[1]) is not None}
    groups = {k: g for k, g in groups.items() if k not in factorial_groups}
    # Guesses (labels `guess:...`, `repro ablate --mode guesses`) are judged in their own table.
    guess_groups = guesses.guess_groups(groups)
    groups = {k: g for k, g in groups.items() if k not in guess_groups}
    # Rungs with their own code (Config.code; repro.rung_code) get their own table, apart from the ladder.
    code_groups = {k: g for k, g in groups.items() if g.first["config"].get("code") and k[1] not in ladder}
    groups = {k: g for k, g in groups.items() if k not in code_groups}
    # Runs that retrain a peer's published step from its initial weights are shown beside it (repro.report.peers).
    groups = {k: g for k, g in groups.items() if k[1] not in RETRAINED_PEER_STEPS}
    # Extra rungs of the ladder (ablations/extra/, controls such as ReLU + SGD at small rates) get their own
    # table, so that the ladder table's family of comparisons stays the ladder's steps.
    extra_names = [r.name for r in _extra_rungs(ladder_root, note)]
    extra_groups = {k: g for k, g in groups.items() if k[1] in extra_names}
    groups = {k: g for k, g in groups.items() if k not in extra_groups}
    datasets = sorted({ds for ds, _ in groups}, key=lambda d: (d != "usps", d))
    order = {ds: label_order([lb for d, lb in groups if d == ds], ladder) for ds in datasets}

    written: list[Path] = []

    def put(path: Path, data: bytes) -> None:
        atomic_write_bytes(path, data)
        written.append(path)

    table_dir = paper_dir / "tables" if study else out_dir / "tables"
    figure_dir = paper_dir / "figures" if study else out_dir / "figures"
    text_path = results_dir / "results.md" if study else out_dir / "report.md"

    frames = {}
    for ds in datasets:
        frames[ds] = tables.build_table(groups, ds, order[ds], ladder)
        put(table_dir / f"{ds}.csv", tables.to_csv(frames[ds]).encode())
        put(table_dir / f"{ds}.tex", tables.to_latex(frames[ds], ds).encode())
    faithful_frame = None
    if faithful_groups:
        f_order = label_order([lb for _, lb in faithful_groups], faithful)
        faithful_frame = tables.with_paper_loss(
            tables.build_table(faithful_groups, FAITHFUL_DATASET, f_order, faithful, FAITHFUL_REFERENCES))
        name = f"faithful-{FAITHFUL_DATASET}"
        put(table_dir / f"{name}.csv", tables.to_csv(faithful_frame).encode())
        put(table_dir / f"{name}.tex", tables.to_latex(faithful_frame, name).encode())
    match_table = None  # each reading against the paper's numbers, by the one rule (repro.report.match)
    if faithful_groups and len(m := match.build_table(faithful_groups, f_order, FAITHFUL_DATASET)):
        match_table = m
        put(table_dir / f"match-{FAITHFUL_DATASET}.csv", tables.to_csv(match_table).encode())

    comparison, sections = None, []
    if reference_dir is not None:
        reference = group_records(_reference_records(Path(reference_dir)))
        if not reference:
            note(f"no run records under {Path(reference_dir) / 'runs'}: nothing to check the runs against")
        comparison = compare.compare_groups(all_groups, reference)
        put(table_dir / "comparison.csv", tables.to_csv(comparison.table).encode())
        sections.append(compare.comparison_markdown(comparison))

    for ds in sorted({ds for ds, _ in code_groups}, key=lambda d: (d != "usps", d)):
        base = [ladder[0]] if ladder and (ds, ladder[0]) in all_groups else []
        frame = tables.build_table(all_groups, ds, base + sorted(lb for d, lb in code_groups if d == ds), ladder, ())
        put(table_dir / f"code-{ds}.csv", tables.to_csv(frame).encode())
        sections.append(f"## Rungs with their own code ({ds})\n\nEach a rung's own PyTorch code on the baseline "
                        "(`code` in the rung file; trained by the generic engine), compared with the baseline.\n\n"
                        + tables.markdown_table(frame))

    if match_table is not None:
        sections.append(match.markdown(match_table))

    sections += _extra_tables(extra_groups, all_groups, ladder, extra_names, table_dir, put)

    guess_table = None
    if guess_groups:
        guess_table = guesses.build_table(guess_groups, all_groups)
        put(table_dir / "guesses.csv", tables.to_csv(guess_table).encode())
        sections.append(guesses.section_markdown(guess_table))

    peer_scores = peers.argmax_scores(all_groups, results_dir, data_dir, note)  # the peers' rule, where it can be
    peer_sections = peers.write(all_groups, table_dir, put, peer_scores)
    if study:  # measurements that are not runs (results/measured/), as tables the claims read
        measured.write_tables(table_dir, put)
    sections += peer_sections

    atts, att_notes = [], []
    for ds in sorted({ds for ds, _ in factorial_groups}, key=lambda d: (d != "usps", d)):
        fac, why = attribution.find_factorial(factorial_groups, ds, ladder)
        if fac is None:
            att_notes.append(why)
            note(why)
            continue
        att = attribution.attribute(fac)
        atts.append(att)
        put(table_dir / f"factorial-{ds}.csv", tables.to_csv(att.configuration_table()).encode())
        put(table_dir / f"attribution-{ds}.csv", tables.to_csv(att.table()).encode())
        put(table_dir / f"interactions-{ds}.csv", tables.to_csv(att.interaction_table()).encode())
        if make_figures:
            for name, png in attribution_figures.make_figures(att, lambda draw: styled_png(draw, plots.STYLE)).items():
                put(figure_dir / name, png)
    att_figures = {att.dataset: {name: (figure_dir / name, caption)
                                 for name, caption in attribution_figures.captions(att.dataset).items()
                                 if (figure_dir / name).is_file()} for att in atts}
    if factorial_groups:
        sections.append(attribution_text.section_markdown(
            atts, {ds: {n: (_rel(p, text_path.parent), c) for n, (p, c) in figs.items()}
                   for ds, figs in att_figures.items()}, att_notes))

    if factorial_groups:  # the tie rule against argmax, on the collapsed runs (repro.report.tie_rule)
        ties = tie_rule.build_table(factorial_groups, results_dir, data_dir, note)
        if len(ties):
            put(table_dir / "tie-rule.csv", tables.to_csv(ties).encode())
            sections.append(tie_rule.section_markdown(ties))

    if factorial_groups:  # every collapse-based number at other collapse thresholds (repro.report.thresholds)
        threshold_table = thresholds.build_table(all_groups, ladder)
        put(table_dir / "thresholds.csv", tables.to_csv(threshold_table).encode())
        sections.append(thresholds.markdown(threshold_table))

    figures = (plots.make_figures(groups, order, ladder, results_dir, data_dir, warn=note, study=study)
               if make_figures else {})
    for name, fig in figures.items():
        put(figure_dir / name, fig.png)

    page_dir = paper_dir / "page" if study else out_dir / "page"  # the page (repro.page): nets, digits, runs
    if make_figures:
        for name, data in build_page(results_dir, ladder_root, all_groups, data_dir, note).items():
            put(page_dir / name, data)

    links = {name: (_rel(figure_dir / name, text_path.parent), fig.caption) for name, fig in figures.items()}
    md = tables.results_markdown(frames, groups, order, inputs, notes, rungs, links, faithful_frame,
                                 runs=f"{results_dir.name}/runs/",
                                 title="Results" if study else f"Report on {results_dir.name}/",
                                 sections=tuple(sections))
    put(text_path, md.encode())
    if not study:
        return Report(written, comparison)
    if summary_file is not None:
        put(Path(summary_file), summary_json(inputs.records))

    # Generated blocks inside hand-written documents: the paper's results section, the README headline and
    # the record schema in results/README.md.
    # Claims (paper/claims.toml) are checked before any document changes: a claim the re-made study no longer
    # supports stops the report, naming it (repro.report.claims).
    claims_file = paper_dir / "claims.toml"
    claim_texts = claims.evaluate(claims_file, table_dir, all_groups) if claims_file.is_file() else {}
    figs = {name: (f"figures/{name}", fig.caption) for name, fig in figures.items()} or {
        p.name: (f"figures/{p.name}", plots.CAPTIONS.get(p.name, p.name))
        for p in sorted((paper_dir / "figures").glob("*.png"), key=_figure_order)
        if not attribution_figures.is_attribution_figure(p.name)}
    blocks = [(paper_dir / "paper.md", "results", tables.paper_results_block(frames, figs)),
              (paper_dir / "paper.md", "faithful", tables.faithful_block(faithful_frame)),
              (results_dir.parent / "README.md", "headline",
               tables.headline_block(frames, order, {k: _rel(paper_dir / v, results_dir.parent)
                                                     for k, (v, _) in figs.items()},
                                     faithful_frame, MOST_LITERAL, match_table))]
    # The check's false-flag rate on every configuration it compares and its power on the ladder's, the
    # faithfulness study's and the extra rungs', resampled from the records (a minute of work: only where the
    # README asks for it).
    power_groups = {k: g for k, g in groups.items() if k[1] in ladder} | faithful_groups | extra_groups
    readme = results_dir.parent / "README.md"
    if power_groups and readme.is_file() and "<!-- report:check:start -->" in readme.read_text():
        blocks.append((readme, "check", calibration.readme_block(all_groups, power_groups)))
    if peer_sections:  # the peers' single runs beside our seeds, in the paper too
        blocks.append((paper_dir / "paper.md", "peers", "\n\n".join(
            text.replace("## ", "#### ", 1) for text in peer_sections)))
    cpu_bench = results_dir / "bench" / "cpu.json"
    if cpu_bench.is_file():
        blocks.append((readme, "speed", speed.speed_block(cpu_bench)))
    if match_table is not None:
        blocks.append((paper_dir / "paper.md", "match", match.markdown(match_table, "")))
    if guess_table is not None:
        blocks.append((paper_dir / "paper.md", "guesses", guesses.section_markdown(guess_table, "")))
    if atts:
        blocks.append((paper_dir / "paper.md", "attribution", attribution_text.paper_block(
            atts, {ds: {n: (_rel(p, paper_dir), c) for n, (p, c) in figs.items()} for ds, figs in att_figures.items()})))
    for path, name, text in blocks:
        updated = refresh_block(path, name, text)
        if updated is not None:
            put(path, updated.encode())
    for path in (paper_dir / "paper.md", results_dir.parent / "README.md"):
        if not path.is_file() or not claims.cited(path.read_text()):
            continue
        if not claims_file.is_file():
            note(f"{path.name} cites claims but there is no {claims_file}: their texts are left as they are")
        else:
            text = path.read_text()
            rendered = claims.render(text, claim_texts, path.name)
            if rendered != text:
                put(path, rendered.encode())
    schema_doc = results_dir / "README.md"
    if schema_doc.is_file():
        updated = refresh_schema_block(schema_doc.read_text())
        if updated is not None:
            put(schema_doc, updated.encode())
    return Report(written, comparison)


def _reference_records(folder: Path) -> list[dict]:
    """The reference's run records: its runs/, else (an installed package's study) its summary's runs."""
    if not (folder / "runs").is_dir() and (folder / SUMMARY_NAME).is_file():
        return read_summary(folder / SUMMARY_NAME)
    return load_records(folder, warn=lambda m: None).records


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _extra_tables(extra_groups: dict, all_groups: dict, ladder: list[str], extra_names: list[str], table_dir: Path,
                  put: Callable[[Path, bytes], None]) -> list[str]:
    """extra-<dataset>.csv per dataset with runs of the ladder's extra rungs, each against the baseline; the
    report's sections on them."""
    sections = []
    for ds in sorted({ds for ds, _ in extra_groups}, key=lambda d: (d != "usps", d)):
        base = [ladder[0]] if ladder and (ds, ladder[0]) in all_groups else []
        labels = label_order([lb for d, lb in extra_groups if d == ds], extra_names)
        frame = tables.build_table(all_groups, ds, base + labels, ladder, ())
        put(table_dir / f"extra-{ds}.csv", tables.to_csv(frame).encode())
        sections.append(f"## Extra rungs ({ds})\n\nRungs of `ablations/extra/`, each a single patch on the baseline "
                        "(the controls among them: ReLU trained by SGD at small learning rates, alone and with the "
                        "rest of the recipe), compared with the baseline.\n\n" + tables.markdown_table(frame))
    return sections


def _extra_rungs(ladder_dir: Path, note: Callable[[str], None]) -> list:
    """The ladder's extra rungs (ablations/extra/), if readable."""
    try:
        return extra_rungs(ladder_dir)
    except ConfigError as e:
        note(f"extra rungs not readable ({e}); their runs are reported with the ladder's")
        return []


def _faithful_rungs(ladder_dir: Path, note: Callable[[str], None]) -> tuple[list, list]:
    """The faithfulness ladder (ablations/faithful/, beside the main ladder) and its extra rungs, if present."""
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


def _figure_order(path: Path) -> tuple[int, str]:
    """The order make_figures gives (that of plots.CAPTIONS), so a report without figures lists the existing
    ones as a report with figures does."""
    names = list(plots.CAPTIONS)
    return (names.index(path.name) if path.name in names else len(names), path.name)


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
