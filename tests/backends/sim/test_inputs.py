"""Input validation of integer runs: integer-typed inputs skip the float64 copy, and every
value is still checked (the same errors as float inputs), on both kernels."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from snn_deploy.backends.base import check_inputs
from snn_deploy.backends.sim.run import simulate
from snn_deploy.errors import InputFileError
from tests.backends.sim.test_against_reference import random_net

NET = random_net(np.random.default_rng(3), delay=1)
X = np.random.default_rng(4).integers(-3, 4, (2, 12, 6))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint64, np.float64])
@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_every_numeric_dtype_runs_the_same(dtype, kernel):
    x = np.abs(X) if np.dtype(dtype).kind == "u" else X
    want = simulate(NET, {"x": x.astype(np.float64)}, kernel="numpy")
    got = simulate(NET, {"x": x.astype(dtype)}, kernel=kernel)
    for name, arr in want.populations.items():
        assert_array_equal(got.populations[name], arr)


def test_binary_inputs_may_be_bool():
    x = X > 0
    want = simulate(NET, {"x": x.astype(np.int64)})
    assert_array_equal(simulate(NET, {"x": x}).outputs["y"], want.outputs["y"])


def test_int64_inputs_are_not_copied():
    x = X.astype(np.int64)
    assert np.shares_memory(check_inputs(NET, {"x": x}, integer=True)["x"], x)


@pytest.mark.parametrize(
    ("value", "dtype", "message"),
    [
        (2**53 + 1, np.int64, "has value 9.0072e\\+15 at \\[1, 2, 3\\], beyond the largest"),
        (-(2**63), np.int64, "has value -9.22337e\\+18 at \\[1, 2, 3\\], beyond the largest"),
        (2**64 - 1, np.uint64, "has value 1.84467e\\+19 at \\[1, 2, 3\\], beyond the largest"),
        (np.nan, np.float64, "contains NaN or inf"),
        (-np.inf, np.float64, "contains NaN or inf"),
        (0.5, np.float64, "has non-integer values"),
        (1e30, np.float64, "has value 1e\\+30 at \\[1, 2, 3\\], beyond the largest"),
    ],
)
@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_every_value_is_checked(value, dtype, message, kernel):
    x = np.abs(X).astype(dtype)
    x[1, 2, 3] = value
    with pytest.raises(InputFileError, match=message):
        simulate(NET, {"x": x}, kernel=kernel)
