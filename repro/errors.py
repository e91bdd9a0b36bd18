"""The base of every error the package reports to its user (bad data, config, folder, device, engine, records).

The command line catches `ReproError` once (repro.cli.main) and prints its message; anything else is a bug and
keeps its traceback. Each subclass also keeps its older base (ValueError, RuntimeError), so code that catches
those still does. This module imports nothing, so every layer may use it.
"""


class ReproError(Exception):
    """An error whose message tells the user what is wrong and what to do; no traceback needed."""
