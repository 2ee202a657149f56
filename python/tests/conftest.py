import os
import shutil

import pytest


@pytest.fixture(scope="session")
def cli():
    """The `bilevel` command of the same build (BILEVEL_CLI), for same-seed comparisons."""
    path = os.environ.get("BILEVEL_CLI") or shutil.which("bilevel")
    if not path:
        pytest.skip("no bilevel command (set BILEVEL_CLI)")
    return path
