"""Generic engine: all seeds of a config in lockstep through autograd, so that a rung's own code
(repro.rung_code: activation, whole-net forward, loss, update rule, augmentation, initialisation) trains
like any other rung. The registry picks it for every config with code; it also trains stock configs.

It is the population engine with autograd in place of the hand-written backward: the members' weights are
stacked in the population's flat buffer and layout, the forward is the population's batched forward
(`Population._forward`, whose ops keep a member's numbers independent of its neighbours), and the gradient
of the summed member losses gives every member's own gradient (a member's loss depends on its weights
alone): by `torch.func.grad`, compiled into one graph with the H2 mask (repro.engines.generic_compile; the
`generic` engine), or by `torch.autograd.grad` op by op (`generic-eager`, and the fallback when a hook cannot
be compiled). The update runs eagerly either way, on the per-tensor gradients (SGD: the flat rule's op on each
tensor; AdamW: the flat rule on them laid out flat; the hooks' rules: per tensor). Generators, initial
weights, shifted images and per-pass draws are the population's, so a member's record does not depend on its
neighbours and equals the reference loop's on the stock net.

Hooks, each written for one network, run through `torch.func.vmap` over the members (so code that mixes
units, a mean over a layer say, still sees one network). The whole-net `forward` hook gets the paper-named
weights of one network; they are views of the engine layout built by differentiable ops each step.
Why not vmap(grad) of the whole step: measured slower than the batched forward with one autograd call.
SDLM needs each step's curvature, which autograd does not give: it is refused.
"""

from __future__ import annotations

import torch
from torch.func import vmap

from repro.config import Config
from repro.optim import SGD
from repro.engines.population import population_class
from repro.engines.population.layers import one_blas_thread
from repro.engines.population.lockstep import ENGINE_FROM_REFERENCE_192, PAD
from repro.net import activations
from repro.net.model import forward as stock_forward, h2_scheme, loss_per_example, outputs, pad_background
from repro import rung_code
from repro.engines import generic_compile

_REFERENCE_FROM_ENGINE_192 = torch.argsort(ENGINE_FROM_REFERENCE_192)


def supports(cfg: Config) -> str | None:
    if cfg.optimizer == "sdlm" and "optimizer" not in (hooks := _hooks(cfg)) and "update" not in hooks:
        return "the generic engine does not implement SDLM (each step's curvature is not an autograd gradient)"
    return None


def available(device: torch.device) -> str | None:
    return None


def _hooks(cfg: Config) -> dict:
    return rung_code.hooks_for(cfg)


