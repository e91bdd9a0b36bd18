"""The attribution's text: definitions, then per dataset the collapse game, the stable game and the mixture
(repro.report.attribution computes them; see its docstring for the games and the intervals)."""

from __future__ import annotations

import math

from repro.net.collapse import COLLAPSE_TRAIN_ERROR
from repro.report import fmt
from repro.report.attribution import (
    INTERVAL_TEXT, STABLE_FIXED, TOP_INTERACTIONS, Attribution, Estimate, Factorial, Game, estimate_text)
from repro.report.stats import summarize


def _cell(e: Estimate | None) -> str:
    if e is None:
        return ""
    text = estimate_text(e)
    return f"**{text}**" if e.significant else text


def definitions_markdown() -> str:
    """How to read the attribution tables (once per report)."""
    return "\n".join([
        "A factorial run (`repro ablate --mode factorial`) trains the baseline with every subset of the ladder's "
        "changes; each subset's patches are applied in ladder order, and a change brings only its own settings "
        "(in the study's ladder: AdamW's lr 3e-4 only with `adamw`; `lr-decay` decays whichever lr and number of "
        "passes the subset has; 80 passes with `long`). The `single` and `leave-one-out` configurations are "
        "members of the factorial (same configuration, same digest): their columns below are computed from the "
        "factorial's records.",
        "",
        f"A run *collapsed* when it diverged or ended above {100 * COLLAPSE_TRAIN_ERROR:.0f}% training error "
        "(`repro/net/collapse.py`). Collapses are an outcome of their own, so each change is measured in three "
        "games on the lattice of configurations: (1) the *collapse* game, the share of runs that collapse, over "
        f"all configurations; (2) the *stable* game, the mean test error of the runs that did not collapse, on "
        f"the sub-lattice with `{STABLE_FIXED}` on (the game over the other changes; collapses come from ReLU "
        "trained by SGD); (3) the *mixture*, the mean test error over collapsed and stable runs, which "
        "mostly reflects how a change moves the odds of a collapse and how badly collapsed runs score.",
        "",
        "Every effect is what adding a change does, in percentage points (negative: lower). *Shapley value*: the "
        "change's step averaged over all orders of adding the changes; the Shapley values sum exactly to full "
        "minus base. *Alone*: baseline + the change minus baseline (the `single` mode). *Last*: full recipe minus "
        "the full recipe without the change (the `leave-one-out` mode, sign turned so that it reads as adding). "
        "*Ladder step*: the step in the cumulative ladder's order. *Interaction* of a pair: the Shapley "
        "interaction index, the effect of adding both beyond the sum of adding each, averaged over the subsets of "
        "the other changes with the weights of random orders (negative: together they lower the quantity more "
        f"than their separate effects add up to). Intervals: {INTERVAL_TEXT}.",
    ])


def _effects_table(game: Game, unit: str) -> list[str]:
    steps = game.effects and game.effects[0].alone is not None
    if steps:
        out = [f"| change | Shapley value, {unit} | alone (`single`) | last (`leave-one-out`) | ladder step |",
               "|---|--:|--:|--:|--:|"]
        out += [f"| `{e.change}` | {_cell(e.shapley)} | {_cell(e.alone)} | {_cell(e.last)} | {_cell(e.ladder_step)} |"
                for e in game.effects]
        out.append(f"| sum | {_sum(e.shapley for e in game.effects)} (= full − base, "
                   f"{fmt.num(game.full - game.base, sign=True)}) | | | {_sum(e.ladder_step for e in game.effects)} |")
    else:
        out = [f"| change | Shapley value, {unit} |", "|---|--:|"]
        out += [f"| `{e.change}` | {_cell(e.shapley)} |" for e in game.effects]
        out.append(f"| sum | {_sum(e.shapley for e in game.effects)} (= full − base, "
                   f"{fmt.num(game.full - game.base, sign=True)}) |")
    return out + [""]


def _sum(estimates) -> str:
    """The sum of the estimates' values, signed (a sum that is 0 up to rounding is written +0.00)."""
    return fmt.num(math.fsum(e.value for e in estimates), sign=True)


def _interactions(game: Game, unit: str) -> list[str]:
    if not game.interactions:
        return []
    top = game.interactions[:TOP_INTERACTIONS]
    out = [f"Largest pairwise interactions ({len(top)} of {len(game.interactions)}; Shapley interaction index, "
           f"{unit} [95% CI]):", "", "| pair | interaction |", "|---|--:|"]
    return out + [f"| `{it.a}` × `{it.b}` | {_cell(it.index)} |" for it in top] + [""]


def _collapse_section(att: Attribution, heading: str) -> list[str]:
    game, fac = att.collapse, att.factorial
    k, runs = fac.collapse_counts()
    where = [f"`{lb}` {int(c)}/{int(n)}" for lb, c, n in zip(fac.labels, k, runs) if c]
    out = [f"{heading} Collapses", "",
           f"{int(k.sum()):,} of {int(runs.sum()):,} runs collapsed, in {len(where)} of {len(fac.labels)} "
           "configurations" + (f": {', '.join(where)}" if where else "") + ". Shapley values of the collapse "
           "share (percentage points of runs collapsing) [95% CI]; alone, last and ladder step, each the difference "
           "of two configurations' shares, with Newcombe's score interval and Fisher's exact test (a t interval "
           "would shrink to the point where both shares are 0 or 1):", ""]
    return out + _effects_table(game, "pp of runs") + _interactions(game, "pp of runs")


