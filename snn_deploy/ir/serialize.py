"""Save and load a ``Net`` as one ``.npz``: a JSON header plus named arrays (no pickle).

The arrays are deflated at level 1: at 10^8 synapses numpy's default level 6 took 42 s for a
file 2x smaller (docs/PERFORMANCE.md); members carry a fixed timestamp, so bytes are
reproducible.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from snn_deploy.errors import InputFileError
from snn_deploy.ir.net import (
    Attention,
    Gate,
    Net,
    NeuronFixed,
    NumericSpec,
    Operand,
    Placement,
    Population,
    Product,
    ProductFixed,
    Projection,
    SynapseFixed,
)
from snn_deploy.ir.types import FixedPoint, Overflow, ResetMode

FORMAT = "snn-deploy-net/1"


def to_bytes(net: Net) -> bytes:
    """Serialise ``net`` deterministically (same net, same bytes)."""
    arrays: dict[str, npt.NDArray[Any]] = {}
    pops = []
    for i, p in enumerate(net.populations.values()):
        for f in ("alpha", "beta", "bias", "threshold"):
            if getattr(p, f) is not None:
                arrays[f"pop{i}.{f}"] = getattr(p, f)
        if p.fixed is not None:
            for f in ("du", "dv", "vth", "bias_mant", "bias_exp"):
                if getattr(p.fixed, f) is not None:
                    arrays[f"pop{i}.fixed.{f}"] = getattr(p.fixed, f)
        pops.append(
            {
                "name": p.name,
                "node_type": p.node_type,
                "shape": list(p.shape),
                "reset": p.reset.value,
                "levels": p.levels,
                "voltage_scale": p.voltage_scale,
                "placement": None
                if p.placement is None
                else [[r.start, r.stop, r.chip, r.core] for r in p.placement],
                "spiking": p.spiking,
                "scale": None if p.fixed is None else p.fixed.scale,
            }
        )
    projs = []
    for i, proj in enumerate(net.projections):
        _put_csr(arrays, f"proj{i}.weight", proj.weight)
        if proj.fixed is not None:
            _put_csr(arrays, f"proj{i}.codes", proj.fixed.codes)
        projs.append(
            {
                "name": proj.name,
                "src": proj.src,
                "dst": proj.dst,
                "delay": proj.delay,
                "exp": None if proj.fixed is None else proj.fixed.exp,
                "rounding": None if proj.fixed is None else proj.fixed.rounding,
            }
        )
    units = []
    for i, unit in enumerate(net.products.values()):
        for j, op in enumerate(unit.operands):
            arrays[f"unit{i}.operand{j}"] = op.index
        units.append(_product_to_json(unit))
    header = {
        "format": FORMAT,
        "dt": net.dt,
        "inputs": {k: list(v) for k, v in net.inputs.items()},
        "outputs": dict(net.outputs),
        "populations": pops,
        "projections": projs,
        "numeric": None if net.numeric is None else _numeric_to_json(net.numeric),
        "products": units,
    }
    arrays = {"header": np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", allowZip64=True) as zf:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)  # type: ignore[no-untyped-call]
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, member.getbuffer(), zipfile.ZIP_DEFLATED, compresslevel=1)
    return buf.getvalue()


def load(path: Path) -> Net:
    """Read a net written by ``to_bytes``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays: dict[str, npt.NDArray[Any]] = {k: z[k] for k in z.files}
        header = json.loads(arrays.pop("header").tobytes())
    except Exception as exc:
        raise InputFileError(f"{path} is not an snn-deploy network file: {exc}") from exc
    if header.get("format") != FORMAT:
        raise InputFileError(f"{path}: unknown network format {header.get('format')!r}")
    pops = {}
    for i, p in enumerate(header["populations"]):

        def get(f: str, i: int = i) -> npt.NDArray[Any] | None:
            return arrays.get(f"pop{i}.{f}")

        def need(f: str) -> npt.NDArray[Any]:  # to_bytes writes these for every population
            return cast(npt.NDArray[Any], get(f))

        fixed = None
        if p["scale"] is not None:
            fixed = NeuronFixed(
                scale=p["scale"],
                du=need("fixed.du"),
                dv=need("fixed.dv"),
                vth=get("fixed.vth"),
                bias_mant=need("fixed.bias_mant"),
                bias_exp=need("fixed.bias_exp"),
            )
        pops[p["name"]] = Population(
            name=p["name"],
            node_type=p["node_type"],
            shape=tuple(p["shape"]),
            alpha=need("alpha"),
            beta=need("beta"),
            bias=need("bias"),
            threshold=get("threshold"),
            reset=ResetMode(p["reset"]),
            levels=p.get("levels", 1),  # written since multi-level spikes; older files: binary
            voltage_scale=p["voltage_scale"],
            fixed=fixed,
            placement=None
            if p["placement"] is None
            else tuple(Placement(start=a, stop=b, chip=c, core=k) for a, b, c, k in p["placement"]),
        )
    projs = []
    for i, p in enumerate(header["projections"]):
        syn_fixed = (
            None
            if p["exp"] is None
            else SynapseFixed(
                codes=_get_csr(arrays, f"proj{i}.codes"),
                exp=p["exp"],
                rounding=p.get("rounding", "nearest"),  # written since compensated rounding
            )
        )
        projs.append(
            Projection(
                name=p["name"],
                src=p["src"],
                dst=p["dst"],
                delay=p["delay"],
                weight=_get_csr(arrays, f"proj{i}.weight"),
                fixed=syn_fixed,
            )
        )
    net = Net(
        dt=header["dt"],
        inputs={k: tuple(v) for k, v in header["inputs"].items()},
        populations=pops,
        projections=tuple(projs),
        outputs=header["outputs"],
        numeric=None if header["numeric"] is None else _numeric_from_json(header["numeric"]),
        products={  # written since product units; older files have none
            u["name"]: _product_from_json(
                u, [arrays[f"unit{i}.operand{j}"] for j in range(len(u["sources"]))]
            )
            for i, u in enumerate(header.get("products", []))
        },
    )
    net.verify()
    return net


