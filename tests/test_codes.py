"""kernel.c's enums (the option codes and the parameter offsets) equal repro.engines.codes, read from its text."""

import re

from repro.engines import codes
from repro.engines.native.loader import KERNEL


def _enums() -> dict[str, int]:
    text = KERNEL.read_text()
    found = {}
    for body in re.findall(r"enum\s*\{([^}]*)\}", text):
        for name, value in re.findall(r"(\w+)\s*=\s*(\d+)", body):
            found[name] = int(value)
    return found


def test_kernel_c_codes_equal_the_table():
    enums = _enums()
    prefixes = {"ARCH_": codes.ARCHITECTURES, "ACT_": codes.ACTIVATIONS, "OUT_": codes.OUTPUTS,
                "OPT_": codes.OPTIMIZERS}
    for prefix, table in prefixes.items():
        in_c = {name[len(prefix):].lower(): v for name, v in enums.items() if name.startswith(prefix)}
        if prefix == "OPT_":
            assert in_c.pop("sdlm_fixed") == codes.SDLM_FIXED and in_c.pop("sdlm_estimate") == codes.SDLM_ESTIMATE
        assert in_c == table, prefix


def test_kernel_c_offsets_equal_the_layout():
    enums = _enums()
    for prefix, arch, names in (("N_", "net1989", ["W1", "B1", "W2", "B2", "W3", "B3", "W4", "B4"]),
                                ("F_", "fc40", ["W1", "B1", "W2", "B2"])):
        assert [enums[prefix + n] for n in names] == codes.offsets(arch), arch
        assert enums[prefix + "NP"] == codes.NPARAM[arch], arch
