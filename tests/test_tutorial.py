"""The README's "Your own trick as a rung" tutorial, run as written (2 seeds and 1 pass instead of 16 seeds
and 23 passes) in a copy of the examples folder, into a temporary workspace."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def tutorial_commands() -> str:
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- tutorial:start -->", 1)[1].split("<!-- tutorial:end -->", 1)[0]
    return re.search(r"```bash\n(.*?)```", block, re.S).group(1)


def test_the_readme_tutorial_runs(tmp_path):
    commands = tutorial_commands()
    assert "--seeds 16" in commands and len(re.findall(r"^(?!cat|EOF|repro)", commands, re.M)) < 10
    shutil.copytree(REPO / "ablations" / "examples", tmp_path / "ablations" / "examples")
    script = commands.replace("--seeds 16", "--seeds 2 --passes 1")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "REPRO_WORKSPACE": str(tmp_path / "workspace")}
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted((tmp_path / "workspace" / "runs" / "usps").glob("swish-*.json"))
    assert len(runs) == 2
    report = (tmp_path / "workspace" / "report" / "report.md").read_text()
    assert "Rungs with their own code (usps)" in report and "`swish`" in report
