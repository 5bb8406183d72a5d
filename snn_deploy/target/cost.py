"""What a piece of a quantized net costs on a neuron core (docs/MAPPING.md, "Cost model").

Pure functions shared by the design rules, the ``map`` pass and the placement report, so all
three count the same thing:

* **synapse memory**: each projection gets one encoding, chosen once from its structure:
  ``dense`` (every (dst, src) pair has a weight: ``weight_bits`` per synapse, no index),
  ``sparse`` (``weight_bits + index_bits`` per synapse, the index naming the destination
  neuron in its core) or ``shared`` (rows that repeat the same weights at the same relative
  column offsets, as a convolution's do, store each distinct row pattern once per core plus an
  ``index_bits`` pointer per neuron). ``index_bits = ceil(log2(neurons_per_core))``.
* **fan-in axons** of a core: distinct source neurons (populations and inputs) with a synapse
  onto any neuron of the core.
* **fan-out axons** of a core: for each of its neurons, the number of distinct cores holding a
  destination of that neuron (one output axon per neuron per destination core).
* **profiles**: distinct neuron parameter tuples ``(du, dv, vth, bias_mant, bias_exp)``.

Source neurons are numbered globally (``global_offsets``): inputs first, then populations, then
product units, in the net's order. Everything works on CSR ``indptr``/``indices`` with NumPy;
nothing loops over synapses in Python.

``population_costs`` and ``core_usage`` are memoized per (net, limits) while the net lives:
nets are frozen, so a result cannot go stale, and the map pass, the design rules (run again by
``api.compile`` for custom pipelines) and the reports all ask for the same numbers (at 10^8
synapses each call takes seconds). Callers must not mutate what they return.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from snn_deploy.ir.net import Attention, Net, Product, Projection
from snn_deploy.target.schema import Limits

IntArray = npt.NDArray[np.int64]

_HASH_BLOCK = 1 << 22
"""Synapses hashed at a time when detecting shared row patterns (bounds temporary memory)."""

_R = TypeVar("_R")
_MEMO: weakref.WeakKeyDictionary[Net, dict[tuple[str, Limits], Any]] = weakref.WeakKeyDictionary()


def _per_net(fn: Callable[[Net, Limits], _R]) -> Callable[[Net, Limits], _R]:
    """Memoize ``fn(net, limits)`` for as long as ``net`` is alive (module docstring)."""

    @functools.wraps(fn)
    def memoized(net: Net, limits: Limits) -> _R:
        cache = _MEMO.setdefault(net, {})
        key = (fn.__name__, limits)
        if key not in cache:
            cache[key] = fn(net, limits)
        result: _R = cache[key]
        return result

    return memoized


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ProjectionCost:
    """Synapse-memory cost of one projection, per destination row.

    Attributes:
        kind: ``dense``, ``sparse`` or ``shared``.
        row_bits: bits every row costs wherever it is placed (``dense``/``sparse``: its
            synapses; ``shared``: its pattern pointer).
        pattern_bits: ``shared`` only: the bits of the row's pattern, paid once per core by
            the first row of that pattern in the core.
        prev_same: ``shared`` only: the previous row with the same pattern (-1 if none).
        pattern: ``shared`` only: the row's pattern id (rows with equal ids share a pattern).
        nnz: synapses.
    """

    kind: str
    row_bits: IntArray
    pattern_bits: IntArray | None = None
    prev_same: IntArray | None = None
    pattern: IntArray | None = None
    nnz: int = 0

    def permuted(self, order: IntArray) -> ProjectionCost:
        """The same cost with rows taken in ``order`` (row ``j`` here is row ``order[j]``)."""
        if self.pattern_bits is None or self.pattern is None:
            return ProjectionCost(kind=self.kind, row_bits=self.row_bits[order], nnz=self.nnz)
        pattern = self.pattern[order]
        return ProjectionCost(
            kind=self.kind,
            row_bits=self.row_bits[order],
            pattern_bits=self.pattern_bits[order],
            prev_same=previous_same(pattern),
            pattern=pattern,
            nnz=self.nnz,
        )

    def total_min_bits(self) -> int:
        """A lower bound on the bits of this projection over any placement."""
        if self.pattern_bits is None or self.prev_same is None:
            return int(self.row_bits.sum())
        first = self.prev_same < 0
        return int(self.row_bits.sum() + self.pattern_bits[first].sum())


def weight_bits(net: Net) -> int:
    """Bits of one weight code (the target's weight register)."""
    if net.numeric is None:
        raise ValueError("the cost model needs a quantized net")
    return int(net.numeric.weight.width)


def index_bits(limits: Limits, dst_size: int) -> int:
    """Bits naming a destination neuron within its core."""
    n = limits.neurons_per_core or dst_size
    return max(1, math.ceil(math.log2(max(n, 2))))


def codes_of(proj: Projection) -> sp.csr_matrix:
    """The integer codes of a quantized projection (the float weights otherwise)."""
    return proj.fixed.codes if proj.fixed is not None else proj.weight


def row_pattern_ids(m: sp.csr_matrix) -> IntArray:
    """Per row, an id equal for rows with the same weights at the same relative columns.

    Rows are hashed (a fixed-seed 64-bit polynomial hash of codes and column offsets from the
    row's first column, plus the row length), in blocks of rows to bound memory.
    """
    rng = np.random.default_rng(20240531)
    indptr = m.indptr.astype(np.int64)
    lengths = np.diff(indptr)
    longest = int(lengths.max(initial=0))
    mult_w = rng.integers(1, 2**62, longest + 1, dtype=np.int64) | 1
    mult_c = rng.integers(1, 2**62, longest + 1, dtype=np.int64) | 1
    hashes = np.zeros(m.shape[0], dtype=np.int64)
    row = 0
    with np.errstate(over="ignore"):
        while row < m.shape[0]:
            stop = int(np.searchsorted(indptr, indptr[row] + _HASH_BLOCK, side="right")) - 1
            stop = max(stop, row + 1)
            lo, hi = int(indptr[row]), int(indptr[stop])
            rows_len = lengths[row:stop]
            starts = np.repeat(indptr[row:stop] - lo, rows_len)
            pos = np.arange(hi - lo, dtype=np.int64) - starts
            cols = m.indices[lo:hi].astype(np.int64)
            firsts = cols[np.minimum(indptr[row:stop] - lo, hi - lo - 1)] if hi > lo else cols
            rel = cols - np.repeat(firsts, rows_len) if hi > lo else cols
            term = np.rint(m.data[lo:hi]).astype(np.int64) * mult_w[pos] + rel * mult_c[pos]
            h = np.zeros(stop - row, dtype=np.int64)
            nonempty = rows_len > 0
            if hi > lo:
                sums = np.add.reduceat(term, (indptr[row:stop] - lo)[nonempty])
                h[nonempty] = sums
            hashes[row:stop] = h * 31 + rows_len * mult_c[-1]
            row = stop
    _, ids = np.unique(hashes, return_inverse=True)
    return ids.astype(np.int64)


def previous_same(ids: IntArray) -> IntArray:
    """For each position, the previous position with the same id, or -1."""
    order = np.argsort(ids, kind="stable")
    prev = np.full(ids.size, -1, dtype=np.int64)
    same = ids[order[1:]] == ids[order[:-1]]
    prev[order[1:][same]] = order[:-1][same]
    return prev


def dense_is_cheaper(proj: Projection, wbits: int, ibits: int) -> bool:
    """True if storing every (dst, src) weight, zeros included, costs no more than sparse."""
    m = codes_of(proj)
    rows, cols = m.shape
    return bool(m.nnz > 0 and rows * cols * wbits <= m.nnz * (wbits + ibits))


def projection_cost(proj: Projection, wbits: int, ibits: int) -> ProjectionCost:
    """Choose the cheapest encoding of ``proj`` and cost it per row.

    ``dense``: ``src.size * weight_bits`` per row (zeros stored; every source is an axon).
    ``sparse``: ``weight_bits + index_bits`` per synapse. ``shared``: per core, each distinct
    row pattern once at ``weight_bits + index_bits`` per entry (weights and relative source
    offsets), plus an ``index_bits`` pointer per row; chosen only if patterns repeat enough
    to beat ``sparse``.
    """
    m = codes_of(proj)
    rows, cols = m.shape
    lengths = np.diff(m.indptr).astype(np.int64)
    nnz = int(m.nnz)
    if dense_is_cheaper(proj, wbits, ibits):
        return ProjectionCost(
            kind="dense", row_bits=np.full(rows, cols * wbits, dtype=np.int64), nnz=nnz
        )
    sparse = ProjectionCost(kind="sparse", row_bits=lengths * (wbits + ibits), nnz=nnz)
    if nnz == 0 or rows < 2:
        return sparse
    ids = row_pattern_ids(m)
    prev = previous_same(ids)
    if np.count_nonzero(prev >= 0) * 2 < rows:  # most rows unique: nothing to share
        return sparse
    shared = ProjectionCost(
        kind="shared",
        row_bits=np.full(rows, ibits, dtype=np.int64),
        pattern_bits=lengths * (wbits + ibits),
        prev_same=prev,
        pattern=ids,
        nnz=nnz,
    )
    return shared if shared.total_min_bits() < sparse.total_min_bits() else sparse


def dense_encoded(net: Net, limits: Limits) -> list[bool]:
    """Per projection of ``net``, whether it uses the dense encoding."""
    wbits = weight_bits(net)
    return [
        dense_is_cheaper(p, wbits, index_bits(limits, net.size_of(p.dst))) for p in net.projections
    ]


@_per_net
def population_costs(net: Net, limits: Limits) -> dict[str, list[ProjectionCost]]:
    """Per population, the cost of each incoming projection (in ``net.projections`` order)."""
    wbits = weight_bits(net)
    out: dict[str, list[ProjectionCost]] = {name: [] for name in net.populations}
    for proj in net.projections:
        ibits = index_bits(limits, net.size_of(proj.dst))
        out[proj.dst].append(projection_cost(proj, wbits, ibits))
    return out


def chunk_bits(costs: list[ProjectionCost], start: int, stop: int) -> int:
    """Synapse-memory bits of rows ``[start, stop)`` of one population placed on one core."""
    total = 0
    for c in costs:
        total += int(c.row_bits[start:stop].sum())
        if c.pattern_bits is not None and c.prev_same is not None:
            first = c.prev_same[start:stop] < start
            total += int(c.pattern_bits[start:stop][first].sum())
    return total


def rows_bits(costs: list[ProjectionCost], rows: IntArray) -> int:
    """Synapse-memory bits of any set of distinct ``rows`` of one population on one core.

    Like ``chunk_bits`` but for rows that need not be contiguous (a spatial tile is one short
    range per channel and tile row): each distinct shared pattern is paid once.
    """
    total = 0
    for c in costs:
        total += int(c.row_bits[rows].sum())
        if c.pattern_bits is not None and c.pattern is not None and rows.size:
            _, first = np.unique(c.pattern[rows], return_index=True)
            total += int(c.pattern_bits[rows[first]].sum())
    return total


def global_offsets(net: Net) -> dict[str, int]:
    """First global neuron id of every input, population and product unit (in that order)."""
    out: dict[str, int] = {}
    n = 0
    for name in [*net.inputs, *net.populations, *net.products]:
        out[name] = n
        n += net.size_of(name)
    return out


def total_ids(net: Net) -> int:
    """Number of global neuron ids (inputs, populations and product units)."""
    return sum(net.size_of(n) for n in [*net.inputs, *net.populations, *net.products])


def fan_in_keys(
    incoming: list[tuple[Projection, bool]],
    offsets: Mapping[str, int],
    ranges: Sequence[tuple[int, int]],
) -> IntArray:
    """Sorted distinct global source ids with a synapse onto any of the rows ``[start, stop)``.

    ``incoming``: the population's projections, each with whether it is dense-encoded (then
    every source is an axon, zero weights included). Distinct sources are marked in a
    per-source mask, so the cost is the synapses read, not a sort of them.
    """
    parts: list[IntArray] = []
    nonempty = any(stop > start for start, stop in ranges)
    for proj, dense in incoming:
        m = codes_of(proj)
        off = offsets[proj.src]
        if dense:
            if nonempty:
                parts.append(np.arange(off, off + m.shape[1], dtype=np.int64))
            continue
        seen = np.zeros(m.shape[1], dtype=bool)
        for start, stop in ranges:
            seen[m.indices[m.indptr[start] : m.indptr[stop]]] = True
        parts.append(np.flatnonzero(seen).astype(np.int64) + off)
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(parts))


