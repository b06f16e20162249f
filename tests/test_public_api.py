"""Everything the README names exists where the README says: modules, attributes, files."""

from __future__ import annotations

import importlib
import re

import pytest

from fedsim.compose import REPO

README = (REPO / "README.md").read_text()
DOTTED = sorted(set(re.findall(r"`(fedsim(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`", README)))
PATHS = sorted(set(re.findall(r"\b((?:fedsim|benchmarks|scenarios|conf|results|notebooks|tests)/[\w./-]*\w)", README)))
EXPORTS = re.findall(r"`(fedsim(?:\.\w+)+)` exports ([^.]*(?:\.\w[^.]*)*?)\.(?:\s|$)", README)


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize("dotted", DOTTED)
def test_every_dotted_name_in_the_readme_imports(dotted):
    assert _resolve(dotted) is not None


@pytest.mark.parametrize("path", PATHS)
def test_every_path_in_the_readme_exists(path):
    assert (REPO / path.rstrip("/")).exists() or list(REPO.glob(path.rstrip("/") + "*")), path


def test_what_the_readme_says_a_package_exports_is_importable_from_it():
    assert EXPORTS, "the README names no exports"
    for module, text in EXPORTS:
        names = re.findall(r"`(\w+)`", text)
        assert names, module
        mod = importlib.import_module(module)
        for name in names:
            assert hasattr(mod, name), f"{module}.{name}"
            exec(f"from {module} import {name}", {})  # noqa: S102 - the import statement a user writes


def test_fit_weibull_imports_from_fedsim_checkpoint():
    from fedsim.checkpoint import fit_weibull

    assert callable(fit_weibull)
