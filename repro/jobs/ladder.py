"""The ablation ladder: one TOML file per rung under ablations/, ordered by its numeric prefix.

A rung file holds a short `name`, a `title`, a one-line `rationale`, a `source`, and a `[patch]` table of
only the config fields it changes. Rungs are cumulative: rung k = baseline + patches 1..k. Files in
subfolders (ablations/extra/, ablations/faithful/) are not in the default ladder; extras are picked by name.
A rung file may also name its own code, `code = "file.py"` beside it (repro.rung_code): loading the
rung runs that file, and its hooks join the configuration wherever the rung's patch is applied.

Modes of `plan` (each planned configuration carries its mode and its changes, the names of the rungs, guess
included, applied on the baseline, in the order applied; labels are the names tables show, never parsed):
- cumulative: rung k = baseline + patches 1..k (labels: the rung names).
- single: baseline + one patch (labels `single:<rung>`).
- leave-one-out: the full ladder minus one patch (labels `minus:<rung>`, and `full`).
- factorial: baseline + every subset of the changes (the rungs after the baseline, or those named in `only`):
  2^k configurations, labelled `f:<rung>+<rung>...` with the rungs in ladder order, `f:baseline` for the
  empty subset; the full subset keeps its explicit name, so labels do not change meaning when a rung is added.
  `single` and `leave-one-out` configurations are members of the factorial (same Config, same digest).
  Composition rules of the factorial:
  1. a subset's patches are applied in ladder order;
  2. no two changes may set the same config field (ConfigError otherwise), so a subset's configuration does
     not depend on the order its patches are applied in, and each field has one value per subset;
  3. a field a change does not set keeps the baseline's value: `adamw` brings its own lr (3e-4) and SGD keeps
     0.03 without it; `lr-decay` sets only the schedule, so it decays whichever optimizer's lr the subset has
     (0.03 -> 0.01 with SGD, 3e-4 -> 1e-4 with AdamW) over whichever number of passes it has (80 with `long`,
     else 23); `long` sets `passes = 80` for every subset it is in.
- guesses: the configuration of one rung (`on`, default the ladder's last) and, for each file of the ladder's
  `guesses/` folder, that configuration with the file's patch on top (labels `guess:<on>+<name>`). A guess
  file is a rung file whose patch is another reading of something the paper leaves open; the report judges
  each on training error and loss only (repro.report.guesses) and never looks at the test set to do so.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from repro.config import Config, ConfigError, apply_patch, field_names
from repro import rung_code
from repro.resources import ladder_dir

DEFAULT_LADDER_DIR = ladder_dir()
MODES = ("cumulative", "single", "leave-one-out", "factorial", "guesses")
GUESS_PREFIX = "guess:"
FACTORIAL_PREFIX = "f:"
FACTORIAL_BASELINE = "baseline"  # the name of the empty subset in its label, `f:baseline`
_FILE_RE = re.compile(r"^(\d+)-([\w.-]+)\.toml$")
_KEYS = {"name", "title", "rationale", "source", "patch", "code"}


@dataclass(frozen=True)
class Rung:
    order: int
    name: str
    title: str
    rationale: str
    source: str
    patch: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    code: str = ""  # its own code (repro.rung_code), as Config.code names it; "" for none


@dataclass(frozen=True)
class PlannedConfig:
    """One configuration to run: the label its records carry, the config it trains, the mode that planned it and
    the changes it holds (the rungs applied on the baseline, in ladder order; overrides are not rungs)."""

    label: str  # rung name, or "single:<rung>" / "minus:<rung>" / "f:<rung>+<rung>" in the other modes
    rung: Rung
    config: Config
    mode: str = "cumulative"
    changes: tuple[str, ...] = ()


def read_rung(path: Path, order: int) -> Rung:
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; a rung file has: {', '.join(sorted(_KEYS))}")
    for key in ("name", "title", "rationale", "source"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ConfigError(f"{path}: '{key}' must be a non-empty string")
    patch = raw.get("patch", {})
    if not isinstance(patch, dict):
        raise ConfigError(f"{path}: [patch] must be a table of config fields ({', '.join(field_names())})")
    if "code" in patch:
        raise ConfigError(f"{path}: name the rung's code file at the top of the file (code = \"file.py\"), not in [patch]")
    cfg = apply_patch(Config(), patch, source=str(path))  # validates names, types and ranges now, not mid-run
    code = ""
    if "code" in raw:
        if not isinstance(raw["code"], str) or not raw["code"].strip():
            raise ConfigError(f"{path}: 'code' must name a .py file beside the rung file")
        loaded = rung_code.load(path, raw["code"], raw["name"])
        rung_code.check_hooks(rung_code.with_code(cfg, loaded, str(path)))  # dry calls, before any training
        code = loaded.entry
    return Rung(order, raw["name"], raw["title"], raw["rationale"], raw["source"], dict(patch), str(path), code)


def _apply(cfg: Config, rung: Rung) -> Config:
    """`cfg` with a rung's patch and its code (a hook two rungs define is an error, see rung_code)."""
    cfg = apply_patch(cfg, rung.patch, rung.path)
    return rung_code.with_code(cfg, rung_code.get(rung.code), rung.path) if rung.code else cfg


