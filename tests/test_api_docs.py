"""The API reference is complete: every public symbol has a docstring and every public module
is rendered on an API page."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import mechinterp

API_PAGES = Path(__file__).resolve().parents[1] / "docs" / "api"


def _public_modules():
    for info in pkgutil.walk_packages(mechinterp.__path__, "mechinterp."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            yield importlib.import_module(info.name)


def test_every_public_function_and_class_has_a_docstring():
    missing = []
    for module in [mechinterp, *_public_modules()]:
        if not (module.__doc__ or "").strip():
            missing.append(module.__name__)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and not (obj.__doc__ or "").strip():
                missing.append(f"{module.__name__}.{name}")
    assert not missing, f"public symbols without a docstring: {missing}"


def test_every_public_module_has_an_api_page():
    rendered = set()
    for page in API_PAGES.glob("*.md"):
        rendered |= set(re.findall(r"^::: (mechinterp[\w.]*)", page.read_text(), re.M))
    top_level = {m.__name__ for m in _public_modules() if m.__name__.count(".") == 1}
    unrendered = sorted(name for name in top_level if name not in rendered)
    assert not unrendered, f"modules with no API page (add a docs/api/ page): {unrendered}"
