"""Write a quantized ``Net`` as a lava-dl netx HDF5 file (``network.net``).

netx (lava-dl 0.6.0, ``lava.lib.dl.netx.hdf5``) describes a chain of layers, each a synapse
and a CUBA neuron group: ``dense`` or ``dense_rec`` (with a recurrent weight). It stores integer
weights (re-optimised to 8-bit mantissas when loaded, clipped to [-256, 254]), one
``iDecay = du + 1``, ``vDecay = dv`` and ``vThMant`` per layer, and biases loaded with exponent
6. Layers are dense, so their size is bounded (``NETX_MAX_LAYER_WEIGHTS``). ``problems`` lists
every reason a net cannot be written exactly; ``write`` refuses such nets.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from snn_deploy.ir.net import Net
from snn_deploy.ir.types import ResetMode

NETX_WEIGHT_RANGE = (-256, 254)
"""lava-dl netx/utils.py optimize_weight_bits clips mixed-sign weights to this range."""
NETX_BIAS_EXP = 6
"""lava-dl netx/hdf5.py get_neuron_params loads CUBA biases with this exponent."""
NETX_MAX_LAYER_WEIGHTS = 128 * 128 * 1024
"""The most entries this writer puts in one layer's weight matrix: one Loihi 2 chip's synaptic
memory at 8 bits per weight (128 cores x 128 KB, Intel's 2021 Loihi 2 brief). netx stores every
weight of a ``dense`` layer, zeros included, so a convolution lowered to a matrix grows as (C·H·W)^2
(the 10^8-synapse conv benchmark: 151,552^2 entries, 86 GB as float32); the IR keeps no conv
geometry from which to write netx ``conv`` layers."""


def _chain(net: Net) -> list[str]:
    return list(net.populations)


def problems(net: Net) -> list[str]:
    """Why ``net`` cannot be written as a netx file exactly (empty: it can)."""
    found: list[str] = [
        f"{name}: netx has no layer type for a product unit ({type(unit).__name__}); "
        "network.npz holds it"
        for name, unit in net.products.items()
    ]
    if len(net.inputs) != 1:
        found.append(f"netx has one input layer; the net has {len(net.inputs)}")
        return found
    (source,) = net.inputs
    chain = _chain(net)
    for i, name in enumerate(chain):
        pop = net.populations[name]
        f = pop.fixed
        assert f is not None
        previous = source if i == 0 else chain[i - 1]
        for proj in net.incoming(name):
            entries = proj.weight.shape[0] * proj.weight.shape[1]
            if entries > NETX_MAX_LAYER_WEIGHTS:
                found.append(
                    f"{proj.name}: netx layers are dense; {proj.weight.shape[0]} x "
                    f"{proj.weight.shape[1]} = {entries:,} weights exceed the "
                    f"{NETX_MAX_LAYER_WEIGHTS:,} of one Loihi 2 chip at 8 bits per weight"
                )
            if proj.src not in (previous, name):
                found.append(f"{proj.name}: {proj.src} -> {name} is not a chain or self connection")
            if proj.delay:
                found.append(f"{proj.name}: synaptic delays are not written")
            assert proj.fixed is not None
            weights = proj.fixed.codes.data.astype(np.int64) << max(proj.fixed.exp, 0)
            if proj.fixed.exp < 0 or (
                weights.size
                and not (
                    NETX_WEIGHT_RANGE[0] <= weights.min() and weights.max() <= NETX_WEIGHT_RANGE[1]
                )
            ):
                found.append(
                    f"{proj.name}: weights (codes << {proj.fixed.exp}) leave the netx "
                    f"integer range {list(NETX_WEIGHT_RANGE)}"
                )
        if not any(p.src == previous for p in net.incoming(name)):
            found.append(f"{name}: not fed by {previous}, so the layers are not a chain")
        if not pop.spiking or pop.reset is not ResetMode.ZERO:
            found.append(f"{name}: netx CUBA layers spike and reset to zero")
        if pop.levels > 1:
            found.append(f"{name}: {pop.levels} spike levels; netx CUBA layers send binary spikes")
        for field in ("du", "dv", "vth"):
            if getattr(f, field) is not None and len(np.unique(getattr(f, field))) != 1:
                found.append(f"{name}: netx holds one {field} per layer")
        bias = np.where(f.bias_exp >= 0, f.bias_mant << np.maximum(f.bias_exp, 0), 0)
        if np.any(bias % (1 << NETX_BIAS_EXP)) or np.any(f.bias_exp < 0):
            found.append(
                f"{name}: biases must be multiples of 2**{NETX_BIAS_EXP} (netx bias exponent)"
            )
    return found


def write(net: Net, path: Path) -> None:
    """Write ``net`` to ``path`` in netx format.

    Raises:
        ValueError: ``problems(net)`` is not empty.
    """
    found = problems(net)
    if found:
        raise ValueError("not expressible as netx: " + "; ".join(found))
    (source,) = net.inputs
    with h5py.File(path, "w") as h5:
        layers = h5.create_group("layer")
        first = layers.create_group("0")
        first.create_dataset("type", data=np.array([b"input"], dtype="S10"))
        first.create_dataset("shape", data=np.array([net.size_of(source)]))
        for i, name in enumerate(_chain(net), start=1):
            pop = net.populations[name]
            f = pop.fixed
            assert f is not None
            assert f.vth is not None
            layer = layers.create_group(str(i))
            recurrent = [p for p in net.incoming(name) if p.src == name]
            forward = [p for p in net.incoming(name) if p.src != name]
            layer.create_dataset(
                "type", data=np.array([b"dense_rec" if recurrent else b"dense"], dtype="S10")
            )
            layer.create_dataset("shape", data=np.array([pop.size]))
            layer.create_dataset("inFeatures", data=forward[0].weight.shape[1])
            layer.create_dataset("outFeatures", data=pop.size)
            layer.create_dataset("weight", data=_weights(forward))
            if recurrent:
                layer.create_dataset("weight_rec", data=_weights(recurrent))
            bias = (f.bias_mant << f.bias_exp) >> NETX_BIAS_EXP
            if np.any(bias):
                layer.create_dataset("bias", data=bias.astype(np.float32))
            neuron = layer.create_group("neuron")
            neuron.create_dataset("type", data="CUBA")
            neuron.create_dataset("iDecay", data=int(f.du[0]) + 1)
            neuron.create_dataset("vDecay", data=int(f.dv[0]))
            neuron.create_dataset("vThMant", data=int(f.vth[0]))
            neuron.create_dataset("refDelay", data=1)
            neuron.create_dataset("gradedSpike", data=False)


def _weights(projections: list) -> np.ndarray:  # type: ignore[type-arg]
    """The summed weights (codes << exponent) as one dense float32 matrix, built in place:
    netx layers are dense, so a conv layer's matrix is large and no int64 copy is made."""
    total = np.zeros(projections[0].fixed.codes.shape, dtype=np.float32)
    for p in projections:
        m = p.fixed.codes.tocoo()
        total[m.row, m.col] += (m.data << max(p.fixed.exp, 0)).astype(np.float32)  # no duplicates
    return total
