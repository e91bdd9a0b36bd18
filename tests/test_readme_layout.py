"""The README's layout table ("What is in here") names every top-level folder of the checkout and every file of
the package, so that it matches the tree."""

import subprocess

from tests.conftest import REPO

PACKAGED_COPIES = {"_study", "_ablations"}  # built into a wheel from results/ and ablations/ (named with them)


def layout_table() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("| path | what |")
    return text[start:text.index("\n\n", start)]


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return out.split()


def test_every_top_level_folder_is_in_the_layout_table():
    table = layout_table()
    folders = {path.split("/")[0] for path in tracked_files() if "/" in path}
    missing = sorted(f for f in folders if f"`{f}/" not in table and f"`{f}`" not in table)
    assert not missing, f"top-level folders the README's layout table does not name: {missing}"


def test_every_file_of_the_package_is_named_in_the_layout_table():
    table = layout_table()
    files = [p for p in tracked_files() if p.startswith("repro/") and not p.endswith("__init__.py")
             and not PACKAGED_COPIES & set(p.split("/"))]
    assert len(files) > 80  # the scan sees the package
    missing = [p for p in files if f"`{p.rsplit('/', 1)[-1]}`" not in table and f"`{p}`" not in table]
    assert not missing, f"files of the package the README's layout table does not name: {missing}"