def core_fan_in(net: Net, dense: Sequence[bool]) -> dict[tuple[int, int], IntArray]:
    """(chip, core) -> the sorted distinct global source ids of every placed core.

    ``dense``: per projection of ``net``, whether it is dense-encoded (``dense_encoded``).
    """
    offsets = global_offsets(net)
    incoming: dict[str, list[tuple[Projection, bool]]] = defaultdict(list)
    for proj, d in zip(net.projections, dense, strict=True):
        incoming[proj.dst].append((proj, d))
    out = {}
    for key, ranges in placed_cores(net).items():
        by_pop: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for name, start, stop in ranges:
            by_pop[name].append((start, stop))
        parts = [fan_in_keys(incoming[name], offsets, r) for name, r in by_pop.items()]
        out[key] = np.unique(np.concatenate(parts))
    return out


def profile_ids(net: Net) -> dict[str, IntArray]:
    """Per population, a global id per neuron of its (du, dv, vth, bias_mant, bias_exp)."""
    rows = []
    for pop in net.populations.values():
        f = pop.fixed
        if f is None:
            raise ValueError("profiles need a quantized net")
        vth = f.vth if f.vth is not None else np.full(pop.size, -1, dtype=np.int64)
        rows.append(np.stack([f.du, f.dv, vth, f.bias_mant, f.bias_exp], axis=1))
    if not rows:
        return {}
    _, inv = np.unique(np.concatenate(rows), axis=0, return_inverse=True)
    inv = inv.reshape(-1).astype(np.int64)
    out, n = {}, 0
    for pop in net.populations.values():
        out[pop.name] = inv[n : n + pop.size]
        n += pop.size
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreUsage:
    """Measured use of one placed core.

    Attributes:
        chip, core: where it is (``core`` counts within the chip).
        neurons, synapse_bits, fan_in, fan_out, profiles: resources used.
        fan_out_remote_chip: output axons whose destination core is on another chip.
        populations: names of the populations with neurons here.
    """

    chip: int
    core: int
    neurons: int
    synapse_bits: int
    fan_in: int
    fan_out: int
    fan_out_remote_chip: int
    profiles: int
    populations: tuple[str, ...]


