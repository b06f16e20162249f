"""``fedsim``: the hydra entry point for runs and sweeps.

``fedsim [overrides]`` runs one simulation; ``fedsim -m key=a,b`` sweeps. Bad
overrides and out-of-range values stop with one line, before any job starts.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from fedsim.config import Config, register_configs
from fedsim.errors import FedsimError

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
SEARCHPATH = f"hydra.searchpath=[file://{REPO}]"  # makes scenarios/ a config group

log = logging.getLogger("fedsim")


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
    while exc is not None:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if first not in parts:
            parts.append(first)
        exc = exc.__cause__ or exc.__context__
    return " ".join(parts) + hint


def first_point(overrides: list[str]) -> list[str]:
    """The first grid point of a sweep, as plain overrides (for the pre-flight check)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    out = []
    for o in parsed:
        if o.is_hydra_override():
            continue
        value = next(iter(o.sweep_string_iterator())) if o.is_sweep_override() else o.get_value_element_as_str()
        out.append(f"{o.get_key_element()}={value}")
    return out


def preflight(overrides: list[str]) -> None:
    """Compose and validate the config once so mistakes fail fast, in one line."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*first_point(overrides), SEARCHPATH])
    to_config(cfg)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def _job(cfg: DictConfig) -> float:
    from fedsim.experiments.run import run_and_write

    out = Path(HydraConfig.get().runtime.output_dir)
    try:
        summary = run_and_write(to_config(cfg), out, OmegaConf.to_yaml(cfg, resolve=True))
    except FedsimError as exc:
        print(f"fedsim: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    log.info(
        "done: %d rounds, accuracy %.4f, AUC %.4f, virtual %.1f s, wall %.1f s -> %s",
        summary["rounds"], summary["final_accuracy"], summary["final_auc"],
        summary["virtual_s"], summary["wall_total_s"], out,
    )
    return float(summary["final_accuracy"])


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    register_configs()
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    try:
        preflight(overrides)
    except Exception as exc:  # composition and validation errors alike
        print(f"fedsim: error: {one_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    sys.argv = [sys.argv[0], *args, SEARCHPATH]
    _job()
