"""pyproject.toml says what setuptools reads without a deprecation warning."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_the_licence_is_an_spdx_expression_and_the_build_backend_reads_it():
    document = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    # A TOML table ({ text = ... }) makes setuptools >= 77 warn on every install.
    assert document["project"]["license"] == "Apache-2.0"
    setuptools = next(r for r in document["build-system"]["requires"] if r.startswith("setuptools"))
    floor = re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", setuptools)
    assert floor and int(floor.group(1)) >= 77, setuptools  # 77 is the first to accept the SPDX string
