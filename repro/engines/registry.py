"""Which engine trains a config: one protocol every engine is declared by, and the one choice rule.

    reference   the plain per-example loop (the oracle); one run per seed
    population  all seeds in lockstep with batched torch ops; every config, every device (the fallback)
    fused       the Triton kernel (population.Population's API); CUDA, or Triton's CPU interpreter for checks;
                groups a job's configurations into one launch per pass
    native      the C engine (repro.engines.native.engine; optional: unavailable when missing or not built);
                trains configurations side by side, one CPU thread each
    generic     all seeds in lockstep through autograd (repro.engines.generic): the one engine that runs a rung's
                own code (Config.code), which no other engine can know; stock configs too, but SDLM
    generic-eager  the same step op by op, uncompiled: what `generic` falls back to (with a message naming the
                hook and the reason) when a step cannot be compiled. A name of its own, not an option, so that
                bench measures both side by side and a user can rule the compiler out with --engine.

An engine is declared once, in ENGINES: its name, its module, the devices it trains on (and those it runs on
only to check its kernel), how its population class is made, and its traits. Each engine module answers
`supports(cfg) -> str | None` and `available(device) -> str | None` (None: yes; otherwise the reason). Nothing
outside this module compares an engine's name: callers ask an Engine for its traits.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

import torch

from repro.config import Config
from repro.errors import ReproError

AUTO = "auto"


@dataclass(frozen=True)
class Engine:
    name: str
    module: str  # the engine's module, imported when first asked
    devices: tuple[str, ...] | None  # device types it trains on; None: wherever torch runs
    # how its population class is made from its module (cls(cfg, seeds, x_train, y_train, device=device));
    # None: it trains one seed at a time (reference.train_reference)
    make: Callable[[ModuleType, Config], type] | None = None
    checks_on: tuple[str, ...] = ()  # device types it runs on only to check its kernel, far slower than others
    checks_in: str = ""  # what runs it there (named in messages)
    auto_on: tuple[str, ...] = ()  # device types where `--engine auto` picks it first
    side_by_side: bool = False  # configurations train side by side, each population on its own CPU thread
    grouped: bool = False  # a job's configurations train together, one launch per pass (the module's FusedGroup)
    runs_code: bool = False  # runs a rung's own code (Config.code)
    fallback: bool = False  # trains what the engine asked for cannot

    @property
    def lockstep(self) -> bool:
        """True: trains a population (train_pass, evaluate, member_params, state_dict); False: one seed at a
        time (reference.train_reference)."""
        return self.make is not None

    def _load(self) -> ModuleType:
        return importlib.import_module(self.module)

    def available(self, device: torch.device | str) -> str | None:
        """Why this engine cannot run on `device` here, or None."""
        device = torch.device(device)
        if self.devices is not None and device.type not in self.devices + self.checks_on:
            return f"the {self.name} engine runs on {' or '.join(self.devices)}, not on {device.type}"
        try:
            mod = self._load()
        except ImportError as err:
            return f"the {self.name} engine is not installed ({err})"
        return mod.available(device)

    def only_checks_on(self, device: torch.device | str) -> bool:
        """Whether it runs on `device` only to check its kernel (slow: not for training or for speed)."""
        return torch.device(device).type in self.checks_on

    def supports(self, cfg: Config) -> str | None:
        """Why this engine cannot train `cfg`, or None."""
        try:
            mod = self._load()
        except ImportError as err:
            return f"the {self.name} engine is not installed ({err})"
        return mod.supports(cfg)

    def population_class(self, cfg: Config) -> type:
        """The class to build as cls(cfg, seeds, x_train, y_train, device=device)."""
        if self.make is None:
            raise TypeError(f"the {self.name} engine trains one seed at a time: call reference.train_reference")
        return self.make(self._load(), cfg)

    def group_class(self) -> type:
        """The class that trains several of this engine's populations in one launch per pass."""
        if not self.grouped:
            raise TypeError(f"the {self.name} engine does not group configurations into one launch")
        return self._load().FusedGroup

    def thread_options(self, threads: int | None) -> dict:
        """The constructor argument that puts a population on `threads` CPU threads (None: torch's)."""
        return {"threads": threads} if self.side_by_side and threads else {}


