"""Equivalence: the torch kernel (``kernel="torch"``) == the NumPy reference (``kernel="numpy"``),
bit for bit (outputs, ``u``, ``v``, product units), on the compiled kernel's Hypothesis nets;
on the CPU here, on CUDA where torch sees a GPU."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from snn_deploy.backends.sim.run import simulate
from snn_deploy.ir.net import Net
from tests.backends.sim.test_against_reference import random_net
from tests.backends.sim.test_compiled import (
    generalised,
    nets,
    product_case,
    with_second_currents,
)
from tests.backends.sim.test_products import cases


def assert_torch_equals_numpy(net: Net, x: dict[str, np.ndarray]) -> None:
    want = simulate(net, x, kernel="numpy", record_state=True)
    got = simulate(net, x, kernel="torch", record_state=True)
    for part in ("populations", "u", "u2", "v", "outputs", "products"):
        for name, arr in getattr(want, part).items():
            assert getattr(got, part)[name].dtype == np.int64
            assert_array_equal(getattr(got, part)[name], arr, err_msg=f"{part} {name}")


@settings(max_examples=60, deadline=None)
@given(case=nets())
def test_torch_equals_numpy_on_random_nets(case):
    net, x = case
    assert_torch_equals_numpy(net, {"x": x})


@settings(max_examples=60, deadline=None)
@given(case=generalised())
def test_torch_equals_numpy_on_every_numeric_format(case):
    net, x = case
    assert_torch_equals_numpy(net, {"x": x})


@settings(max_examples=40, deadline=None)
@given(case=st.one_of(nets(), generalised()), seed=st.integers(0, 2**16))
def test_torch_equals_numpy_with_second_currents(case, seed):
    net, x = case
    net = with_second_currents(net, np.random.default_rng(seed))
    assert_torch_equals_numpy(net, {"x": x})


def test_progress_after_every_step():
    net = random_net(np.random.default_rng(1), delay=1)
    calls: list[tuple[int, int]] = []
    simulate(
        net,
        {"x": np.ones((2, 7, 6), np.int64)},
        kernel="torch",
        progress=lambda *a: calls.append(a),
    )
    assert calls == [(t, 7) for t in range(1, 8)]


@settings(max_examples=15, deadline=None)
@given(case=cases(), seed=st.integers(0, 2**16), narrow=st.sampled_from([0, 3]))
def test_torch_equals_numpy_on_product_units(case, seed, narrow):
    net, x = product_case(case, seed, narrow)
    assert_torch_equals_numpy(net, {"x": x})


def test_torch_kernel_is_integer_only():
    net = random_net(np.random.default_rng(0))
    with pytest.raises(ValueError, match="torch kernel runs integer simulations only"):
        simulate(net, {"x": np.ones((1, 3, 6))}, fixed=False, kernel="torch")
