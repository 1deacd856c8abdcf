"""The runnable examples in module docstrings stay true."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["fraudlab.generate", "fraudlab.privacy", "fraudlab.rules", "fraudlab.schema", "fraudlab.featurelab.defs"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
