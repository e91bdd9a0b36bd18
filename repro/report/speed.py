"""The README's speed table, generated from a bench file (`repro bench --study` writes results/bench/<device>.json):
per engine the member-steps per second at each population size with its ratio against the reference loop
measured in the same run, the 23-pass run, each rung's rate and share of the CPU's multiply-add peak, and the
`ablate --all` time with the machine it was measured on."""

from __future__ import annotations

import json
from pathlib import Path


def _rate(row: dict, first: str | None) -> str:
    text = f"{row['steps_per_s']:,.0f} ({row['ratio']:.0f}x"
    if first and f"x_{first}" in row:
        text += f"; {row[f'x_{first}']:.1f}x {first}"
    return text + ")"


def _fastest_of(result: dict) -> str:
    n = len(result.get("reference_measurements", []))  # bench files before it hold one measurement
    return f" (the fastest of {n} measurements, one before and one after each engine)" if n > 1 else ""


def speed_block(bench_file: Path) -> str:
    result = json.loads(Path(bench_file).read_text())
    engines = result["engines"]
    sizes = sorted({r["members"] for e in engines.values() for r in e["populations"]})
    first = next(iter(engines), None)
    lines = [f"Measured by `repro bench --study` on {result['device']} "
             f"(`{Path(bench_file).parent.name}/{Path(bench_file).name}`), member-steps per second (members x "
             f"presentations / s) with the ratio against the reference loop measured in the same run:", "",
             "| engine | " + " | ".join(f"{m} member{'s' if m != 1 else ''}" for m in sizes) + " | one 23-pass run |",
             "|---|" + "--:|" * (len(sizes) + 1),
             f"| reference loop{_fastest_of(result)} | {result['reference_steps_per_s']:,.0f} steps/s |"
             + " |" * len(sizes)]
    for name, e in engines.items():
        by_size = {r["members"]: r for r in e["populations"]}
        cells = [_rate(by_size[m], first if name != first else None) if m in by_size else "" for m in sizes]
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {e['single_run_s']:.1f} s |")
    lines += _first_pass_lines(engines)
    peak = result.get("multiply_add_peak")
    rungs = result.get("rungs") or {}
    if rungs:
        side = max(fig.get("side_by_side", 1) for fig in rungs.values())
        how = (f", trained side by side as `ablate` trains them (one population per thread: each measured on one "
               f"thread, times {side} threads)" if side > 1 else "")
        eval_share = peak and all("eval_of_peak" in fig for fig in rungs.values())  # bench files before it lack it
        settled = sorted({fig["settled_from_step"] for fig in rungs.values() if "settled_from_step" in fig})
        parts = (f"; a run's rate, where its first {', '.join(f'{t - 1:,}' for t in settled)} steps cost more "
                 f"(AdamW's bias correction not yet rounded to 1) and were timed apart" if settled else "")
        of_peak = (f"; share of the multiply-add peak, {peak['member_steps_per_s']:,.0f} member-steps/s "
                   f"({peak['how']})" if peak else "")
        if eval_share:
            of_peak += "; evaluation's: its forward passes' multiply-adds a second against the same peak"
        lines += ["", f"Each rung of the ladder at 16 members (one mechanism each), training and one evaluation of "
                      f"both splits{how}{parts}{of_peak}:", "",
                  "| rung | engine | member-steps/s | evaluation s/pass |" + (" of peak |" if peak else "")
                  + (" evaluation, of peak |" if eval_share else ""),
                  "|---|---|--:|--:|" + ("--:|" if peak else "") + ("--:|" if eval_share else "")]
        for label, fig in rungs.items():
            lines.append(f"| `{label}` | {fig['engine']} | {fig['steps_per_s']:,.0f} | {fig['eval_s_per_pass']:.2f} |"
                         + (f" {100 * fig['of_peak']:.0f}% |" if peak else "")
                         + (f" {100 * fig['eval_of_peak']:.0f}% |" if eval_share else ""))
    ab = result["ablate_all"]
    lines += ["", f"`repro ablate --all --seeds 16` ({ab['presentations']:,} presentations, evaluation after every "
                  f"pass): **{ab['seconds']:,.0f} s ({ab['seconds'] / 60:.1f} min), "
                  f"{'estimated from the figures above' if ab['estimated'] else 'measured end to end'}** on "
                  f"{result['device']}."]
    lines += _cluster_lines(result.get("cluster_vs_default"))
    return "\n".join(lines)


def _first_pass_lines(engines: dict) -> list[str]:
    """Engines whose first pass costs more (compiling, or loading the compile cache), and those whose rate side
    by side (two populations on two threads) the bench measured apart."""
    out = []
    for name, e in engines.items():
        slow = [(r["members"], r["compile_s"]) for r in e["populations"] if (r.get("compile_s") or 0) >= 1]
        side = [(r["members"], r["side_by_side_steps_per_s"]) for r in e["populations"]
                if r.get("side_by_side_steps_per_s")]
        if slow:
            out.append(f"- `{name}`: its first pass takes longer, by " + ", ".join(
                f"{s:.1f} s at {m} member{'s' if m != 1 else ''}" for m, s in slow)
                + " (compiling, or loading the compile cache; not in the rates above)")
        if side:
            out.append(f"- `{name}`, two populations side by side (one per thread): " + ", ".join(
                f"{rate:,.0f} member-steps/s at {m} members" for m, rate in side))
    return [""] + out if out else []


def _cluster_lines(cluster: dict | None) -> list[str]:
    """The cluster's time against the default runner's (`repro bench --cluster`), measured in the same run."""
    if not cluster:
        return []
    rungs = "every rung" if len(cluster["rungs"]) > 1 else f"`{cluster['rungs'][0]}`"
    default, through = min(cluster["default_s"]), min(cluster["cluster_s"])
    return ["", f"`repro ablate` ({rungs}, {' and '.join(cluster['datasets'])}, {cluster['seeds']} seeds) through "
                f"`--cluster {cluster['cluster']}`: **{through:,.0f} s against the default runner's {default:,.0f} s "
                f"(x{through / default:.2f})**, best of {len(cluster['cluster_s'])} each, alternating, in the same "
                f"run; records {'equal' if cluster['records_equal'] else 'NOT equal'} to the default runner's."]
