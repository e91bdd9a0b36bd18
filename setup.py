"""Package discovery, kept here because pyproject.toml cannot combine it with a mapped folder.

The rungs live at the top of the checkout (ablations/), where they are read and edited; a wheel carries them
as the package `repro._ablations` (repro.resources finds them there when no checkout is at hand).
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["repro", "repro.*"]) + ["repro._ablations"],
    package_dir={"repro._ablations": "ablations"},
)