def placed_cores(net: Net) -> dict[tuple[int, int], list[tuple[str, int, int]]]:
    """(chip, core) -> the (population, start, stop) ranges on it, in net order."""
    cores: dict[tuple[int, int], list[tuple[str, int, int]]] = defaultdict(list)
    for pop in net.populations.values():
        for pl in pop.placement or ():
            cores[(pl.chip, pl.core)].append((pop.name, pl.start, pl.stop))
    return dict(sorted(cores.items()))


def neuron_chips(net: Net, offsets: Mapping[str, int]) -> IntArray:
    """Chip of every global neuron id; -1 for inputs (the host) and unplaced neurons."""
    chip = np.full(total_ids(net), -1, dtype=np.int64)
    for pop in net.populations.values():
        base = offsets[pop.name]
        for pl in pop.placement or ():
            chip[base + pl.start : base + pl.stop] = pl.chip
    return chip


@_per_net
def core_usage(net: Net, limits: Limits) -> list[CoreUsage]:
    """Measure every placed core of a mapped net (independently of how it was mapped)."""
    offsets = global_offsets(net)
    costs = population_costs(net, limits)
    profiles = profile_ids(net)
    chips = neuron_chips(net, offsets)
    cores = placed_cores(net)
    fan_out = np.zeros(total_ids(net), dtype=np.int64)
    fan_out_remote = np.zeros(total_ids(net), dtype=np.int64)
    fan_in = core_fan_in(net, dense_encoded(net, limits))
    for key, keys in fan_in.items():
        fan_out[keys] += 1
        fan_out_remote[keys[(chips[keys] != key[0]) & (chips[keys] >= 0)]] += 1
    out = []
    for (chip, core), ranges in cores.items():
        ids = [offsets[name] + np.arange(s, e) for name, s, e in ranges]
        glob = np.concatenate(ids)
        prof = np.unique(np.concatenate([profiles[name][s:e] for name, s, e in ranges]))
        rows: dict[str, list[IntArray]] = defaultdict(list)
        for name, s, e in ranges:
            rows[name].append(np.arange(s, e, dtype=np.int64))
        out.append(
            CoreUsage(
                chip=chip,
                core=core,
                neurons=int(glob.size),
                # several ranges of one population on one core share its patterns
                synapse_bits=sum(
                    chunk_bits(costs[name], int(r[0][0]), int(r[0][-1]) + 1)
                    if len(r) == 1
                    else rows_bits(costs[name], np.concatenate(r))
                    for name, r in rows.items()
                ),
                fan_in=int(fan_in[(chip, core)].size),
                fan_out=int(fan_out[glob].sum()),
                fan_out_remote_chip=int(fan_out_remote[glob].sum()),
                profiles=int(prof.size),
                populations=tuple(dict.fromkeys(name for name, _, _ in ranges)),
            )
        )
    return out


