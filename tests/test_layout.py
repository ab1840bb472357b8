"""The code stays readable: the linter is clean, no function runs past about a screen, no module hides one of the
standard library's, and each technique lives in the file named after it."""
from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from conftest import REPO

PACKAGE = REPO / "gan_bench"
MAX_LINES = 60  # statements of one function, its docstring not counted


def _functions():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) and len(node.body) > 1 else node.body
                yield path.relative_to(REPO), node.name, body[-1].end_lineno - body[0].lineno + 1


def test_ruff_is_clean():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "gan_bench", "tests", "scripts"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_function_is_longer_than_a_screen():
    long = [f"{path}:{name} ({n} lines)" for path, name, n in _functions() if n > MAX_LINES]
    assert not long, long


def test_no_module_shadows_the_standard_library():
    names = {p.stem for p in PACKAGE.rglob("*.py")} | {p.name for p in PACKAGE.rglob("*") if p.is_dir()}
    assert not names & set(sys.stdlib_module_names), names & set(sys.stdlib_module_names)


@pytest.mark.parametrize("technique,module", [
    ("feature matching", "stabilizers/feature_matching.py"),
    ("gradient penalties", "stabilizers/gradient_penalty.py"),
    ("historical averaging", "stabilizers/historical_averaging.py"),
    ("instance noise", "stabilizers/instance_noise.py"),
    ("unrolled GANs", "stabilizers/unrolled.py"),
    ("minibatch discrimination", "models/minibatch_discrimination.py"),
    ("virtual batch norm", "models/virtual_batch_norm.py"),
    ("spectral normalisation", "models/spectral_norm.py"),
    ("multiple gradient descent", "aggregation/mgd.py"),
    ("hypervolume", "aggregation/hypervolume.py"),
    ("SVRE", "optim/svre.py"),
    ("Lookahead", "optim/lookahead.py"),
])
def test_each_technique_lives_in_its_own_file(technique, module):
    text = (PACKAGE / module).read_text()
    assert technique.split()[0].lower() in text.lower()