def _register_json(reg: FixedPoint | None) -> dict[str, Any] | None:
    return None if reg is None else {**dataclasses.asdict(reg), "overflow": reg.overflow.value}


def _register_from(raw: dict[str, Any] | None) -> FixedPoint | None:
    return None if raw is None else FixedPoint(**{**raw, "overflow": Overflow(raw["overflow"])})


def _product_to_json(unit: Product) -> dict[str, Any]:
    """The unit's fields (operand indices go to the arrays ``unit{i}.operand{j}``)."""
    out: dict[str, Any] = {
        "kind": type(unit).__name__,
        "name": unit.name,
        "size": unit.size,
        "sources": [op.src for op in unit.operands],
        "fixed": None
        if unit.fixed is None
        else {
            "output": _register_json(unit.fixed.output),
            "state": _register_json(unit.fixed.state),
            "shift": unit.fixed.shift,
            "scale": unit.fixed.scale,
        },
    }
    if isinstance(unit, Attention):
        out.update(heads=unit.heads, decay=list(unit.decay), causal=unit.causal, steps=unit.steps)
    return out


def _product_from_json(raw: dict[str, Any], indices: list[npt.NDArray[Any]]) -> Product:
    ops = [Operand(src=s, index=i) for s, i in zip(raw["sources"], indices, strict=True)]
    f = raw["fixed"]
    fixed = None
    if f is not None:
        output = _register_from(f["output"])
        assert output is not None  # to_bytes writes every unit's output register
        fixed = ProductFixed(
            output=output, state=_register_from(f["state"]), shift=f["shift"], scale=f["scale"]
        )
    if raw["kind"] == "Attention":
        q, k, v = ops
        return Attention(
            name=raw["name"],
            size=raw["size"],
            heads=raw["heads"],
            q=q,
            k=k,
            v=v,
            decay=tuple(raw["decay"]),
            causal=raw["causal"],
            steps=raw["steps"],
            fixed=fixed,
        )
    a, g = ops
    return Gate(name=raw["name"], size=raw["size"], a=a, g=g, fixed=fixed)


def _put_csr(arrays: dict[str, npt.NDArray[Any]], key: str, m: sp.csr_matrix) -> None:
    arrays[key + ".data"], arrays[key + ".indices"], arrays[key + ".indptr"] = (
        m.data,
        m.indices,
        m.indptr,
    )
    arrays[key + ".shape"] = np.array(m.shape)


def _get_csr(arrays: dict[str, npt.NDArray[Any]], key: str) -> sp.csr_matrix:
    parts = (arrays[key + ".data"], arrays[key + ".indices"], arrays[key + ".indptr"])
    return sp.csr_matrix(parts, shape=tuple(arrays[key + ".shape"]))


def _numeric_to_json(spec: NumericSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        out[f.name] = (
            {**dataclasses.asdict(value), "overflow": value.overflow.value}
            if isinstance(value, FixedPoint)
            else value
        )
    return out


def _numeric_from_json(raw: dict[str, Any]) -> NumericSpec:
    kwargs: dict[str, Any] = {
        k: (FixedPoint(**{**v, "overflow": Overflow(v["overflow"])}) if isinstance(v, dict) else v)
        for k, v in raw.items()
    }
    return NumericSpec(**kwargs)
