"""The native engine: the C kernel (kernel.c, compiled with the system's compiler on first use) and the module
that builds, loads and drives it (loader.py: NativePopulation, supports, available)."""
