"""Save and load a ``Net`` as one ``.npz``: a JSON header plus named arrays (no pickle).

The arrays are deflated at level 1: at 10^8 synapses numpy's default level 6 took 42 s for a
file 2x smaller (docs/PERFORMANCE.md); members carry a fixed timestamp, so bytes are
reproducible.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from snn_deploy.ir.types import (
    Accumulation,
    CurrentUpdate,
    DecayForm,
    FixedPoint,
    Overflow,
    ResetMode,
    ResetTiming,
    ThresholdCompare,
    VoltageUpdate,
    WeightExpScope,
)
from snn_deploy.limits import check_array, read_npz

FORMAT = "snn-deploy-net/1"


def to_bytes(net: Net) -> bytes:
    """Serialise ``net`` deterministically (same net, same bytes)."""
    arrays: dict[str, npt.NDArray[Any]] = {}
    pops = []
    for i, p in enumerate(net.populations.values()):
        for f in ("alpha", "beta", "bias", "threshold", "alpha2"):  # None: not written
            if getattr(p, f) is not None:
                arrays[f"pop{i}.{f}"] = getattr(p, f)
        if p.fixed is not None:
            for f in ("du", "dv", "vth", "bias_mant", "bias_exp", "du2"):
                if getattr(p.fixed, f) is not None:
                    arrays[f"pop{i}.fixed.{f}"] = getattr(p.fixed, f)
        pops.append(
            {
                "name": p.name,
                "node_type": p.node_type,
                "shape": list(p.shape),
                "reset": p.reset.value,
                "levels": p.levels,
                "reset_timing": p.reset_timing.value,
                "threshold_compare": p.threshold_compare.value,
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
        entry = {
            "name": proj.name,
            "src": proj.src,
            "dst": proj.dst,
            "delay": proj.delay,
            "exp": None if proj.fixed is None else proj.fixed.exp,
            "rounding": None if proj.fixed is None else proj.fixed.rounding,
        }
        if proj.synapse != 0:  # written only when not the default: older folders stay the same
            entry["synapse"] = proj.synapse
        projs.append(entry)
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
    if net.input_latency != 1:  # written only when not the default: Lava folders stay the same
        header["input_latency"] = net.input_latency
    arrays = {"header": np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", allowZip64=True) as zf:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)  # type: ignore[no-untyped-call]
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, member.getbuffer(), zipfile.ZIP_DEFLATED, compresslevel=1)
    return buf.getvalue()


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


def load(path: Path) -> Net:
    """Read a net written by ``to_bytes``, checking every array before it is used.

    The arrays' declared sizes must fit ``max_memory()``; each array must have the dtype and
    shape its header entry implies, floats must be finite, sparse indices must lie inside the
    matrix, and integer codes inside the widths of the file's ``numeric`` formats.

    Raises:
        InputFileError: the file is not a valid network file.
        ResourceLimitError: its arrays would need more memory than allowed.
    """
    arrays = read_npz(path)
    raw = check_array(path, "header", arrays.pop("header", None), kinds="u", shape=(None,))
    try:
        header = json.loads(raw.tobytes())
    except ValueError as exc:
        raise InputFileError(f"{path}: the network header is not JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else header
        raise InputFileError(f"{path}: unknown network format {found!r}")
    try:
        net = _net(_Arrays(path, arrays), header)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputFileError(
            f"{path}: malformed network header ({type(exc).__name__}: {exc})"
        ) from exc
    net.verify()
    return net


@dataclass(frozen=True)
class _Arrays:
    """The arrays of one file, handed out only through ``check_array``."""

    path: Path
    arrays: dict[str, npt.NDArray[Any]]

    def get(self, key: str, **checks: Any) -> npt.NDArray[Any] | None:
        value = self.arrays.get(key)
        return None if value is None else check_array(self.path, key, value, **checks)

    def need(self, key: str, **checks: Any) -> npt.NDArray[Any]:
        if key not in self.arrays:
            raise InputFileError(f"{self.path}: array {key!r} is missing")
        return check_array(self.path, key, self.arrays[key], **checks)

    def csr(self, key: str, shape: tuple[int, int], fmt: FixedPoint | None) -> sp.csr_matrix:
        """A CSR matrix whose index arrays are checked before scipy sees them (scipy trusts them
        and can crash on out-of-range indices); ``fmt``: integer codes in its range."""
        rows, cols = (int(d) for d in self.need(key + ".shape", kinds="iu", shape=(2,), low=0))
        if (rows, cols) != shape:
            raise InputFileError(f"{self.path}: {key} is {[rows, cols]}; expected {list(shape)}")
        indptr = self.need(key + ".indptr", kinds="iu", shape=(rows + 1,), low=0)
        nnz = int(indptr[-1])
        if indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise InputFileError(f"{self.path}: {key}.indptr does not rise from 0")
        indices = self.need(key + ".indices", kinds="iu", shape=(nnz,), low=0, high=cols - 1)
        if fmt is None:
            data = self.need(key + ".data", kinds="f", shape=(nnz,))
        else:
            data = self.need(key + ".data", kinds="i", shape=(nnz,), low=fmt.min, high=fmt.max)
        return sp.csr_matrix((data, indices, indptr), shape=shape)


def _net(arrays: _Arrays, header: dict[str, Any]) -> Net:
    """Build the net of a checked header; every array goes through ``arrays``' checks."""
    numeric = None if header["numeric"] is None else _numeric_from_json(header["numeric"])
    pops = {}
    for i, p in enumerate(header["populations"]):
        shape = tuple(
            int(d)
            for d in check_array(
                arrays.path, f"pop{i}.shape", p["shape"], kinds="iu", shape=(None,), low=0
            )
        )
        size = math.prod(shape)

        def codes(f: str, fmt: FixedPoint, size: int = size, i: int = i) -> npt.NDArray[Any]:
            return arrays.need(
                f"pop{i}.fixed.{f}", kinds="i", shape=(size,), low=fmt.min, high=fmt.max
            )

        threshold = arrays.get(f"pop{i}.threshold", kinds="f", shape=(size,))
        alpha2 = arrays.get(f"pop{i}.alpha2", kinds="f", shape=(size,))  # a second current
        fixed = None
        if p["scale"] is not None:
            if numeric is None:
                raise InputFileError(
                    f"{arrays.path}: pop{i} has integer parameters but the "
                    "file has no numeric formats"
                )
            fixed = NeuronFixed(
                scale=float(p["scale"]),
                du=codes("du", numeric.decay),
                dv=codes("dv", numeric.decay),
                vth=None if threshold is None else codes("vth", numeric.threshold),
                bias_mant=codes("bias_mant", numeric.bias),
                bias_exp=arrays.need(
                    f"pop{i}.fixed.bias_exp",
                    kinds="i",
                    shape=(size,),
                    low=numeric.bias_exp_min,
                    high=numeric.bias_exp_max,
                ),
                du2=None if alpha2 is None else codes("du2", numeric.decay),
            )
        placement = None
        if p["placement"] is not None:
            ranges = check_array(
                arrays.path,
                f"pop{i}.placement",
                p["placement"] or np.zeros((0, 4), np.int64),
                kinds="iu",
                shape=(None, 4),
                low=0,
            )
            placement = tuple(
                Placement(start=int(a), stop=int(b), chip=int(c), core=int(k))
                for a, b, c, k in ranges
            )
        pops[p["name"]] = Population(
            name=p["name"],
            node_type=p["node_type"],
            shape=shape,
            alpha=arrays.need(f"pop{i}.alpha", kinds="f", shape=(size,)),
            beta=arrays.need(f"pop{i}.beta", kinds="f", shape=(size,)),
            bias=arrays.need(f"pop{i}.bias", kinds="f", shape=(size,)),
            threshold=threshold,
            reset=ResetMode(p["reset"]),
            levels=p.get("levels", 1),  # written since multi-level spikes; older files: binary
            # written since reset timings and compares; older files: immediate, >
            reset_timing=ResetTiming(p.get("reset_timing", ResetTiming.IMMEDIATE.value)),
            threshold_compare=ThresholdCompare(p.get("threshold_compare", ">")),
            voltage_scale=p["voltage_scale"],
            alpha2=alpha2,
            fixed=fixed,
            placement=placement,
        )
    inputs = {
        k: tuple(
            int(d)
            for d in check_array(arrays.path, f"inputs[{k!r}]", v, kinds="iu", shape=(None,), low=0)
        )
        for k, v in header["inputs"].items()
    }
    sizes = {
        **{k: math.prod(v) for k, v in inputs.items()},
        **{k: pop.size for k, pop in pops.items()},
    }
    products = {}
    for i, u in enumerate(header.get("products", [])):  # written since product units
        operands = [
            arrays.need(
                f"unit{i}.operand{j}", kinds="iu", shape=(None,), low=0, high=sizes[src] - 1
            )
            for j, src in enumerate(u["sources"])
        ]
        products[u["name"]] = _product_from_json(u, operands)
        sizes[u["name"]] = products[u["name"]].size
    projs = []
    for i, p in enumerate(header["projections"]):
        shape = (sizes[p["dst"]], sizes[p["src"]])
        syn_fixed = None
        if p["exp"] is not None:
            if numeric is None:
                raise InputFileError(
                    f"{arrays.path}: proj{i} has integer weights but the file "
                    "has no numeric formats"
                )
            exp = int(
                check_array(
                    arrays.path,
                    f"proj{i}.exp",
                    p["exp"],
                    kinds="i",
                    shape=(),
                    low=numeric.weight_exp_min,
                    high=numeric.weight_exp_max,
                )
            )
            syn_fixed = SynapseFixed(
                codes=arrays.csr(f"proj{i}.codes", shape, numeric.weight),
                exp=exp,
                rounding=p.get("rounding", "nearest"),  # written since compensated rounding
            )
        projs.append(
            Projection(
                name=p["name"],
                src=p["src"],
                dst=p["dst"],
                delay=int(
                    check_array(
                        arrays.path, f"proj{i}.delay", p["delay"], kinds="i", shape=(), low=0
                    )
                ),
                weight=arrays.csr(f"proj{i}.weight", shape, None),
                synapse=int(  # written since second synaptic currents; Net.verify checks it
                    check_array(
                        arrays.path,
                        f"proj{i}.synapse",
                        p.get("synapse", 0),
                        kinds="i",
                        shape=(),
                        low=0,
                        high=1,
                    )
                ),
                fixed=syn_fixed,
            )
        )
    return Net(
        dt=float(check_array(arrays.path, "dt", header["dt"], kinds="fi", shape=())),
        inputs=inputs,
        populations=pops,
        projections=tuple(projs),
        outputs=header["outputs"],
        numeric=numeric,
        products=products,
        input_latency=int(header.get("input_latency", 1)),
    )


