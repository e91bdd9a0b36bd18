"""A rung's own code: a Python file beside the rung's TOML (`code = "01-gelu.py"`, as in ablations/examples/extra/) that defines some of a small
set of hooks, each written as ordinary PyTorch for ONE network. Anything the file does not define stays the
rung's configuration. Only the generic engine (repro.engines.generic) runs such rungs.

Loading a file runs it (as `import` does): code is loaded only from the folder of the rung that names it,
inside the ladder folder the user names (`--ladder-dir`), never from anywhere else.

The hooks (names and arguments are checked when the rung is read, then each is called once on one example
and its output's shape checked, so a mistake stops the command before any training):

    activation(a)                        -> f(a), same shape: the hidden units' activation, elementwise
                                            (a unit's value alone; the engine may pass a layer's values
                                            laid out flat)
    forward(params, x, stock)            -> (B, 10) output pre-activations of the whole net; params: the
                                            paper-named weights of one network, x: (B, 16, 16) images;
                                            stock(params, x): the configured net (dropout included)
    loss(pre, labels)                    -> (B,) loss per pattern; pre (B, 10), labels (B,) int64
    optimizer(params, lr)                -> a torch.optim.Optimizer over the list `params` (the update rule)
    update(param, grad, state, lr, step) -> None: the update rule as a function, in place on `param`;
                                            `state` a dict kept for this tensor between steps, step 1-based
    augment(images, generator)           -> images, same shape: a pass's (N, 16, 16) inputs in presentation
                                            order (after the config's shift), on the CPU; draw only from
                                            `generator` (the member's own stream)
    init(params, generator)              -> the initial weights (same names and shapes), given the stock ones

An update rule must treat every entry of a tensor on its own (as SGD, Adam, AdamW, RMSprop do): the members
of a population are stacked along a first dimension and updated together; this is checked on a dry step.
`optimizer` and `update` are one hook (the update rule): a file defines at most one of them.

The config names the code by `code = "<file>@<sha256 prefix>"` (several, joined by ", ", when rungs are
combined), so the record and the digest identify the exact file. Two rungs that define the same hook cannot
be combined (cumulative or factorial): the error names both.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from repro.config import Config, ConfigError, apply_patch
from repro.net.model import forward, init_params, run_generator

HOOKS: dict[str, tuple[str, ...]] = {
    "activation": ("a",),
    "forward": ("params", "x", "stock"),
    "loss": ("pre", "labels"),
    "optimizer": ("params", "lr"),
    "update": ("param", "grad", "state", "lr", "step"),
    "augment": ("images", "generator"),
    "init": ("params", "generator"),
}
UPDATE_RULE = ("optimizer", "update")  # one slot: a config has one update rule
SEPARATOR = ", "
HASH_CHARS = 16  # of the sha256, in the config's `code` value (64 bits: enough to tell two files apart)


class RungCodeError(ConfigError):
    """A rung's code that cannot be used; the message names the rung, the file and the hook."""


@dataclass(frozen=True)
class LoadedCode:
    rung: str  # the rung that named the file
    path: Path
    sha256: str
    entry: str  # "<file>@<sha256 prefix>", as in Config.code
    hooks: dict[str, Callable]


_LOADED: dict[str, LoadedCode] = {}  # entry -> code, for every file loaded in this process


def _slot(hook: str) -> str:
    return "update rule (optimizer/update)" if hook in UPDATE_RULE else hook


