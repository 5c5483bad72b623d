"""The read side's JSON rules (tb_gradflow/route_json.py): the export's compact norms read back as
exactly the routes' norms, over the whole float32 range and every special value."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tb_gradflow import route_json as R
from tb_gradflow import vocabulary as V

_SPECIALS = [np.nan, np.inf, -np.inf, 0.0]


def _read_back(digits: np.ndarray, exponents: np.ndarray) -> list:
    """What the page does (export_source.ts `Norms.at`): a special, or the number nearest
    digits * 10**exponent, which Python's float() of that text gives as JavaScript's Number()."""
    return [
        R.NORM_SPECIALS[d] if e == R.SPECIAL_EXPONENT else float(f"{d}e{e}")
        for d, e in zip(digits.tolist(), exponents.tolist(), strict=True)
    ]


def _same(a: list, b: list) -> bool:
    return json.dumps(a) == json.dumps(b)  # 0.0 and 0, "nan" and None told apart


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(width=32, allow_nan=False, allow_infinity=False), st.sampled_from(_SPECIALS)
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 2**32 - 1),
)
def test_export_norms_read_back_as_the_routes_write_them(norms, seed):
    values = np.array(norms, np.float32)
    codes = np.random.default_rng(seed).integers(0, len(V.STATES), len(values)).astype(np.uint8)
    digits, exponents = R.norm_digits(codes, values)
    assert digits.dtype == np.int32 and exponents.dtype == np.int8
    assert _same(_read_back(digits, exponents), R.norms_json(codes, values))


def test_extremes_and_specials():
    values = np.array(
        [
            3.4e38,
            1e-45,
            1.17549435e-38,
            123456.7,
            9.9999997e-18,
            0.999999,
            9.999996,
            np.nan,
            np.nan,
            np.inf,
            -np.inf,
            0.0,
        ],
        np.float32,
    )
    codes = np.full(len(values), V.STATE_CODE[V.FLOWING], np.uint8)
    codes[8] = V.STATE_CODE[V.NONFINITE]
    routes = R.norms_json(codes, values)
    assert routes[7:] == [None, "nan", "inf", "-inf", 0.0]
    assert routes[0] == 3.4e38 and routes[3] == 123457.0 and routes[6] == 10.0
    assert _same(_read_back(*R.norm_digits(codes, values)), routes)
    # a matrix (steps x ops) gives the same as its rows one by one
    matrix = np.stack([values, values[::-1]])
    both = R.norm_digits(np.stack([codes, codes[::-1]]), matrix)
    assert _same(_read_back(both[0][1], both[1][1]), R.norms_json(codes[::-1], values[::-1]))


def test_graph_route_names_each_variables_layer_by_the_one_rule():
    """The tab groups the Layers view by the `layer` column and restates no rule: a TensorFlow
    name scope, a torch parameter's module path, or the name itself."""
    from tb_gradflow.proto import gradflow_pb2

    graph = gradflow_pb2.Graph()
    for name in ("vae/encoder/dense/kernel", "encoder.0.weight", "w"):
        graph.variables.add(name=name)
    assert R.variable_columns(graph)["layer"] == ["vae/encoder/dense", "encoder.0", "w"]