def _numeric_to_json(spec: NumericSpec) -> dict[str, Any]:
    """The formats as JSON; the generalisations of Lava's arithmetic (fields with a default)
    only where they differ from it, so a Lava net's file is what it was before they existed."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        if isinstance(value, FixedPoint):
            out[f.name] = {**dataclasses.asdict(value), "overflow": value.overflow.value}
        else:
            out[f.name] = value.value if isinstance(value, enum.Enum) else value
    return out


def _numeric_from_json(raw: dict[str, Any]) -> NumericSpec:
    fields = {f.name: f for f in dataclasses.fields(NumericSpec)}
    kwargs: dict[str, Any] = {}
    for k, v in raw.items():
        kind = fields[k].type if k in fields else None
        if isinstance(v, dict):
            kwargs[k] = FixedPoint(**{**v, "overflow": Overflow(v["overflow"])})
        elif isinstance(kind, str) and kind in _ENUMS:
            kwargs[k] = _ENUMS[kind](v)
        else:
            kwargs[k] = v
    return NumericSpec(**kwargs)


_ENUMS: dict[str, type[enum.Enum]] = {
    "DecayForm": DecayForm,
    "CurrentUpdate": CurrentUpdate,
    "Accumulation": Accumulation,
    "VoltageUpdate": VoltageUpdate,
    "WeightExpScope": WeightExpScope,
}