def load(rung_file: Path, file_name: str, rung: str) -> LoadedCode:
    """Load (run) `file_name`, which must lie in the folder of `rung_file`, and check its hooks' names and
    arguments. The same file content is loaded once per process."""
    folder = Path(rung_file).resolve().parent
    where = f"rung '{rung}' ({rung_file})"
    path = (folder / file_name).resolve()
    if Path(file_name).is_absolute() or path.parent != folder or path.suffix != ".py":
        raise RungCodeError(f"{where}: code = {file_name!r} must name a .py file in the rung's own folder {folder} "
                            "(code is loaded only from the ladder folder given)")
    if not path.is_file():
        raise RungCodeError(f"{where}: code file {path} does not exist")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    entry = f"{path.name}@{sha[:HASH_CHARS]}"
    if entry in _LOADED:
        return _LOADED[entry]
    spec = importlib.util.spec_from_file_location(f"repro_rung_code_{sha[:HASH_CHARS]}", path)
    module = importlib.util.module_from_spec(spec)
    # importable by its name, as torch.compile looks a traced function's module up (the name is the content's)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - any failure of user code is reported with the rung and file
        del sys.modules[spec.name]
        raise RungCodeError(f"{where}: code file {path.name} does not load: {type(e).__name__}: {e}") from e
    hooks = {name: getattr(module, name) for name in HOOKS if hasattr(module, name)}
    if not hooks:
        raise RungCodeError(f"{where}: code file {path.name} defines none of the hooks ({', '.join(HOOKS)})")
    if all(name in hooks for name in UPDATE_RULE):
        raise RungCodeError(f"{where}: code file {path.name} defines both 'optimizer' and 'update'; an update "
                            "rule is one or the other")
    for name, fn in hooks.items():
        _check_signature(where, name, fn)
    code = LoadedCode(rung, path, sha, entry, hooks)
    _LOADED[entry] = code
    return code


def _check_signature(where: str, name: str, fn) -> None:
    want = f"{name}({', '.join(HOOKS[name])})"
    if not callable(fn):
        raise RungCodeError(f"{where}: hook '{name}' must be a function {want}; it is a {type(fn).__name__}")
    try:
        inspect.signature(fn).bind(*HOOKS[name])
    except TypeError:
        raise RungCodeError(f"{where}: hook '{name}' must take the arguments {want}; it is defined as "
                            f"{name}{inspect.signature(fn)}") from None
    except ValueError:  # a builtin without a signature: accept, the dry call checks it
        pass


def entries(cfg: Config) -> list[str]:
    return [e for e in cfg.code.split(SEPARATOR) if e] if cfg.code else []


def with_code(cfg: Config, code: LoadedCode, source: str) -> Config:
    """`cfg` with `code` added to the code it already has; a hook defined by both is an error naming both."""
    for entry in entries(cfg):
        other = get(entry)
        clash = {_slot(h) for h in other.hooks} & {_slot(h) for h in code.hooks}
        if clash:
            raise RungCodeError(f"rungs '{other.rung}' ({other.path.name}) and '{code.rung}' ({code.path.name}) both "
                                f"define the hook(s) {', '.join(sorted(clash))}: they cannot be combined (merge them "
                                "into one rung)")
    if code.entry in entries(cfg):
        return cfg
    return apply_patch(cfg, {"code": SEPARATOR.join(entries(cfg) + [code.entry])}, source)


def get(entry: str) -> LoadedCode:
    """The loaded code of a Config.code entry."""
    if entry not in _LOADED:
        raise RungCodeError(f"config code {entry!r} is not loaded in this process: code is loaded with its rung "
                            "from a ladder folder (repro ablate --ladder-dir DIR, api.rung_config(..., ladder_dir=DIR))")
    return _LOADED[entry]


def hooks_for(cfg: Config) -> dict[str, Callable]:
    """Every hook of cfg's code ({} for a config without code)."""
    hooks: dict[str, Callable] = {}
    for entry in entries(cfg):
        hooks.update(get(entry).hooks)
    return hooks


def rung_of(cfg: Config, hook: str) -> str:
    """'rung <name> (<file>)' that defines `hook` in cfg's code, for messages."""
    for entry in entries(cfg):
        code = get(entry)
        if hook in code.hooks:
            return f"rung '{code.rung}' ({code.path.name})"
    return "config"


# --- dry calls: each hook once on one example, before any training -------------------------------------

