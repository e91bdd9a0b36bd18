"""The native engine: the C kernels (native.c, the interface, which includes kernel.c, members in the lanes, and
solo.c, one member alone; compiled with the system's compiler on first use) and the module that builds, loads
and drives them (loader.py: NativePopulation, supports, available)."""
