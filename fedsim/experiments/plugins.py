"""Where every ``_target_`` in a config becomes an object: data loader, task, model, strategy.

fedsim's own and a user's plug-ins go through the same door. A target is called with
the arguments its config node gives, plus those of the run-time inputs (the model,
the seed, the number of classes, …) that its signature names and the node leaves out;
an argument it does not take, a target that does not import, or a result of the wrong
kind stops the run in one line naming the config key.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from fedsim.compose import one_line
from fedsim.config import Config
from fedsim.strategy_config import StrategyConfig
from fedsim.data.dataset import Dataset
from fedsim.errors import FedsimError
from fedsim.seeding import torch_seed
from fedsim.tasks import Task
from fedsim.train.flat import FlatLayout

STRATEGY_HOOKS = ("configure_round", "configure_fit", "aggregate", "personalization", "state_dict", "load_state_dict")


def as_mapping(node: Any) -> dict[str, Any]:
    """A config node (dataclass, DictConfig or dict) as a plain dict."""
    if dataclasses.is_dataclass(node):
        return {f.name: getattr(node, f.name) for f in dataclasses.fields(node)}
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    return dict(node)


def locate(path: str) -> Any:
    """The object ``path`` names. hydra's ``get_object`` also logs a multi-line error when it cannot import
    one (to stderr before the job's logging is set up), which would precede our one line; it is muted here."""
    hydra_log = logging.getLogger("hydra.utils")
    was = hydra_log.disabled
    hydra_log.disabled = True
    try:
        return get_object(path)
    finally:
        hydra_log.disabled = was


def call_target(key: str, node: Mapping[str, Any], offered: Mapping[str, Any], kind: type | tuple[type, ...] = object) -> Any:
    """Call ``node['_target_']`` with the node's arguments and the ``offered`` ones its signature names.

    ``key`` is the config key of the node (``model``, ``strategy``, …), for the error lines.
    """
    node = dict(node)
    target = node.pop("_target_", None)
    if not target:
        raise FedsimError(f"{key}._target_ is missing: name the class or function that builds the {key} (e.g. mypkg.models.Net)")
    try:
        fn = locate(str(target))
    except Exception as exc:
        raise FedsimError(f"{key}._target_={target} cannot be imported ({one_line(exc)}); check the name, and that its package is on PYTHONPATH") from None
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature: pass the node as it is
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in node if k not in params and not takes_any and not (k.startswith("_") and k.endswith("_"))]  # _partial_ & co. are hydra's
    if params and unknown:
        names = ", ".join(p for p in params if params[p].kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD))
        raise FedsimError(f"{key}.{unknown[0]} is not an argument of {target} (it takes: {names or 'nothing'}); drop it or fix its name")
    extra = {k: v for k, v in offered.items() if k in params and k not in node}
    try:  # hydra builds the node's own arguments (nested _target_s too); the run-time objects go in as they are
        made = instantiate({"_target_": target, "_partial_": True, **node})(**extra)
    except FedsimError:
        raise
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, FedsimError):
            raise FedsimError(str(cause)) from None
        raise FedsimError(f"{key}: {target} failed: {one_line(cause)}; fix the {key} config") from None
    except (TypeError, ValueError) as exc:
        raise FedsimError(f"{key}: {target} failed: {one_line(exc)}; fix the {key} config") from None
    if not isinstance(made, kind):
        want = " or ".join(f"{k.__module__}.{k.__qualname__}" for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise FedsimError(f"{key}._target_={target} returned a {type(made).__name__}, not a {want}; point it at one that does")
    return made


def load_data(cfg: Config) -> Dataset:
    """The dataset ``data.source`` names (its loader is offered ``seed``)."""
    return call_target("data.source", as_mapping(cfg.data.source), {"seed": cfg.run.seed}, Dataset)


def build_task(cfg: Config, data: Dataset | None) -> Task:
    """The task ``task`` names, fitted to ``data`` (its class count, anomaly share); a mismatch is one line."""
    task = call_target("task", as_mapping(cfg.task), {}, Task)
    return task.prepare(data) if data is not None else task


def build_model(cfg: Config, task: Task, input_shape: tuple[int, ...], device: torch.device, sample: torch.Tensor | None = None) -> nn.Module:
    """The model ``model`` names, with seeded initial weights (the global torch RNG left untouched).

    Its constructor is offered ``num_features`` (values per sample), ``input_shape``,
    ``num_outputs`` and (for a classification task) ``num_classes``. With ``sample`` rows,
    the task checks the model's output fits it.
    """
    offered: dict[str, Any] = {"num_features": int(np.prod(input_shape, dtype=np.int64)), "input_shape": tuple(input_shape)}
    if task.num_outputs is not None:
        offered["num_outputs"] = task.num_outputs
        offered["num_classes"] = task.num_outputs
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(cfg.run.seed, "init"))
        model = call_target("model", as_mapping(cfg.model), offered, nn.Module)
    model = model.to(device)
    if sample is not None:
        task.check_model(model, sample.to(device))
    return model


def build_strategy(cfg: Config, model: nn.Module, layout: FlatLayout, task: Task, initial: torch.Tensor) -> Any:
    """The strategy ``strategy._target_`` names, from its settings (not the local-training ones).

    Offered: ``model``, ``layout``, ``params`` (True at the trainable positions of the flat
    state), ``initial`` (the flat initial state), ``task``, ``seed`` and ``num_clients``.
    """
    s: StrategyConfig = cfg.strategy
    offered = {
        "model": model, "layout": layout, "params": layout.param_mask(model), "initial": initial, "task": task,
        "seed": cfg.run.seed, "num_clients": cfg.data.num_clients,
    }  # fmt: skip
    strategy = call_target("strategy", {"_target_": s._target_, **s.constructor_kwargs()}, offered)
    missing = [hook for hook in STRATEGY_HOOKS if not callable(getattr(strategy, hook, None))]
    if missing:
        raise FedsimError(
            f"strategy._target_={s._target_} has no {', '.join(missing)}; a strategy subclasses fedsim.fl.strategies.Strategy "
            f"(configure_round, configure_fit, aggregate, state_dict)"
        )
    return strategy
