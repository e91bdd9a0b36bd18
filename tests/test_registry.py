"""The engine registry: names, what each engine supports, and the fallback rule; one table of activations
and one set of update rules, where an unknown name is an error."""

import dataclasses

import pytest
import torch

from repro.config import Config
from repro.engines import registry
from repro.engines.population import Population
from repro.engines.population import FCPopulation

SDLM = Config(optimizer="sdlm", lr=1e-3)


def test_every_engine_has_a_name_and_answers_for_itself():
    assert set(registry.ENGINES) == set(registry.NAMES) == {"reference", "population", "fused", "native", "generic",
                                                               "generic-eager"}
    for engine in registry.ENGINES.values():
        assert engine.available("cpu") is None or isinstance(engine.available("cpu"), str)
        assert engine.supports(Config()) is None or isinstance(engine.supports(Config()), str)


def test_population_supports_everything_and_builds_the_architectures_class():
    pop = registry.get("population")
    assert pop.available("cpu") is None and pop.supports(SDLM) is None
    assert pop.population_class(Config()) is Population
    assert pop.population_class(Config(architecture="fc40")) is FCPopulation


def test_unknown_engine_is_an_error_listing_the_valid_names():
    with pytest.raises(registry.EngineError, match="unknown engine 'turbo'; valid: auto, reference, population, fused, native, generic"):
        registry.choose("turbo", Config(), "cpu")


def test_an_explicit_engine_that_does_not_support_a_config_falls_back_to_population_saying_why():
    if registry.get("fused").available("cpu"):
        pytest.skip("needs Triton")
    engine, note = registry.choose("fused", SDLM.replace(sdlm_curvature="per_pass"), "cpu")
    assert engine.name == "population" and "does not implement sdlm_curvature = 'per_pass'" in note
    engine, note = registry.choose("fused", Config(), "cpu")
    assert engine.name == "fused" and note is None


def test_auto_picks_native_on_cpu_when_it_can_else_population(monkeypatch):
    native = registry.get("native")
    engine, _ = registry.choose("auto", Config(), "cpu")
    if native.available("cpu") is None and native.supports(Config()) is None:
        assert engine.name == "native"
    else:
        assert engine.name == "population"
    monkeypatch.setattr(registry.Engine, "available", lambda self, device: None)
    monkeypatch.setattr(registry.Engine, "supports", lambda self, cfg: "no" if cfg.optimizer == "sdlm" else None)
    assert registry.choose("auto", Config(), "cpu")[0].name == "native"
    assert registry.choose("auto", SDLM, "cpu") == (registry.get("population"), "no; running it on the population engine")
    assert registry.choose("auto", Config(), "cuda")[0].name == "fused"
    assert registry.choose("auto", SDLM, "cuda")[0].name == "population"


def test_auto_on_cuda_without_the_fused_engine_is_population(monkeypatch):
    monkeypatch.setattr(registry.Engine, "available", lambda self, device: "absent" if self.name == "fused" else None)
    assert registry.choose("auto", Config(), "cuda") == (registry.get("population"), None)


def test_an_explicit_engine_that_cannot_run_here_is_an_error(monkeypatch):
    monkeypatch.setattr(registry.Engine, "available", lambda self, device: "not built" if self.name == "native" else None)
    with pytest.raises(registry.EngineError, match="--engine native: not built"):
        registry.choose("native", Config(), "cpu")


def test_native_is_unavailable_off_the_cpu_and_when_missing(monkeypatch):
    assert "runs on cpu, not on cuda" in registry.get("native").available(torch.device("cuda"))
    missing = dataclasses.replace(registry.get("native"), module="repro.engines.no_such_module")
    assert "not installed" in missing.available("cpu") and "not installed" in missing.supports(Config())


def test_the_reference_engine_has_no_population_class():
    with pytest.raises(TypeError, match="train_reference"):
        registry.get("reference").population_class(Config())


def test_unknown_activation_and_optimizer_are_errors_everywhere():
    from repro.net import activations
    from repro.net.model import activation
    from repro.net.sdlm import activation_grad
    from repro.optim import flat_optimizer, reference_optimizer

    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        activation("swish", torch.zeros(1))
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        activation_grad("swish", torch.zeros(1))
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        activations.get("swish")
    bad = object.__new__(Config)  # Config itself refuses the name; the engines must too, on their own
    object.__setattr__(bad, "__dict__", {**Config().__dict__, "optimizer": "lion"})
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        reference_optimizer(bad, [torch.zeros(1, requires_grad=True)])
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        flat_optimizer(bad, torch.zeros(3))


@pytest.mark.parametrize("name", ["tanh", "scaled_tanh", "relu"])
def test_each_activations_derivatives_agree_with_autograd(name):
    from repro.net import activations

    act = activations.get(name)
    a = torch.linspace(-3, 3, 61, dtype=torch.float64).requires_grad_()
    (grad,) = torch.autograd.grad(act.forward(a).sum(), a)
    a = a.detach()
    torch.testing.assert_close(act.grad_from_pre(a), grad)
    torch.testing.assert_close(act.grad_from_output(act.forward(a)), grad)


def test_where_the_native_kernel_cannot_be_built_the_note_names_the_engine_instead_and_its_cost(monkeypatch):
    from repro.engines.native import engine

    monkeypatch.setattr(engine, "available", lambda device=None: "no C compiler found")
    engine, note = registry.choose("auto", Config(), "cpu")
    assert engine.name == "population"
    assert note.startswith("no C compiler found; the population engine trains instead, about ")
    assert "times slower (the committed bench, at 16 members: " in note


def test_an_arm64_machine_builds_the_native_kernel_for_armv8_a(monkeypatch):
    from repro.engines.native import build

    monkeypatch.delenv("LECUN1989_NATIVE_MARCH", raising=False)
    monkeypatch.setattr(build.platform, "machine", lambda: "aarch64")
    assert build.default_build(members=16, threads=2) == build.Build("armv8-a", 8)
    monkeypatch.setattr(build.platform, "machine", lambda: "riscv64")
    assert "x86-64 and ARM64" in build._open(build.Build())
