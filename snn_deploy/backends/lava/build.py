"""Build and run the Lava process graph of a ``LavaProgram`` (imports Lava)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from snn_deploy.backends.base import Progress, Trace, check_inputs
from snn_deploy.backends.lava.compat import import_lava
from snn_deploy.backends.lava.program import LavaProgram
from snn_deploy.errors import BackendUnavailableError
from snn_deploy.ir.net import Attention, Net, Product

DENSE_ABOVE = 0.1
"""Weight density above which a connection is a Lava ``Dense`` rather than ``Sparse``."""


@dataclass(frozen=True, slots=True)
class LavaNetwork:
    """The Lava processes of one run; connect more, or run it yourself.

    Every block's process has one neuron per neuron of its population, and only the block's
    own (``LifBlock.neurons``) are live; the others stay silent at ``u = v = 0``.

    Attributes:
        sources: input name -> its ``RingBuffer``.
        neurons: block name -> its ``LIF`` (or ``MultiLevelLIF``, ``VoltageLIF``).
        units: product unit name -> its ``Attention`` or ``Gate`` (``products.py``).
        synapses: synapse block name -> its ``Dense``/``Sparse``/``DelayDense``/``DelaySparse``.
        monitors: (block or unit name, variable) -> ``Monitor`` probing it.
        steps: the number of steps the sources hold.
    """

    sources: Mapping[str, Any]
    neurons: Mapping[str, Any]
    units: Mapping[str, Any]
    synapses: Mapping[str, Any]
    monitors: Mapping[tuple[str, str], Any]
    steps: int

    def run(self) -> None:
        """Run all steps in Lava's fixed-point CPU simulation, then stop the runtime.

        Every process of our own (``MultiLevelLIF``; ``Attention``, ``Gate``, ``VoltageLIF``)
        is given its model in ``exception_proc_model_map``, keyed by class (as
        ``RunConfig.select`` reads it) and by instance: Lava 0.10.0's compiler looks the map
        up with the process instance, and otherwise searches for models by importing every
        module beside the process's own, which works but is slow.
        """
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg

        from snn_deploy.backends.lava.multilevel import (
            MultiLevelLIF,
            PyMultiLevelLifModelBitAcc,
        )
        from snn_deploy.backends.lava.products import MODELS

        classes: dict[type, type] = {MultiLevelLIF: PyMultiLevelLifModelBitAcc, **MODELS}
        models: dict[Any, Any] = dict(classes)
        for p in [*self.neurons.values(), *self.units.values()]:
            if type(p) in classes:
                models[p] = classes[type(p)]
        anchor = next(iter(self.neurons.values()))
        anchor.run(
            condition=RunSteps(num_steps=self.steps),
            run_cfg=Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=models),
        )

    def read(self, block: str, var: str) -> npt.NDArray[np.int64]:
        """A monitored variable of a block or unit as ``[time, process neurons]`` int64 (call
        after ``run``)."""
        proc = self.neurons[block] if block in self.neurons else self.units[block]
        data = self.monitors[(block, var)].get_data()[proc.name][var]
        return np.asarray(data).astype(np.int64).reshape(self.steps, -1)

    def stop(self) -> None:
        """Stop the Lava runtime."""
        next(iter(self.neurons.values())).stop()


def _lava() -> None:
    try:
        import_lava()
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the Lava backend needs lava-nc 0.10.0 (`make test` installs it): {exc}"
        ) from exc


def build(
    program: LavaProgram,
    sample: Mapping[str, npt.NDArray[np.generic]],
    *,
    record_state: bool = False,
) -> LavaNetwork:
    """Create the processes for one sample (``[time, size]`` per input) and connect them.

    Every block of a synapse's source population connects to the synapse's one input port,
    which adds their (disjoint) spike vectors, so Lava shifts the projection's whole sum.
    Records every block's spikes (or voltage, if non-spiking) and every product unit's output;
    with ``record_state`` also ``u`` and ``v``. Multi-level and subtract-reset blocks are
    ``MultiLevelLIF`` processes, non-spiking blocks ``VoltageLIF``; product units are
    processes of ``products.py``, whose operand ports every block of the source feeds.
    """
    _lava()
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor
    from lava.proc.sparse.process import DelaySparse, Sparse
    from lava.utils.weightutils import SignMode

    from snn_deploy.backends.lava import products
    from snn_deploy.backends.lava.multilevel import MultiLevelLIF

    spec = program.net.numeric
    assert spec is not None
    steps = next(iter(sample.values())).shape[0]
    sources = {k: RingBuffer(data=np.asarray(v, dtype=np.int64).T) for k, v in sample.items()}
    graded = {k for k, v in sample.items() if np.any((v != 0) & (v != 1))}
    neurons = {}
    for b in program.blocks:
        params: dict[str, Any] = {
            "shape": (b.size,),
            "du": b.du,
            "dv": b.dv,
            "vth": b.vth,
            "bias_mant": b.bias_mant,
            "bias_exp": b.bias_exp,
            "name": b.name,
        }
        if not b.spiking:
            neurons[b.name] = products.VoltageLIF(**params)
        elif b.multilevel:
            neurons[b.name] = MultiLevelLIF(
                levels=b.levels, subtract=b.subtract, timing=b.timing, ge=b.ge, **params
            )
        else:
            neurons[b.name] = LIF(**params)
    message_bits = {b.population: b.message_bits for b in program.blocks}
    senders: dict[str, list[Any]] = {k: [v] for k, v in sources.items()}
    for b in program.blocks:
        senders.setdefault(b.population, []).append(neurons[b.name])
    net = program.net
    units = {name: _unit(products, net, unit) for name, unit in net.products.items()}
    for name, unit in net.products.items():
        for op, port in zip(unit.operands, units[name].operand_ports(), strict=True):
            for sender in senders[op.src]:
                sender.s_out.connect(port)
        senders[name] = [units[name]]
        assert unit.fixed is not None
        message_bits[name] = unit.fixed.output.width
    synapses = {}
    for s in program.synapses:
        dense = s.codes.nnz > DENSE_ABOVE * s.codes.shape[0] * s.codes.shape[1]
        weights = s.codes.toarray() if dense else s.codes
        kwargs: dict[str, Any] = {
            "weights": weights,
            "weight_exp": s.exp,
            "num_weight_bits": spec.weight.width,
            "sign_mode": SignMode.MIXED,
            "num_message_bits": 24 if s.src in graded else message_bits.get(s.src, 0),
        }
        if s.delay:
            delays = (
                np.where(s.codes.toarray() != 0, s.delay, 0) if dense else (s.codes != 0) * s.delay
            )
            proc = (DelayDense if dense else DelaySparse)(delays=delays, **kwargs)
        else:
            proc = (Dense if dense else Sparse)(**kwargs)
        for sender in senders[s.src]:
            sender.s_out.connect(proc.s_in)
        proc.a_out.connect(neurons[s.dst].a_in)
        synapses[s.name] = proc
    monitors = {}
    for b in program.blocks:
        names = (["s_out"] if b.spiking else ["v"]) + (["u", "v"] if record_state else [])
        for var in dict.fromkeys(names):
            monitor = Monitor()
            monitor.probe(getattr(neurons[b.name], var), steps)
            monitors[(b.name, var)] = monitor
    for name, proc in units.items():
        monitor = Monitor()
        monitor.probe(proc.s_out, steps)
        monitors[(name, "s_out")] = monitor
    return LavaNetwork(
        sources=sources,
        neurons=neurons,
        units=units,
        synapses=synapses,
        monitors=monitors,
        steps=steps,
    )


def _unit(products: Any, net: Net, unit: Product) -> Any:
    """The ``Attention`` or ``Gate`` process of a product unit: one port per operand, as wide
    as the operand's source."""
    assert unit.fixed is not None
    sources = tuple(net.size_of(op.src) for op in unit.operands)
    index = tuple(np.asarray(op.index) for op in unit.operands)
    if isinstance(unit, Attention):
        assert unit.fixed.state is not None
        return products.Attention(
            size=unit.size,
            heads=unit.heads,
            sources=sources,
            index=index,
            decay=unit.decay,
            causal=unit.causal,
            steps=unit.steps,
            state_bits=unit.fixed.state.width,
            output_bits=unit.fixed.output.width,
            name=unit.name,
        )
    return products.Gate(
        size=unit.size,
        sources=sources,
        index=index,
        shift=unit.fixed.shift,
        output_bits=unit.fixed.output.width,
        name=unit.name,
    )