def check_hooks(cfg: Config, hooks: dict[str, Callable] | None = None) -> None:
    """Call each hook of cfg's code once on one example and check what it returns (RungCodeError naming the
    rung and the hook otherwise)."""
    hooks = hooks_for(cfg) if hooks is None else hooks
    params = init_params(cfg, run_generator(0))
    x = torch.zeros(1, 16, 16).uniform_(-1.0, 1.0, generator=run_generator(1))
    checks = {
        "activation": lambda f: _same_shape(f(torch.linspace(-3, 3, 64).view(1, 4, 4, 4)), (1, 4, 4, 4)),
        "forward": lambda f: _same_shape(f({k: v.clone() for k, v in params.items()}, x,
                                           lambda p, xx: forward(p, xx, cfg)), (1, 10)),
        "loss": lambda f: _same_shape(f(torch.zeros(1, 10), torch.tensor([3])), (1,)),
        "augment": lambda f: _same_shape(f(x.clone(), run_generator(2)), (1, 16, 16)),
        "init": lambda f: _check_init(f({k: v.clone() for k, v in params.items()}, run_generator(3)), params),
        "optimizer": _check_optimizer,
        "update": _check_update,
    }
    for name, fn in hooks.items():
        try:
            checks[name](fn)
        except RungCodeError as e:
            raise RungCodeError(f"{rung_of(cfg, name)}: hook '{name}': {e}") from None
        except Exception as e:  # noqa: BLE001 - a failing dry call is the user's code failing: say where
            raise RungCodeError(f"{rung_of(cfg, name)}: hook '{name}' fails on one example: "
                                f"{type(e).__name__}: {e}") from e


def _same_shape(out, shape: tuple[int, ...]) -> None:
    if not isinstance(out, torch.Tensor):
        raise RungCodeError(f"must return a tensor of shape {shape}, returned {type(out).__name__}")
    if tuple(out.shape) != shape:
        raise RungCodeError(f"returned shape {tuple(out.shape)} where {shape} is needed")


def _check_init(out, params: dict[str, torch.Tensor]) -> None:
    if not isinstance(out, dict) or set(out) != set(params):
        raise RungCodeError(f"must return a dict with the keys {sorted(params)}")
    for k, v in params.items():
        if not isinstance(out[k], torch.Tensor) or out[k].shape != v.shape:
            raise RungCodeError(f"returned {k} of shape {tuple(getattr(out[k], 'shape', ()))} where "
                                f"{tuple(v.shape)} is needed")


def _dry_steps(step: Callable[[torch.Tensor, torch.Tensor, int], None], members: int) -> torch.Tensor:
    """Two update steps on `members` stacked copies of a small tensor (fixed gradients); returns it."""
    gen = torch.Generator().manual_seed(0)
    w0, g0 = torch.randn(1, 2, 3, generator=gen), torch.randn(2, 2, 3, generator=gen)
    w = w0.expand(members, 2, 3).clone()
    for t in (1, 2):
        step(w, g0[t - 1].expand(members, 2, 3).clone() * torch.arange(1, members + 1).view(-1, 1, 1), t)
    return w


def _elementwise(step_on: Callable[[int], torch.Tensor]) -> None:
    one, three = step_on(1), step_on(3)
    if tuple(three.shape) != (3, 2, 3):
        raise RungCodeError("changed the shape of the parameter it updates")
    if not torch.equal(one[0], three[0]):
        raise RungCodeError("must update every entry of a tensor on its own (as SGD, Adam, AdamW, RMSprop do): "
                            "on a dry step a member's update depended on the other members stacked with it")


def _check_optimizer(fn) -> None:
    def step_on(members: int) -> torch.Tensor:
        holder = {}

        def step(w, g, t):
            if "opt" not in holder:
                holder["p"] = w.clone().requires_grad_()
                holder["opt"] = fn([holder["p"]], 0.1)
                if not isinstance(holder["opt"], torch.optim.Optimizer):
                    raise RungCodeError(f"must return a torch.optim.Optimizer, returned {type(holder['opt']).__name__}")
            holder["p"].grad = g
            holder["opt"].step()
            w.copy_(holder["p"].detach())

        return _dry_steps(step, members)

    _elementwise(step_on)


def _check_update(fn) -> None:
    def step_on(members: int) -> torch.Tensor:
        state: dict = {}

        def step(w, g, t):
            with torch.no_grad():
                fn(w, g, state, 0.1, t)

        return _dry_steps(step, members)

    _elementwise(step_on)

