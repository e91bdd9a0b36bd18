"""The fused engine: every training pass one Triton kernel launch.

    population.py  FusedPopulation and FusedGroup, the host side (what the registry loads)
    kernel.py      the Triton kernel (imported only when a pass runs: it needs Triton)
    layout.py      what the two agree on: the padded parameter layout, table columns and constants
"""