def load_rungs(directory: Path = DEFAULT_LADDER_DIR) -> list[Rung]:
    """All rung files directly in `directory`, sorted by prefix; duplicate prefixes or names are errors."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"ladder folder {directory} does not exist")
    rungs = _read_folder(directory)
    if not rungs or rungs[0].patch or rungs[0].code:
        raise ConfigError(f"{directory}: the first rung must be the baseline, with an empty patch")
    return rungs


def extra_rungs(directory: Path = DEFAULT_LADDER_DIR) -> list[Rung]:
    return _read_folder(Path(directory) / "extra")


def guess_rungs(directory: Path = DEFAULT_LADDER_DIR) -> list[Rung]:
    """The files of the ladder's guesses/ folder (mode "guesses"), in prefix order."""
    return _read_folder(Path(directory) / "guesses")


def _read_folder(folder: Path) -> list[Rung]:
    """The rung files directly in `folder` (none if it does not exist), sorted by prefix; a badly named file,
    a prefix or a name used twice is an error."""
    rungs, seen = [], {}
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        m = _FILE_RE.match(path.name)
        if not m:
            raise ConfigError(f"{path}: rung files are named NN-name.toml (numeric prefix, then a name)")
        order = int(m.group(1))
        if order in seen:
            raise ConfigError(f"{path}: order number {order} is also used by {seen[order]}")
        seen[order] = path
        rungs.append(read_rung(path, order))
    rungs.sort(key=lambda r: r.order)
    names = [r.name for r in rungs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(f"{folder}: rung name(s) used twice: {sorted(dupes)}")
    return rungs


def guess_label(on: str, name: str) -> str:
    """`guess:paper+cyclic-h2`: guess `name` on top of rung `on`."""
    return f"{GUESS_PREFIX}{on}+{name}"


def guess_parts(label: str) -> tuple[str, str] | None:
    """(on, name) of a guess label; None for other labels."""
    if not label.startswith(GUESS_PREFIX) or "+" not in label:
        return None
    on, name = label[len(GUESS_PREFIX):].split("+", 1)
    return (on, name) if on and name else None


def plan(rungs: list[Rung], mode: str = "cumulative", only: list[str] | None = None,
         extras: list[Rung] | None = None, base: Config = Config(), guesses: list[Rung] | None = None,
         on: str | None = None) -> list[PlannedConfig]:
    """The configurations a ladder run trains. `only` selects rungs by name (ladder or extra rungs; in mode
    "guesses", guess files). `guesses` and `on` are for mode "guesses" only."""
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    if mode == "guesses":
        return _guesses(rungs, guesses or [], on, only, base)
    if on is not None:
        raise ConfigError("`on` names the rung that guesses are measured on: it is for mode 'guesses' only")
    extras = extras or []
    by_name = {r.name: r for r in rungs + extras}
    if only:
        unknown = [n for n in only if n not in by_name]
        if unknown:
            raise ConfigError(f"unknown rung(s) {unknown}; valid rungs: {', '.join(by_name)}")
    if mode == "factorial":
        return _factorial(rungs, only, extras, base)
    planned = []
    changes = [r.name for r in rungs[1:]]
    if mode == "cumulative":
        planned = _cumulative(rungs, base)
        for r in extras:  # an extra rung is a single patch on the baseline
            planned.append(PlannedConfig(r.name, r, _apply(base, r), mode, (r.name,)))
    elif mode == "single":
        planned = [PlannedConfig(rungs[0].name, rungs[0], base, mode)]
        planned += [PlannedConfig(f"single:{r.name}", r, _apply(base, r), mode, (r.name,)) for r in rungs[1:] + extras]
    else:  # leave-one-out: the full ladder minus one patch
        for skip in rungs:
            cfg = base
            for r in rungs[1:]:
                if r is not skip:
                    cfg = _apply(cfg, r)
            label = "full" if skip is rungs[0] else f"minus:{skip.name}"
            planned.append(PlannedConfig(label, skip, cfg, mode, tuple(c for c in changes if c != skip.name)))
    default = {r.name for r in rungs}
    if only:
        planned = [p for p in planned if p.rung.name in only]
    else:
        planned = [p for p in planned if p.rung.name in default]
    return planned


def _cumulative(rungs: list[Rung], base: Config) -> list[PlannedConfig]:
    """Rung k = the baseline with patches 1..k."""
    planned, cfg = [], base
    for k, r in enumerate(rungs):
        cfg = _apply(cfg, r)
        planned.append(PlannedConfig(r.name, r, cfg, "cumulative", tuple(x.name for x in rungs[1:k + 1])))
    return planned


def factorial_label(changes) -> str:
    """`f:relu+adamw` for the subset (relu, adamw) (give it in ladder order); `f:baseline` for the empty one."""
    changes = list(changes)
    return FACTORIAL_PREFIX + ("+".join(changes) if changes else FACTORIAL_BASELINE)


def _factorial(rungs: list[Rung], only: list[str] | None, extras: list[Rung], base: Config) -> list[PlannedConfig]:
    """Every subset of the changes (see the module's docstring for the rules), the empty subset first, then by
    size, then in ladder order of the changes."""
    if only:
        by_name = {r.name: r for r in rungs[1:] + extras}
        factors = [by_name[n] for n in dict.fromkeys(only) if n != rungs[0].name]
        order = {r.name: i for i, r in enumerate(rungs + extras)}
        factors.sort(key=lambda r: order[r.name])
    else:
        factors = list(rungs[1:])
    if not factors:
        raise ConfigError("factorial mode needs at least one change besides the baseline")
    setters: dict[str, str] = {}
    for r in factors:
        for key in r.patch:
            if key in setters:
                raise ConfigError(
                    f"factorial mode: rungs '{setters[key]}' and '{r.name}' both set '{key}'; a subset's "
                    "configuration would depend on the order of its patches (merge them into one rung)")
            setters[key] = r.name
    planned = []
    for size in range(len(factors) + 1):
        for subset in combinations(factors, size):
            cfg, patch = base, {}
            for r in subset:
                cfg = _apply(cfg, r)
                patch.update(r.patch)
            names = [r.name for r in subset]
            label = factorial_label(names)
            title = " + ".join([rungs[0].title] + names)
            rung = Rung(len(planned), label, title,
                        "factorial: the baseline with " + (", ".join(names) if names else "no change"),
                        "; ".join(dict.fromkeys([rungs[0].source] + [r.source for r in subset])), patch)
            planned.append(PlannedConfig(label, rung, cfg, "factorial", tuple(names)))
    return planned


def _guesses(rungs: list[Rung], guesses: list[Rung], on: str | None, only: list[str] | None,
             base: Config) -> list[PlannedConfig]:
    """Rung `on` (cumulative) and each guess's patch on top of it."""
    if not guesses:
        raise ConfigError("mode 'guesses' needs guess files (NN-name.toml) in the ladder's guesses/ folder")
    on = on or rungs[-1].name
    names = [r.name for r in rungs]
    if on not in names:
        raise ConfigError(f"unknown rung {on!r} to measure guesses on; valid rungs: {', '.join(names)}")
    if only:
        unknown = [n for n in only if n not in {g.name for g in guesses}]
        if unknown:
            raise ConfigError(f"unknown guess(es) {unknown}; valid guesses: {', '.join(g.name for g in guesses)}")
    base_rung = _cumulative(rungs, base)[names.index(on)]  # the rung itself, as the cumulative ladder trains it
    cfg = base_rung.config
    planned = [base_rung]
    for g in guesses:
        if only and g.name not in only:
            continue
        changed = _apply(cfg, g)
        if changed == cfg:
            raise ConfigError(f"{g.path}: its patch leaves rung {on!r} unchanged; a guess must change something")
        planned.append(PlannedConfig(guess_label(on, g.name), g, changed, "guesses", base_rung.changes + (g.name,)))
    return planned
