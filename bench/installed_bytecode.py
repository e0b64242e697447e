"""Start the measured commands as an installed certvigil starts: from compiled bytecode.

``pip install`` compiles every module it installs, so a deployed ``certvigil`` imports
``.pyc`` files. A source checkout run with ``PYTHONDONTWRITEBYTECODE`` set (as some CI
environments do) compiles each of certvigil's modules again in every
process it starts: about 0.1-0.15 s more start-up for ``certvigil run --distributed``
here, which is a fixed cost the benchmarks compare.
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "src" / "certvigil"


def as_installed() -> None:
    """Compile certvigil's modules (into their ``__pycache__``) and let the child
    processes read and write bytecode."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    compileall.compile_dir(SOURCE, quiet=1)