class _Autograd:
    """Mixed into Population (1989 net) or FCPopulation (fc40): the step by autograd, and the hooks."""

    ENGINE = "generic"
    COMPILED = True  # the step compiled (generic_compile); False: the eager step, autograd op by op

    def __init__(self, cfg: Config, seeds: list[int], x_train: torch.Tensor, y_train: torch.Tensor, device="cpu"):
        if why := supports(cfg):
            raise ValueError(why)
        self.hooks = _hooks(cfg)
        rung_code.check_hooks(cfg, self.hooks)  # once more, with the configuration it trains
        super().__init__(cfg, seeds, x_train, y_train, device=device)
        self.curv = self.w_sq = None
        # one leaf per tensor, sharing the flat buffer's storage (leaves that were views of one flat leaf would
        # each have their gradient scattered into a zeroed copy of the whole buffer: measured, most of a step)
        self._leaf_views = {k: v.detach().requires_grad_() for k, v in self.params.views.items()}
        # the shifted-image table (`augment` replaces self.images for a pass), its row count symbolic in the
        # compiled step
        self._table = self.images = generic_compile.table_rows_vary(self.images)
        if "activation" in self.hooks:
            self.hidden = activations.Activation("hook", _aligned(vmap(self.hooks["activation"])), None, None)
        if "init" in self.hooks:
            for m, gen in enumerate(self.generators):  # after the stock draws, from the member's own stream
                params = self.hooks["init"](self.member_params(m), gen)
                for k, v in self._to_engine(params).items():
                    self.params.views[k][m] = v.to(self.device)
        if "optimizer" in self.hooks:
            self.optimizer = _TorchOptim(self.hooks["optimizer"], self.params.views, cfg.lr)
        elif "update" in self.hooks:
            self.optimizer = _UpdateFunction(self.hooks["update"], self.params.views)
        # Compiled in float32 only, the dtype the package trains in: a process that compiled a float32 step and
        # then ran one in float64 (the tests' oracle runs) crashed inside the compiled code (torch 2.13, CPU);
        # a float64 population takes the eager step, which the compiled one is tested against.
        compiled = self.COMPILED and self.params.flat.dtype == torch.float32
        self._compiled = generic_compile.compile_step(self._traced_step) if compiled else None

    # --- one pass ------------------------------------------------------------------------------------
    def _pass_inputs(self):
        """As the population's, with each step's column (rows[:, i] (P,), scale[:, i] (P, 192)) contiguous:
        the compiled step takes contiguous inputs, so that it does not depend on the training set's size."""
        rows, scale = self._augmented(*super()._pass_inputs())
        return _step_major(rows), None if scale is None else _step_major(scale)

    def _augmented(self, rows: torch.Tensor, scale: torch.Tensor | None):
        if "augment" not in self.hooks:
            return rows, scale
        # each member's pass of images through the hook with its own generator (after the pass's own draws),
        # then laid out so that member m's pattern i is row m*N + i
        N, fn = self.n_train, self.hooks["augment"]
        side = 16 + 2 * PAD
        per_member = []
        for m, gen in enumerate(self.generators):
            images = self._table.index_select(0, rows[m]).view(N, side, side)[:, PAD:-PAD, PAD:-PAD]
            out = fn(images.cpu().clone(), gen)  # on the CPU, where the member's generator draws
            per_member.append(pad_background(out.to(self.device, torch.float32)).reshape(N, side * side))
        self.images = generic_compile.table_rows_vary(torch.cat(per_member))
        rows = torch.arange(N, device=self.device) + N * torch.arange(self.members, device=self.device).unsqueeze(1)
        return rows, scale

    def train_pass(self, pass_index: int) -> None:
        # On one thread, as the compiled code runs: a step's ops are too small to gain from a second thread,
        # and torch's threads waiting for each other at every op made a pass 5 to 70 times slower (measured:
        # 16 members, 2 threads against 1 alternating, a 2-core Xeon shared with other work, busy or nearly idle).
        with one_blas_thread(self.device):
            try:
                super().train_pass(pass_index)
            finally:
                self.images = self._table

    # --- one step for all members --------------------------------------------------------------------
    def step(self, rows: torch.Tensor, i: int, keep_scale: torch.Tensor | None, lr: float) -> None:
        labels = self.labels[i].expand(self.members, 1)
        grads = self._compiled_step(rows, labels, keep_scale) if self._compiled else None
        if grads is None:
            grads = torch.autograd.grad(self._summed_loss(self._leaf_views, rows, labels, keep_scale),
                                        list(self._leaf_views.values()))
            grads = self._masked(grads)
        self.step_count += 1
        self._update(grads, lr)

    def _update(self, grads: tuple[torch.Tensor, ...], lr: float) -> None:
        """The update rule with the per-tensor gradients (SHAPES' order). The graph returns them per tensor: in
        the compiled graph, a concatenation into the flat layout became one loop over the whole buffer with an
        integer division per entry (profiled: the costliest kernel of a step)."""
        if isinstance(self.optimizer, (_TorchOptim, _UpdateFunction)):
            self.optimizer.step(grads, lr, self.step_count)
        elif isinstance(self.optimizer, SGD):  # the flat rule's op on each tensor: the same arithmetic, no copy
            torch._foreach_sub_(list(self.params.views.values()), grads, alpha=lr)
        else:  # AdamW: the flat rule on the gradients laid out flat
            torch.cat([g.reshape(-1) for g in grads], out=self.grads.flat)
            self.optimizer.step(self.params.flat, self.grads.flat, lr, self.step_count)

    def _compiled_step(self, rows, labels, keep_scale) -> tuple[torch.Tensor, ...] | None:
        """The gradients by the compiled step, or None once it has been given up (see generic_compile)."""
        try:
            return self._compiled(self.params.views, rows, labels, keep_scale)
        except Exception as err:  # noqa: BLE001 (whatever stops the compiler, the eager step may run the hook)
            generic_compile.say(generic_compile.fallback_message(err, self.hooks))
            self._compiled = None
            return None

    def _traced_step(self, params: dict[str, torch.Tensor], rows, labels, keep_scale) -> tuple[torch.Tensor, ...]:
        """What the compiled step computes: the gradients (SHAPES' order) of the summed member losses at `params`."""
        grads = torch.func.grad(self._summed_loss)(params, rows, labels, keep_scale)
        return self._masked(list(grads.values()))

    def _summed_loss(self, params: dict[str, torch.Tensor], rows, labels, keep_scale) -> torch.Tensor:
        """The members' losses on their patterns (rows (P,), labels (P, 1)), summed (a member's loss depends on
        its own weights alone, so the gradient of the sum is every member's own), at engine-layout `params`."""
        if "forward" in self.hooks:
            pre = self._hook_forward(self._paper(params), self._images_16(rows), keep_scale)
        else:
            pre = self._forward(rows, keep_scale, params)[0]  # (P, 1, 10)
        return self._losses(pre, labels).sum()

    def _masked(self, grads) -> tuple[torch.Tensor, ...]:
        """Per-tensor gradients (SHAPES' order), those of the connections the H2 scheme leaves out set to zero
        (in the 1989 net they do not exist)."""
        mask = getattr(self, "mask", None)
        return tuple(g * mask if name == "W2" and mask is not None else g for name, g in zip(self.SHAPES, grads))

    def _losses(self, pre: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """pre (P, B, 10), labels (P, B) -> (P, B) per-pattern losses (the hook's, else the config's)."""
        if "loss" in self.hooks:
            return vmap(self.hooks["loss"])(pre, labels)
        P, B = labels.shape
        return loss_per_example(self.cfg, pre.reshape(P * B, 10), labels.reshape(P * B)).view(P, B)

    def _images_16(self, rows: torch.Tensor) -> torch.Tensor:
        side = 16 + 2 * PAD
        return self.images.index_select(0, rows).view(-1, 1, side, side)[..., PAD:-PAD, PAD:-PAD]  # (P, 1, 16, 16)

    def _hook_forward(self, params: dict, x: torch.Tensor, keep_scale: torch.Tensor | None) -> torch.Tensor:
        """The whole-net hook for every member: params (paper-named, members first), x (P, B, 16, 16)."""
        cfg, fn = self.cfg, self.hooks["forward"]
        if keep_scale is None:
            return vmap(lambda p, xx: fn(p, xx, lambda pp, xs: stock_forward(pp, xs, cfg)))(params, x)
        keep = (keep_scale[:, _REFERENCE_FROM_ENGINE_192.to(self.device)] > 0).to(x.dtype).unsqueeze(1)  # map-major
        return vmap(lambda p, xx, k: fn(p, xx, lambda pp, xs: stock_forward(pp, xs, cfg, k)))(params, x, keep)

    # --- evaluation ----------------------------------------------------------------------------------
    def _eval_pre(self, xb: torch.Tensor) -> torch.Tensor:
        if "forward" not in self.hooks:
            return super()._eval_pre(xb)
        P = self.members
        return self._hook_forward(self._paper(self.params.views), xb.unsqueeze(0).expand(P, *xb.shape), None)

    def _outputs_and_losses(self, pre: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        P, B = pre.shape[0], pre.shape[1]
        values = outputs(self.cfg, pre.reshape(P * B, 10)).view(P, B, 10)
        return values, self._losses(pre, y.view(1, B).expand(P, B))

    def _paper(self, v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Paper-named weights of every member (members first), from engine-layout views, by differentiable
        ops (the inverse of the population's to_engine, batched)."""
        P = self.members
        if "W3" not in v:  # fc40
            return {"H.weight": v["W1"].transpose(1, 2), "H.bias": v["b1"].reshape(P, -1),
                    "out.weight": v["W2"].transpose(1, 2), "out.bias": v["b2"].reshape(P, 10)}
        scheme = h2_scheme(self.cfg.h2_scheme).to(self.device)  # (12, 8): H1 maps each H2 map reads
        w2 = v["W2"].view(P, 25, 12, 12).permute(0, 3, 2, 1)  # (P, H2 map, H1 map, tap)
        w2 = torch.gather(w2, 2, scheme.view(1, 12, 8, 1).expand(P, 12, 8, 25)).reshape(P, 12, 8, 5, 5)
        return {
            "H1.weight": v["W1"].transpose(1, 2).reshape(P, 12, 1, 5, 5),
            "H1.bias": v["b1"].transpose(1, 2).reshape(P, 12, 8, 8),
            "H2.weight": w2,
            "H2.bias": v["b2"].transpose(1, 2).reshape(P, 12, 4, 4),
            "H3.weight": v["W3"][:, _REFERENCE_FROM_ENGINE_192.to(self.device)].transpose(1, 2),
            "H3.bias": v["b3"].reshape(P, 30),
            "out.weight": v["W4"].transpose(1, 2),
            "out.bias": v["b4"].reshape(P, 10),
        }


def _step_major(draws: torch.Tensor) -> torch.Tensor:
    """A pass's draws (P, N, ...) with the same values, laid out so that each step's column [:, i] is contiguous."""
    return draws.transpose(0, 1).contiguous().transpose(0, 1)


ALIGN = 64  # floats: a multiple of every CPU vector loop's step (2 x 16 lanes with AVX-512)


def _aligned(fn):
    """fn (vmapped over members) called on each member's values laid out in a row of a multiple of ALIGN,
    plus one spare row: CPU kernels compute the last, partial vector of a tensor by another code path
    (scalar, rounding differently), so without this a member's activation would depend on where it lies in
    the population. Every member's values then go through the full-vector path, whatever its neighbours."""

    def call(a: torch.Tensor) -> torch.Tensor:
        P, n = a.shape[0], a[0].numel()
        width = -(-n // ALIGN) * ALIGN
        padded = torch.nn.functional.pad(a.reshape(P, n), (0, width - n, 0, 1))  # (P + 1, width)
        return fn(padded)[:P, :n].reshape(a.shape)

    return call


class _TorchOptim:
    """A torch.optim optimizer from the `optimizer` hook over the stacked per-tensor views of the flat buffer
    (elementwise rules update each member on its own): a step takes the per-tensor gradients; state as the flat
    optimizers keep it."""

    def __init__(self, factory, views: dict[str, torch.Tensor], lr: float):
        self.params = [v.detach().requires_grad_() for v in views.values()]  # leaves sharing the views' storage
        self.names = list(views)
        self.opt = factory(self.params, lr)

    def step(self, grads: tuple[torch.Tensor, ...], lr: float, t: int) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr
        for p, g in zip(self.params, grads):
            p.grad = g
        self.opt.step()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{self.names[i]}/{k}": torch.as_tensor(v).clone()
                for i, p in enumerate(self.params) for k, v in self.opt.state.get(p, {}).items() if v is not None}

    def load_state_dict(self, d: dict[str, torch.Tensor]) -> None:
        by_name = dict(zip(self.names, self.params))
        for key, v in d.items():
            name, k = key.split("/", 1)
            self.opt.state[by_name[name]][k] = v.clone().to(by_name[name].device)


class _UpdateFunction:
    """The `update` hook applied to each stacked tensor (an elementwise rule updates each member on its own),
    with one state dict per tensor: a step takes the per-tensor gradients; state as the flat optimizers keep it."""

    def __init__(self, fn, views: dict[str, torch.Tensor]):
        self.fn, self.views = fn, views
        self.states: dict[str, dict] = {k: {} for k in views}

    @torch.no_grad()
    def step(self, grads: tuple[torch.Tensor, ...], lr: float, t: int) -> None:
        for (name, p), g in zip(self.views.items(), grads):
            self.fn(p, g, self.states[name], lr, t)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{name}/{k}": torch.as_tensor(v).clone() for name, st in self.states.items() for k, v in st.items()}

    def load_state_dict(self, d: dict[str, torch.Tensor]) -> None:
        for key, v in d.items():
            name, k = key.split("/", 1)
            self.states[name][k] = v.clone()


_CLASSES: dict[tuple[str, bool], type] = {}


def generic_class(architecture: str, compiled: bool = True) -> type:
    """The generic engine's class for an architecture: the population's class with the autograd step,
    compiled (the `generic` engine) or eager (`generic-eager`)."""
    key = (architecture, compiled)
    if key not in _CLASSES:
        base = population_class(architecture)
        name = f"Generic{base.__name__}" + ("" if compiled else "Eager")
        attrs = {"__module__": __name__, "COMPILED": compiled, "ENGINE": "generic" if compiled else "generic-eager"}
        _CLASSES[key] = type(name, (_Autograd, base), attrs)
    return _CLASSES[key]
