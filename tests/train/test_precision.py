"""Precision choice and bf16-mixed local training: float32 untouched, bf16 deterministic, maths kept wide."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from torch.nn import functional as F

from conftest import tiny_model
from test_local import _setup  # one tiny client, its model, layout and start vector
from fedsim.models.dagmm import DAGMM, gmm_parameters, sample_energy
from fedsim.seeding import torch_generator, torch_seed
from fedsim.train import precision
from fedsim.train.flat import FlatLayout
from fedsim.train.local import LocalSpec, TrainState, batch_bounds, local_train
from fedsim.train.precision import autocast, cpu_flags, native_bf16, resolve_precision

BF16 = LocalSpec(batch_size=16, precision="bf16-mixed")


def test_precision_32_is_the_textbook_float32_loop_bit_for_bit(tiny_data):
    model, layout, start, x, y = _setup(tiny_data)
    got = local_train(model, layout, TrainState(start), x, y, spec=LocalSpec(batch_size=16), seed=5, stop_step=6)
    ref = tiny_model(x.shape[1])
    ref.train()
    opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
    bounds = batch_bounds(len(x), 16)
    perm = torch.randperm(len(x), generator=torch_generator(5, "batches", 0))
    with torch.random.fork_rng(devices=[]):
        for step in range(6):
            torch.manual_seed(torch_seed(5, "dropout", step))
            rows = perm[bounds[step] : bounds[step + 1]]
            opt.zero_grad()
            F.binary_cross_entropy_with_logits(ref(x[rows]), y[rows].float()).backward()
            opt.step()
    assert torch.equal(got.state.flat, layout.flatten(ref))


def test_bf16_mixed_is_deterministic_changes_the_arithmetic_and_keeps_float32_state(tiny_data):
    model, layout, start, x, y = _setup(tiny_data)
    a = local_train(model, layout, TrainState(start), x, y, spec=BF16, seed=3, stop_step=7)
    b = local_train(model, layout, TrainState(start), x, y, spec=BF16, seed=3, stop_step=7)
    fp32 = local_train(model, layout, TrainState(start), x, y, spec=LocalSpec(batch_size=16), seed=3, stop_step=7)
    assert torch.equal(a.state.flat, b.state.flat) and a.loss == b.loss
    assert not torch.equal(a.state.flat, fp32.state.flat)
    assert a.state.flat.dtype == torch.float32
    assert all(s["exp_avg"].dtype == s["exp_avg_sq"].dtype == torch.float32 for s in a.state.optimizer["state"].values())
    # a resume from a bf16 state continues the same trajectory
    half = local_train(model, layout, TrainState(start), x, y, spec=BF16, seed=3, stop_step=4)
    assert torch.equal(local_train(model, layout, half.state, x, y, spec=BF16, seed=3, stop_step=7).state.flat, a.state.flat)


def test_gemms_run_in_bf16_but_logits_reach_the_loss_in_float32(tiny_data):
    model, _, _, x, _ = _setup(tiny_data)
    seen = []
    model.net[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    with autocast("bf16-mixed", "cpu"):
        logits = model(x)
    assert seen == [torch.bfloat16] and logits.dtype == torch.float32
    with autocast("32", "cpu"):
        model(x)
    assert seen[-1] == torch.float32


def test_dagmm_mixture_and_energy_stay_float64_under_bf16(tiny_data):
    x = tiny_data["clients"][0][0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DAGMM(x.shape[1])
    z, _, gamma = model(x)
    phi, mu, cov = gmm_parameters(gamma.double(), z.double())
    plain = sample_energy(z, phi, mu, cov)
    with autocast("bf16-mixed", "cpu"):
        assert all(t.dtype == torch.float64 for t in gmm_parameters(gamma.double(), z.double()))
        assert torch.equal(sample_energy(z, phi, mu, cov), plain)  # no bfloat16 anywhere inside
        z16, x_hat, gamma16 = model(x)
    assert z16.dtype == x_hat.dtype == gamma16.dtype == torch.float32
    layout = FlatLayout.of(model)
    out = local_train(model, layout, TrainState(layout.flatten(model)), x, x[:, 0], spec=BF16, seed=1, stop_step=5)
    assert torch.isfinite(out.state.flat).all() and math.isfinite(out.loss)


def test_auto_picks_bf16_only_on_native_hardware_and_says_why():
    assert resolve_precision("auto", "cpu", native=lambda d: (True, "cpu has avx512_bf16")) == ("bf16-mixed", "bf16-mixed (auto: cpu has avx512_bf16)")
    chosen, why = resolve_precision("auto", "cpu", native=lambda d: native_bf16(d, flags={"avx2", "fma"}))
    assert chosen == "32" and why == "32 (auto: cpu has neither avx512_bf16 nor amx_bf16)"
    assert resolve_precision("32", "cpu", native=lambda d: pytest.fail("32 needs no probe")) == ("32", "32 (compute.precision=32)")
    assert native_bf16("cpu", flags={"amx_bf16", "avx512_bf16"}) == (True, "cpu has avx512_bf16 and amx_bf16")


def test_explicit_bf16_without_native_support_warns_once_in_one_line(monkeypatch, caplog):
    monkeypatch.setattr(precision, "_warned", set())
    no_bf16 = lambda d: native_bf16(d, flags={"avx2"})  # noqa: E731
    with caplog.at_level(logging.WARNING, logger="fedsim.train.precision"):
        assert resolve_precision("bf16-mixed", "cpu", native=no_bf16)[0] == "bf16-mixed"
        assert resolve_precision("bf16-mixed", "cpu", native=no_bf16)[0] == "bf16-mixed"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0] and "slower" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fedsim.train.precision"):
        resolve_precision("bf16-mixed", "cpu", native=lambda d: (True, "native"))
    assert not caplog.records


def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu sse avx512_bf16\n")
    assert cpu_flags(str(info)) == {"fpu", "sse", "avx512_bf16"}
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()