ENGINES = {e.name: e for e in (
    Engine("reference", "repro.engines.reference", devices=None),
    Engine("population", "repro.engines.population", devices=None,
           make=lambda mod, cfg: mod.population_class(cfg.architecture), fallback=True),
    Engine("fused", "repro.engines.fused.population", devices=("cuda",), checks_on=("cpu",),
           checks_in="Triton's interpreter", auto_on=("cuda",), make=lambda mod, cfg: mod.FusedPopulation,
           grouped=True),
    Engine("native", "repro.engines.native.engine", devices=("cpu",), auto_on=("cpu",),
           make=lambda mod, cfg: mod.NativePopulation, side_by_side=True),
    # Not side by side: a generic step holds Python's lock most of the time, and two compiled populations side
    # by side trained 17,400-18,000 member-steps/s against 21,500-22,000 one after another on 2 threads (16
    # members, a quiet 2-core AVX-512 Xeon; bench's side_by_side_steps_per_s measures it).
    Engine("generic", "repro.engines.generic", devices=None,
           make=lambda mod, cfg: mod.generic_class(cfg.architecture, compiled=True), runs_code=True),
    Engine("generic-eager", "repro.engines.generic", devices=None,
           make=lambda mod, cfg: mod.generic_class(cfg.architecture, compiled=False), runs_code=True),
)}
NAMES = tuple(ENGINES)
(FALLBACK,) = (e for e in ENGINES.values() if e.fallback)
CODE_RUNNER = next(e for e in ENGINES.values() if e.runs_code)  # the first that runs code: `auto`'s choice


class EngineError(ReproError, ValueError):
    """An unknown engine name, or an engine asked for by name that cannot run on this machine."""


def get(name: str) -> Engine:
    if name not in ENGINES:
        raise EngineError(f"unknown engine {name!r}; valid: {AUTO}, {', '.join(NAMES)}")
    return ENGINES[name]


def first_choice(device: torch.device | str) -> Engine:
    """The engine `--engine auto` tries first on `device` (the fallback where none is declared for it)."""
    kind = torch.device(device).type
    return next((e for e in ENGINES.values() if kind in e.auto_on), FALLBACK)


def _fallback_note(first: Engine, why: str) -> str | None:
    """Why `first` cannot run here and what the fallback costs, where its module says (`fallback_note`: the
    native engine, whose kernel a machine without a compiler cannot build); None for the others."""
    say = getattr(first._load(), "fallback_note", None)
    return say(why) if say else None


def choose(name: str, cfg: Config, device: torch.device | str) -> tuple[Engine, str | None]:
    """The engine that trains `cfg` on `device` when `name` is asked for, and a note saying why it is not
    the one asked for (None when it is, when "auto" took its first choice, or when it found the fused engine
    unavailable; where the native kernel cannot be built, the note says why and what the fallback costs).

    A config with code (a rung's own hooks) always gets the engine that runs code.
    "auto": the device's first choice (first_choice) when available and it supports cfg, otherwise the
    fallback. An engine named explicitly that does not support cfg falls back too (a ladder mixes configs);
    one that is not available on this machine is an EngineError.
    """
    device = torch.device(device)
    if cfg.code:  # a rung's own code: only the engines that run code can
        runner = get(name) if name != AUTO and get(name).runs_code else CODE_RUNNER
        if why := runner.supports(cfg):
            raise EngineError(f"config with code {cfg.code}: {why}")
        note = (None if name in (AUTO, runner.name) else
                f"--engine {name} cannot run a rung's own code; running it on the {runner.name} engine")
        return runner, note
    if name == AUTO:
        first = first_choice(device)
        if why := first.available(device):  # e.g. the native kernel cannot be built: why, and the cost
            return FALLBACK, _fallback_note(first, why)
        if why := first.supports(cfg):
            return FALLBACK, f"{why}; running it on the {FALLBACK.name} engine"
        return first, None
    engine = get(name)
    if why := engine.available(device):
        raise EngineError(f"--engine {name}: {why}")
    if why := engine.supports(cfg):
        return FALLBACK, f"{why}; running it on the {FALLBACK.name} engine"
    return engine, None
