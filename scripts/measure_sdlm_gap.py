"""How far SDLM's curvature recursion lies from the exact Gauss-Newton diagonal in the layers where it drops
cross terms (H1, H2), as tests/test_sdlm.py measures it: one usps pattern, at initialisation and after 200 SDLM
steps on the first 300 training digits, seed 0; per tensor the relative distance ||h - h_GN|| / ||h_GN|| and the
ratio of the totals sum(h) / sum(h_GN). Writes results/measured/sdlm-gap.json, which the report reads
(repro.report.measured).

Run: REPRO_DATA_DIR=... python scripts/measure_sdlm_gap.py   (seconds)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from repro.data import load_dataset  # noqa: E402
from repro.report.measured import MEASURED_DIR, save  # noqa: E402
from tests.test_sdlm import GAP_POINTS, SDLM, curvature_after_one_step, gaps_to_exact  # noqa: E402


def main() -> None:
    usps = load_dataset("usps", download=False, cache=False)
    x, y = usps.x_train[:300], usps.y_train[:300]
    rows = []
    for when, warmup in GAP_POINTS:
        params, got, i = curvature_after_one_step(SDLM, x, y, warmup=warmup)
        for name, (gap, ratio) in gaps_to_exact(got, params, x[i : i + 1], SDLM).items():
            rows.append({"when": when, "tensor": name, "gap": round(gap, 4), "sum_ratio": round(ratio, 4)})
            print(f"{when:16s} {name:10s} gap {gap:.3f}  sum ratio {ratio:.3f}")
    save(MEASURED_DIR / "sdlm-gap.json", "sdlm-gap",
         "SDLM's curvature recursion against the exact Gauss-Newton diagonal (2/10) diag(J^T J) in H1 and H2, where "
         "it drops the cross terms between connections that share a weight: `gap` = ||h - h_GN|| / ||h_GN||, "
         "`sum_ratio` = sum(h) / sum(h_GN), per tensor",
         f"one usps training pattern (tanh_mse, lr 1e-3, seed 0), at initialisation and after 200 SDLM steps on the "
         f"first 300 training digits; float32, torch {torch.__version__.split('+')[0]}, the exact diagonal by "
         f"torch.func.jacrev", "REPRO_DATA_DIR=... python scripts/measure_sdlm_gap.py", rows)


if __name__ == "__main__":
    main()