def out_degree_per_neuron(net: Net) -> dict[str, dict[str, IntArray]]:
    """Per source (population or input), per destination population: each source neuron's
    distinct destinations.

    Two projections between the same pair may reach the same neuron, so their larger degree
    (not the sum) is kept: a lower bound on the distinct destinations.
    """
    names = [*net.inputs, *net.populations, *net.products]
    out: dict[str, dict[str, IntArray]] = {name: {} for name in names}
    for proj in net.projections:
        m = codes_of(proj)
        deg = np.bincount(m.indices, minlength=m.shape[1]).astype(np.int64)
        prev = out[proj.src].get(proj.dst)
        out[proj.src][proj.dst] = deg if prev is None else np.maximum(prev, deg)
    return out


def rows_per_core(costs: list[ProjectionCost], size: int, limits: Limits) -> int:
    """The most neurons of one population a core can hold: by ``neurons_per_core`` and by
    synapse memory, filled with the population's cheapest rows (shared patterns not counted)."""
    cap = min(size, limits.neurons_per_core or size)
    if limits.synapse_memory_bits_per_core and costs:
        row = np.sort(sum((c.row_bits for c in costs), np.zeros(size, dtype=np.int64)))
        fits = int(np.searchsorted(np.cumsum(row), limits.synapse_memory_bits_per_core, "right"))
        cap = min(cap, max(1, fits))
    return max(1, cap)