def run(
    program: LavaProgram,
    inputs: Mapping[str, npt.ArrayLike],
    *,
    record_state: bool = False,
    progress: Progress | None = None,
) -> Trace:
    """Run every sample of ``inputs`` through Lava, one Lava run per sample."""
    net = program.net
    data = check_inputs(net, inputs)
    batch, steps = next(iter(data.values())).shape[:2]
    outs = {k: np.zeros((batch, steps, p.size), np.int64) for k, p in net.populations.items()}
    made = {k: np.zeros((batch, steps, u.size), np.int64) for k, u in net.products.items()}
    us = {k: np.zeros_like(v) for k, v in outs.items()} if record_state else {}
    vs = {k: np.zeros_like(v) for k, v in outs.items()} if record_state else {}
    for b in range(batch):
        lava_net = build(program, {k: v[b] for k, v in data.items()}, record_state=record_state)
        try:
            lava_net.run()
            for block in program.blocks:
                idx, pop = block.neurons, block.population
                out = lava_net.read(block.name, "s_out" if block.spiking else "v")
                outs[pop][b][:, idx] = out[:, idx]
                if record_state:
                    us[pop][b][:, idx] = lava_net.read(block.name, "u")[:, idx]
                    vs[pop][b][:, idx] = lava_net.read(block.name, "v")[:, idx]
            for name in net.products:
                made[name][b] = lava_net.read(name, "s_out")
        finally:
            lava_net.stop()
        if progress is not None:
            progress(b + 1, batch)
    inputs_int = {k: v.astype(np.int64) for k, v in data.items()}
    outputs = {o: (outs | inputs_int)[src] for o, src in net.outputs.items()}
    return Trace(outputs=outputs, populations=outs, u=us, v=vs, products=made)
