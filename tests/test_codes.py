"""The compiled kernels' codes against repro.config's value lists, from one place: kernel.c's enums (the option
codes and the parameter offsets) equal repro.engines.codes, native.c's range checks end at each enum's last value,
and the C interface's version comes from codes.NATIVE_ABI, read from the sources' text."""

import re

from repro import config
from repro.engines import codes
from repro.engines.native.build import ENTRY, KERNEL, Build

PREFIXES = {"ARCH_": codes.ARCHITECTURES, "ACT_": codes.ACTIVATIONS, "OUT_": codes.OUTPUTS, "OPT_": codes.OPTIMIZERS}


def _enums() -> dict[str, int]:
    text = KERNEL.read_text()
    found = {}
    for body in re.findall(r"enum\s*\{([^}]*)\}", text):
        for name, value in re.findall(r"(\w+)\s*=\s*(\d+)", body):
            found[name] = int(value)
    return found


def _in_c(enums: dict[str, int], prefix: str) -> dict[str, int]:
    return {name[len(prefix):].lower(): v for name, v in enums.items() if name.startswith(prefix)}


def test_the_codes_are_the_positions_in_configs_lists():
    lists = {"architecture": config.ARCHITECTURES, "hidden_activation": config.HIDDEN_ACTIVATIONS,
             "output": config.OUTPUTS, "optimizer": config.OPTIMIZERS}
    assert {setting: list(table) for setting, table in codes.CODES.items()} == {s: list(v) for s, v in lists.items()}
    for setting, table in codes.CODES.items():
        assert list(table.values()) == list(range(len(table))), setting


def test_kernel_c_codes_equal_the_table():
    enums = _enums()
    for prefix, table in PREFIXES.items():
        in_c = _in_c(enums, prefix)
        if prefix == "OPT_":
            assert in_c.pop("sdlm_fixed") == codes.SDLM_FIXED and in_c.pop("sdlm_estimate") == codes.SDLM_ESTIMATE
        assert in_c == table, prefix


def test_native_c_checks_each_code_up_to_its_enums_last_value():
    enums = _enums()
    checks = dict(re.findall(r"s->(\w+) > ((?:ARCH|ACT|OUT|OPT)_\w+)", ENTRY.read_text()))
    assert set(checks) == {"act", "out", "opt"}, checks
    for field, prefix in (("act", "ACT_"), ("out", "OUT_"), ("opt", "OPT_")):
        assert enums[checks[field]] == max(_in_c(enums, prefix).values()), field
    # the architecture is checked value by value: every one of the table's has its enum in native.c's check
    assert {f"ARCH_{a.upper()}" for a in codes.ARCHITECTURES} <= set(re.findall(r"s->arch != (ARCH_\w+)", ENTRY.read_text()))


def test_the_abi_version_is_defined_once_and_passed_to_the_build():
    text = ENTRY.read_text()
    assert "native_abi_version(void) { return NATIVE_ABI; }" in text
    assert not re.search(r"native_abi_version\(void\)\s*\{\s*return\s*\d", text)
    assert f"-DNATIVE_ABI={codes.NATIVE_ABI}" in Build().flags()


def test_kernel_c_offsets_equal_the_layout():
    enums = _enums()
    for prefix, arch, names in (("N_", "net1989", ["W1", "B1", "W2", "B2", "W3", "B3", "W4", "B4"]),
                                ("F_", "fc40", ["W1", "B1", "W2", "B2"])):
        assert [enums[prefix + n] for n in names] == codes.offsets(arch), arch
        assert enums[prefix + "NP"] == codes.NPARAM[arch], arch
