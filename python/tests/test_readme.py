"""The README's three-line Python simulation runs and prints what the README says."""

from __future__ import annotations

import contextlib
import io
import os

from conftest import REPO


def test_readme_simulation_prints_its_comment():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Python and Spark") :]
    block = section[section.index("```python\n") + len("```python\n") : section.index("```\n", section.index("```python"))]
    code = [line for line in block.splitlines() if not line.startswith("#")]
    expected = [line[2:] for line in block.splitlines() if line.startswith("# ")]
    assert len(code) == 3, "the README promises three lines"
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        with contextlib.redirect_stdout(out):
            exec("\n".join(code), {})
    finally:
        os.chdir(cwd)
    assert out.getvalue().splitlines() == expected