def min_sources(net: Net, limits: Limits) -> dict[str, dict[str, int]]:
    """Per population, per source: the fewest distinct sources of that source any of its
    neurons reads (every source if the projection is dense-encoded)."""
    out: dict[str, dict[str, int]] = {name: {} for name in net.populations}
    for proj, dense in zip(net.projections, dense_encoded(net, limits), strict=True):
        m = codes_of(proj)
        least = m.shape[1] if dense else int(np.diff(m.indptr).min(initial=m.shape[1]))
        out[proj.dst][proj.src] = max(out[proj.dst].get(proj.src, 0), least)
    return out


def core_lower_bounds(net: Net, limits: Limits) -> dict[str, int]:
    """Lower bounds on cores; their max bounds any placement (docs/MAPPING.md §1).

    ``neurons``: total / per core. ``synapse_bits``: every projection's cheapest possible bits
    / per core. ``fan_out``: each neuron reaches at least ``ceil(d / cap)`` cores for its
    ``d`` destinations in a population of which a core holds at most ``cap`` neurons
    (``rows_per_core``); the sum / per core. ``fan_in``: every source (input too) is an axon
    of each core it reaches, so the same sum over every source / per core; or the widest
    population's distinct sources / per core (all cores holding a population together see
    all its sources), if larger.
    ``populations``: with ``populations_per_core``, the populations / per core (with 1, the
    sum of every population's own bound: no two share a core).
    ``exclusive_layers``: populations that cannot share a core (any neuron of one together with
    any neuron of the other exceeds the fan-in axons) need disjoint cores, so the sum of their
    bounds is a bound: over a set of pairwise exclusive populations (each alone), or over the
    groups of populations that can share cores (each group's neurons, bits, fan-in and
    fan-out pooled), whichever is larger.
    """
    costs = (
        population_costs(net, limits)
        if limits.synapse_memory_bits_per_core
        else {name: [] for name in net.populations}
    )
    caps = {name: rows_per_core(costs[name], p.size, limits) for name, p in net.populations.items()}
    # per population: its use of each additive resource, and bounds of its own
    use: dict[str, dict[str, int]] = {name: {} for name in net.populations}
    own: dict[str, int] = {
        name: math.ceil(p.size / caps[name]) for name, p in net.populations.items()
    }
    per_core = {
        "neurons": limits.neurons_per_core,
        "synapse_bits": limits.synapse_memory_bits_per_core,
        "fan_out": limits.fan_out_axons_per_core if limits.neurons_per_core else None,
    }
    for name, pop in net.populations.items():
        use[name]["neurons"] = pop.size
        use[name]["synapse_bits"] = sum(c.total_min_bits() for c in costs[name])
    degrees = out_degree_per_neuron(net)

    @functools.cache
    def reach(src: str, names: frozenset[str]) -> int:
        """Σ over ``src``'s neurons of the fewest cores holding their destinations in
        ``names``: the output axons it sends there, and the input axons it takes there."""
        into = [(d, caps[dst]) for dst, d in degrees[src].items() if dst in names]
        if not into:
            return 0
        cores = np.zeros(net.size_of(src), dtype=np.int64)
        if limits.neurons_per_core:
            cores += -(-sum(d for d, _ in into) // limits.neurons_per_core)
        for d, cap in into:
            cores = np.maximum(cores, -(-d // cap))
        return int(cores.sum())

    if per_core["fan_out"]:
        for name in net.populations:
            use[name]["fan_out"] = reach(name, frozenset(net.populations))

    @functools.cache
    def pooled(names: frozenset[str]) -> dict[str, int]:
        out = {
            r: math.ceil(sum(use[n].get(r, 0) for n in names) / cap)
            for r, cap in per_core.items()
            if cap
        }
        if limits.fan_in_axons_per_core:
            taken = sum(reach(src, names) for src in degrees)
            out["fan_in"] = math.ceil(taken / limits.fan_in_axons_per_core)
        return out

    for name in net.populations:
        own[name] = max(own[name], *pooled(frozenset([name])).values(), 0)
    bounds = dict(pooled(frozenset(net.populations)))
    if limits.fan_in_axons_per_core:
        offsets = global_offsets(net)
        flags = dense_encoded(net, limits)
        for name, pop in net.populations.items():
            inc = [(p, d) for p, d in zip(net.projections, flags, strict=True) if p.dst == name]
            sources = int(fan_in_keys(inc, offsets, [(0, pop.size)]).size)
            widest = math.ceil(sources / limits.fan_in_axons_per_core)
            own[name] = max(own[name], widest)
            bounds["fan_in"] = max(bounds["fan_in"], widest)
        exclusive = _exclusive(min_sources(net, limits), limits.fan_in_axons_per_core)
        groups = _groups(list(net.populations), exclusive)
        bounds["exclusive_layers"] = max(
            _exclusive_sum(own, exclusive),
            sum(max([*pooled(frozenset(g)).values(), *(own[n] for n in g)]) for g in groups),
        )
    share = limits.populations_per_core
    if share is not None and net.populations:  # 1: no core holds two populations
        bounds["populations"] = (
            sum(own.values()) if share == 1 else math.ceil(len(net.populations) / share)
        )
    return bounds


def _exclusive(least: dict[str, dict[str, int]], axons: int) -> Callable[[str, str], bool]:
    """Whether populations ``P`` and ``Q`` cannot share a core: for their neurons ``a``,
    ``b``, the fan-in of a core holding both is at least ``sum over sources X of
    max(least[P][X], least[Q][X]) > axons``."""

    def exclusive(p: str, q: str) -> bool:
        sources = least[p].keys() | least[q].keys()
        need = sum(max(least[p].get(x, 0), least[q].get(x, 0)) for x in sources)
        return need > axons

    return exclusive


def _groups(names: list[str], exclusive: Callable[[str, str], bool]) -> list[list[str]]:
    """The connected components of "can share a core": populations of different groups are
    pairwise exclusive, so the groups use disjoint cores."""
    group = {n: i for i, n in enumerate(names)}
    for i, p in enumerate(names):
        for q in names[i + 1 :]:
            if group[p] != group[q] and not exclusive(p, q):
                old, new = group[q], group[p]
                group = {n: new if g == old else g for n, g in group.items()}
    out: dict[int, list[str]] = defaultdict(list)
    for n in names:
        out[group[n]].append(n)
    return list(out.values())


def _exclusive_sum(own: dict[str, int], exclusive: Callable[[str, str], bool]) -> int:
    """The largest sum of ``own`` bounds over a set of pairwise exclusive populations found
    greedily (any such set gives a valid bound, so greedy is enough)."""
    order = sorted(own, key=lambda k: (-own[k], k))
    best = 0
    for seed in order[:8]:
        chosen = [seed]
        for name in order:
            if name != seed and all(exclusive(name, c) for c in chosen):
                chosen.append(name)
        best = max(best, sum(own[c] for c in chosen))
    return best


def product_state_bits(net: Net, unit: Product) -> int:
    """The state a product unit keeps between steps (bits): the output register of every
    element, the ``S`` registers of every head and, for whole-clip attention, the kept ``q``
    (``steps x size`` spike counts of the q source's top level; 1 bit for an input, whose top
    quantize takes as 1)."""
    assert unit.fixed is not None
    bits = unit.size * unit.fixed.output.width
    if isinstance(unit, Attention):
        assert unit.fixed.state is not None
        d = unit.size // unit.heads
        bits += unit.heads * d * d * unit.fixed.state.width
        if not unit.causal:
            q_src = net.populations.get(unit.q.src)
            bits += unit.steps * unit.size * (q_src.levels.bit_length() if q_src else 1)
    return bits


def product_cores(net: Net, limits: Limits) -> dict[str, int]:
    """Cores each product unit occupies: its own, ``ceil(state / product_state_bits_per_core)``
    and at least one (docs/MAPPING.md); empty when the target sets no such limit."""
    per_core = limits.product_state_bits_per_core
    if per_core is None or not net.quantized:
        return {}
    return {k: max(1, -(-product_state_bits(net, u) // per_core)) for k, u in net.products.items()}
