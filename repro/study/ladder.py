"""The ablation ladder: one TOML file per rung under ablations/, ordered by its numeric prefix.

A rung file holds a short `name`, a `title`, a one-line `rationale`, a `source`, and a `[patch]` table of
only the config fields it changes. Rungs are cumulative: rung k = baseline + patches 1..k. Files in
subfolders (ablations/extra/, ablations/faithful/) are not in the default ladder; extras are picked by name.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro.config import Config, ConfigError, apply_patch, field_names

DEFAULT_LADDER_DIR = Path(__file__).resolve().parents[2] / "ablations"
MODES = ("cumulative", "single", "leave-one-out")
_FILE_RE = re.compile(r"^(\d+)-([\w.-]+)\.toml$")
_KEYS = {"name", "title", "rationale", "source", "patch"}


@dataclass(frozen=True)
class Rung:
    order: int
    name: str
    title: str
    rationale: str
    source: str
    patch: dict[str, Any] = field(default_factory=dict)
    path: str = ""


@dataclass(frozen=True)
class PlannedConfig:
    """One configuration to run: the label its records carry and the config it trains."""

    label: str  # rung name, or "single:<rung>" / "minus:<rung>" in the other modes
    rung: Rung
    config: Config


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
    apply_patch(Config(), patch, source=str(path))  # validates names, types and ranges now, not mid-run
    return Rung(order, raw["name"], raw["title"], raw["rationale"], raw["source"], dict(patch), str(path))


def load_rungs(directory: Path = DEFAULT_LADDER_DIR) -> list[Rung]:
    """All rung files directly in `directory`, sorted by prefix; duplicate prefixes or names are errors."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"ladder folder {directory} does not exist")
    rungs, seen = [], {}
    for path in sorted(directory.glob("*.toml")):
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
        raise ConfigError(f"{directory}: rung name(s) used twice: {sorted(dupes)}")
    if not rungs or rungs[0].patch:
        raise ConfigError(f"{directory}: the first rung must be the baseline, with an empty patch")
    return rungs


def extra_rungs(directory: Path = DEFAULT_LADDER_DIR) -> list[Rung]:
    extra = Path(directory) / "extra"
    return [read_rung(p, int(_FILE_RE.match(p.name).group(1))) for p in sorted(extra.glob("*.toml"))] if extra.is_dir() else []


def plan(rungs: list[Rung], mode: str = "cumulative", only: list[str] | None = None,
         extras: list[Rung] | None = None, base: Config = Config()) -> list[PlannedConfig]:
    """The configurations a ladder run trains. `only` selects rungs by name (ladder or extra rungs)."""
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    extras = extras or []
    by_name = {r.name: r for r in rungs + extras}
    if only:
        unknown = [n for n in only if n not in by_name]
        if unknown:
            raise ConfigError(f"unknown rung(s) {unknown}; valid rungs: {', '.join(by_name)}")
    planned = []
    if mode == "cumulative":
        cfg = base
        for r in rungs:
            cfg = apply_patch(cfg, r.patch, r.path)
            planned.append(PlannedConfig(r.name, r, cfg))
        for r in extras:  # an extra rung is a single patch on the baseline
            planned.append(PlannedConfig(r.name, r, apply_patch(base, r.patch, r.path)))
    elif mode == "single":
        planned = [PlannedConfig(rungs[0].name, rungs[0], base)]
        planned += [PlannedConfig(f"single:{r.name}", r, apply_patch(base, r.patch, r.path)) for r in rungs[1:] + extras]
    else:  # leave-one-out: the full ladder minus one patch
        for skip in rungs:
            cfg = base
            for r in rungs[1:]:
                if r is not skip:
                    cfg = apply_patch(cfg, r.patch, r.path)
            label = "full" if skip is rungs[0] else f"minus:{skip.name}"
            planned.append(PlannedConfig(label, skip, cfg))
    default = {r.name for r in rungs}
    if only:
        planned = [p for p in planned if p.rung.name in only]
    else:
        planned = [p for p in planned if p.rung.name in default]
    return planned
