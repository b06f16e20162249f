"""From hydra's YAML to fedsim's typed config: where the config tree lives, and how a study runs as a hydra app.

Shared by the ``fedsim`` entry point (:mod:`fedsim.cli`) and the in-process studies in
:mod:`fedsim.experiments`, so that neither imports the other.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from fedsim.config import Config, register_configs
from fedsim.errors import FedsimError
from fedsim.results import CONFIG, write_text

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
SEARCHPATH = f"hydra.searchpath=[file://{REPO}]"  # makes scenarios/ a config group


def is_override(arg: str) -> bool:
    """Whether a command-line argument is a hydra override (``key=value``) rather than a flag or a flag's value."""
    return "=" in arg and not arg.startswith("-")


def search_path(args: Sequence[str]) -> str:
    """The ``hydra.searchpath`` override for a command line: fedsim's repo (for scenarios/), then the user's config dirs.

    A user keeps config groups next to their code and names the folder with ``--config-dir
    DIR`` (``-cd DIR``) or their own ``hydra.searchpath=[...]``; fedsim's pre-flight compose
    must see those groups too, and its own searchpath override would otherwise replace theirs.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    dirs = [f"file://{REPO}"]
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if flag in ("--config-dir", "-cd"):
            value = value if eq else (args[i + 1] if i + 1 < len(args) else "")
            path = Path(value).resolve()
            if not path.is_dir():
                raise FedsimError(f"--config-dir {value or '(missing)'} is not a directory; name the folder that holds your config groups")
            dirs.append(f"file://{path}")
        elif is_override(arg) and arg.lstrip("+").startswith("hydra.searchpath="):
            dirs += [str(d) for d in OverridesParser.create().parse_overrides([arg])[0].value() or []]
    return f"hydra.searchpath=[{','.join(dirs)}]"


def hydra_argv(args: Sequence[str], *extra: str) -> list[str]:
    """``args`` with the overrides ``extra`` added, for hydra's parser: flags first, then every override.

    Hydra reads its overrides as one run of positional arguments, so an override added
    after a user's trailing flag (``fedsim x=1 --cfg job``) would be refused.
    """
    return [*(a for a in args if not is_override(a)), *(a for a in args if is_override(a)), *extra]


def to_config(cfg: DictConfig) -> Config:
    """Validate a composed config by turning it into dataclasses (runs every __post_init__)."""
    try:
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except FedsimError:
        raise
    except Exception as exc:  # omegaconf wraps errors raised in __post_init__
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, FedsimError):
            raise cause from None
        raise FedsimError(one_line(exc)) from None


def one_line(exc: BaseException) -> str:
    """The first line of each message in an exception chain, joined, with a hint for unknown keys."""
    parts: list[str] = []
    hint = "; list the valid keys with `fedsim --cfg job`" if "not in" in str(exc) or "Could not override" in str(exc) else ""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # a re-raised cause can make the chain a loop
        seen.add(id(exc))
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if first not in parts:
            parts.append(first)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return " ".join(parts) + hint


def study_entry(body: Callable[[Config, Path], None]) -> None:
    """Run a study in process as a hydra app (overrides and scenarios as for ``fedsim``; no .hydra folder or log file).

    ``body(cfg, out_dir)`` runs after the resolved config is written to ``out_dir/config.yaml``.
    """

    @hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
    def app(raw: DictConfig) -> None:
        out = Path(HydraConfig.get().runtime.output_dir)
        cfg = to_config(raw)
        write_text(OmegaConf.to_yaml(raw, resolve=True), out / CONFIG)
        body(cfg, out)

    register_configs()
    sys.argv = [sys.argv[0], *hydra_argv(sys.argv[1:], SEARCHPATH, "hydra.output_subdir=null", "hydra/job_logging=stdout")]
    app()
