"""The native engine: the C kernels (native.c, the interface, which includes kernel.c, members in the lanes,
solo.c, one member alone, and draws.c, a member's random draws for a pass; compiled with the system's compiler on
first use), the module that builds and loads them (build.py), the engine that drives them (engine.py:
NativePopulation, supports, available) and the one that draws through draws.c (draws.py)."""
