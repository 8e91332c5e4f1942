"""The installed package must hold everything the app reads at run time, not only code."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_every_file_of_the_package(tmp_path):
    # Built the way pipx installs it (an isolated build), from a copy: a build leaves
    # build/ and egg-info folders behind.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".*", "__pycache__", "build", "dist", "*.egg-info", "*.db*", "tests", "screenshots"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(tmp_path), str(source)],
                   check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("tracedesk-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    wanted = {path.relative_to(ROOT).as_posix()
              for path in (ROOT / "tracedesk").rglob("*")
              if path.is_file() and "__pycache__" not in path.parts}
    assert "tracedesk/ui/tracedesk.tcss" in wanted
    assert wanted <= packed, sorted(wanted - packed)
