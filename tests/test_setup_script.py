"""scripts/setup.sh fails with one line naming where it looked when no Python >= 3.12 exists."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SETUP = Path(__file__).resolve().parent.parent / "scripts" / "setup.sh"


def test_setup_without_python_names_where_it_looked(tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("dirname", "ls", "sort"):  # what the script needs besides bash and python
        os.symlink(shutil.which(tool), tools / tool)
    empty_pyenv = tmp_path / "pyenv"
    result = subprocess.run(
        [shutil.which("bash"), str(SETUP)],
        env={"PATH": str(tools), "HOME": str(tmp_path), "PYENV_ROOT": str(empty_pyenv)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no Python >= 3.12 found" in lines[0]
    assert "python3.12" in lines[0] and str(empty_pyenv / "versions") in lines[0]