def _paired_text(game) -> str:
    """How a game's intervals treat the shared seeds."""
    if math.isnan(game.seed_corr):
        return "; configurations treated as independent samples"
    return ("; every configuration ran the same seeds, so each contrast is computed per seed and its t interval "
            f"taken over the seeds (mean correlation between two configurations' errors over seeds: "
            f"{game.seed_corr:+.2f})")


def _stable_section(att: Attribution, heading: str) -> list[str]:
    game = att.stable
    if game is None:
        return [f"{heading} Test error without collapses", "", *[f"- {n}" for n in att.notes], ""]
    fac = att.factorial
    runs = sum(len(fac.stable_errors()[fac.labels.index(lb)]) for lb in game.labels)
    inside = (f"{game.collapsed_inside} run(s) there collapsed and are left out" if game.collapsed_inside
              else "no run there collapsed")
    out = [f"{heading} Test error without collapses (`{'`, `'.join(game.fixed)}` on)", "",
           f"The {len(game.labels)} configurations with `{'`, `'.join(game.fixed)}` on ({inside}; {runs:,} runs): "
           f"the game over {', '.join(f'`{c}`' for c in game.players)}, from `{game.labels[0]}` "
           f"({game.base:.2f}%) to `{game.labels[-1]}` ({game.full:.2f}%). Shapley values of the mean test error "
           "of the runs that did not collapse, pp [95% CI]" + _paired_text(game) + ":", ""]
    return out + _effects_table(game, "pp") + _interactions(game, "pp")


def _mixture_section(att: Attribution, heading: str) -> list[str]:
    fac = att.factorial
    base, full = summarize(fac.errors[0]), summarize(fac.errors[-1])
    runs, div = sum(len(e) for e in fac.errors), sum(fac.diverged)
    out = [f"{heading} Mean over collapsed and stable runs (the mixture)", "",
           f"`{fac.labels[0]}` scores {fmt.mean_std(base.mean, base.std)}% test error and the full recipe "
           f"`{fac.labels[-1]}` {fmt.mean_std(full.mean, full.std)}%, a change of {att.full - att.baseline:+.2f} pp "
           f"({len(fac.errors)} configurations, {runs:,} finished runs"
           + (f", {div} diverged and left out: {_diverged(fac)}" if div else ", none diverged")
           + "). These values mix the collapse odds with the error of stable runs; they are kept for comparison "
           "with the games above, pp [95% CI]" + _paired_text(att.mixture_game) + ":", ""]
    out += _effects_table(att.mixture_game, "pp") + _interactions(att.mixture_game, "pp")
    out += ["Where the ladder's order changes a conclusion in the mixture (ladder step against Shapley value):", ""]
    out += [f"- {c}" for c in att.conflicts] or [
        "- nowhere: every change's ladder step has the sign of its Shapley value, and both agree on significance."]
    return out + [""]


def dataset_markdown(att: Attribution, figures: dict[str, tuple[str, str]], heading: str = "###") -> str:
    """The attribution of one dataset: the three games, where the ladder's order misleads, and the figures
    (file name -> (link, caption))."""
    sub = heading + "#"
    out = [f"{heading} {att.dataset}", ""]
    out += _collapse_section(att, sub) + _stable_section(att, sub) + _mixture_section(att, sub)
    for link, caption in figures.values():
        out += [f"![{caption}]({link})", ""]
    return "\n".join(out)


def _diverged(fac: Factorial) -> str:
    return ", ".join(f"`{lb}` {d}" for lb, d in zip(fac.labels, fac.diverged) if d)


def section_markdown(atts: list[Attribution], figures: dict[str, dict[str, tuple[str, str]]],
                     notes: list[str]) -> str:
    """The report's section: definitions, then each dataset (figures: dataset -> its figures), then the notes
    on factorials that could not be analysed."""
    out = ["## What each change buys, whatever the order (factorial)", "", definitions_markdown(), ""]
    for att in atts:
        out += [dataset_markdown(att, figures.get(att.dataset, {})), ""]
    out += [f"- {n}" for n in notes]
    return "\n".join(out).rstrip() + "\n"


def paper_block(atts: list[Attribution], figures: dict[str, dict[str, tuple[str, str]]]) -> str:
    """The generated block of paper.md: the same tables, with the figures captioned as the paper's are."""
    out = [definitions_markdown(), ""]
    for att in atts:
        figs = figures.get(att.dataset, {})
        out += [dataset_markdown(att, {}, heading="####")]
        for link, caption in figs.values():
            out += [f"![{caption}]({link})", "", f"*{caption}*", ""]
    return "\n".join(out)
