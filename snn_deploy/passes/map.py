"""``map``: place every neuron on a core and every core on a chip (docs/MAPPING.md).

The algorithm is a documented heuristic, not a general graph partitioner:

1. **Next-fit with splitting, in reverse graph order.** Populations are visited from the last
   to the first. Each is cut into contiguous neuron ranges; a range grows row by row (in
   vectorised steps) until the open core would exceed one of its limits: neurons, synapse
   memory (``target.cost``: dense/sparse/shared encodings), fan-in axons (distinct source
   neurons, shared with the populations already on the core) or fan-out axons (per neuron,
   the distinct cores holding its destinations). Then the core is closed and a new one opened.
   For splittable items, next-fit fills every core but the last of a run to its binding
   limit, so the core count stays near the lower bound; contiguous ranges of consecutive
   layers on consecutive cores keep most synapses inside a core or a neighbouring one.
2. **Why reverse order:** a neuron's fan-out depends on where its destinations are. Visiting
   destinations first makes it exact for feed-forward edges. Back edges (recurrence) use an
   estimate (round 1: ``ceil(out-degree / neurons_per_core)``), corrected by re-running with
   the measured value until the estimate covers it (at most ``MAX_ROUNDS`` rounds).
3. **Spatial tiling of convolution-like populations** (shape ``(C, H, W)`` or ``(C, L)`` with
   a ``shared``-encoded incoming projection): the population is placed in tile order (tiles
   of ``th x tw`` positions row by row; inside a tile, channel by channel) instead of C order,
   so a core holds all channels of an image tile: its fan-in is the tile plus halo, not a
   band across every input channel. ``choose_tiling`` picks the tile size; cuts prefer whole
   (tile, channel) blocks. The chunks map back to many short C-order ranges per core.
4. **Search over orders** (nets up to ``SEARCH_MAX_SYNAPSES`` synapses): population by
   population, a convolution-like one tries one-column strips (next-fit sets each core's
   width) and tiles inside the interior and border bands of a padded image (a core then
   stores few classes of clipped kernel patterns); another with sparse inputs tries source
   order (rows sorted by their smallest source: neurons reading the same sources become
   neighbours) and, when fan-in binds even then, greedy clusters of rows that share sources;
   any placement with fewer cores is kept.
5. **Backfill** (same nets): cores holding only neurons fed by inputs are emptied into the
   spare room of other cores when all their neurons fit (moving such a neuron changes no
   neuron's fan-out, so only the receiving core is checked).
6. **Chips:** cores are numbered in graph order and filled into chips consecutively, so the
   cores of one layer and of adjacent layers share a chip; the report gives the inter-chip
   traffic this leaves.

Everything works on CSR ``indptr``/``indices`` with NumPy, per core rather than per synapse.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from snn_deploy.errors import PassError
from snn_deploy.ir.net import Net, Placement, Projection
from snn_deploy.passes.base import Pass, PassContext
from snn_deploy.target import cost
from snn_deploy.target.rules import check_design_rules, products_supported, raise_violations
from snn_deploy.target.schema import Limits

IntArray = npt.NDArray[np.int64]

MAX_ROUNDS = 4
"""Placement rounds at most, to settle the fan-out estimate of recurrent (back) edges."""

_UNLIMITED = 1 << 62

_MAX_FAN_IN_TRIES = 8
"""Tile sizes whose full fan-in is measured at most, per tiled population and round."""

BACKFILL_MISSES = 8
"""Backfill stops after this many cores in a row could not be emptied (each failed try
costs about one check per other core)."""

SEARCH_MAX_SYNAPSES = 10**7
"""Nets with more synapses keep ``choose_tiling``'s tiles: trying strips re-runs the
placement twice per convolution-like population."""

CLUSTER_MAX_ROWS = 1 << 16
"""Populations with more neurons do not try cluster order: each of its steps scans every row."""


@dataclass(frozen=True, kw_only=True)
class Map(Pass):
    """Partition neurons into cores and cores into chips under every limit of the target.

    What: sets ``placement`` of every population to ``Placement(start, stop, chip, core)``
    neuron ranges (``core`` counts within its chip; a tiled population has several ranges on
    one core), using as few cores as the heuristic of the module docstring finds, then runs
    every design rule on the placed net.

    Product units (``Attention``, ``Gate``) the target does not run are refused first, by the
    design rules named after them; on a target that runs them (``sim``, no cores) they are
    not placed: the simulator runs them beside the populations.

    Requires: a verified quantized ``Net``.
    Guarantees: every neuron is in exactly one range; ranges of a population are sorted by
    start and together cover it; the same input gives the same placement; no core exceeds a
    limit and no more chips are used than the target has, or a ``DesignRuleError`` lists every
    violation.
    """

    name: ClassVar[str] = "map"

    def run(self, ir: object, ctx: PassContext) -> Net:
        """Place ``ir`` (a quantized Net) on ``ctx.target``'s cores and chips."""
        if not isinstance(ir, Net) or not ir.quantized:
            raise PassError("map takes a quantized net: put it after quantize")
        raise_violations(products_supported(ir, ctx.target), ctx.target)
        mapped = place(ir, ctx.target.limits)
        check_design_rules(mapped, ctx.target)
        return mapped


def place(net: Net, limits: Limits) -> Net:
    """``net`` with every population's ``placement`` set (no design-rule check)."""
    ranges, _ = partition(net, limits)
    # Number cores in graph order: by the first (population, start) each one holds.
    first: dict[int, tuple[int, int]] = {}
    for i, name in enumerate(net.populations):
        for start, _, core in ranges[name]:
            first[core] = min(first.get(core, (i, start)), (i, start))
    number = {core: g for g, core in enumerate(sorted(first, key=first.__getitem__))}
    cpc = limits.cores_per_chip
    pops = {}
    for name, pop in net.populations.items():
        placed = []
        for start, stop, core in sorted(ranges[name]):
            g = number[core]
            chip, local = (g // cpc, g % cpc) if cpc else (0, g)
            placed.append(Placement(start=start, stop=stop, chip=chip, core=local))
        pops[name] = dataclasses.replace(pop, placement=tuple(placed))
    return net.replace(populations=pops)


def partition(net: Net, limits: Limits) -> tuple[dict[str, list[tuple[int, int, int]]], int]:
    """Ranges ``(start, stop, core)`` per population (cores in placement order) and core count."""
    per_core = (
        limits.neurons_per_core,
        limits.synapse_memory_bits_per_core,
        limits.fan_in_axons_per_core,
        limits.fan_out_axons_per_core,
    )
    if all(lim is None for lim in per_core):  # nothing to pack against: one core, or
        # ``populations_per_core`` populations per core in graph order
        share = limits.populations_per_core or max(1, len(net.populations))
        pops = enumerate(net.populations.items())
        ranges = {name: [(0, pop.size, i // share)] for i, (name, pop) in pops}
        return ranges, -(-len(net.populations) // share)
    problem = _Problem.build(net, limits)
    if sum(p.weight.nnz for p in net.projections) > SEARCH_MAX_SYNAPSES:
        ranges, n_cores, _ = _settle(problem, {})
        return ranges, n_cores
    ranges, n_cores = _evaluate(problem, {})
    # other orders (``_Problem.alternatives``), tried population by population with the
    # others' choices kept, kept if they save cores, twice over. Convolution-like: one-column
    # strips (next-fit sets each core's width by its fan-in) and tiles inside the interior and
    # border regions. Others with sparse inputs: source order, and cluster order.
    chosen: Orders = {}
    tried: set[tuple[tuple[str, Order], ...]] = {()}
    for _ in range(2):
        before = n_cores
        for name in net.populations:
            for order in problem.alternatives(name):
                trial = {**chosen, name: order}
                key = tuple(sorted(trial.items()))
                if key in tried:  # the second pass meets the first's tries again
                    continue
                tried.add(key)
                r, n = _evaluate(problem, trial)
                if n < n_cores:
                    ranges, n_cores, chosen = r, n, trial
        if n_cores == before:
            break
    return ranges, n_cores


Order = tuple[int, int] | tuple[Literal["regions"], int, int] | Literal["sources", "clusters"]
"""How a population is placed: a tile size, or a tile size inside each of the interior and
border ``regions`` (convolution-like); ``sources`` or ``clusters`` order."""

Orders = dict[str, Order]
"""Order per population; absent: ``choose_tiling``'s tiles (convolution-like) or C order."""


def _settle(
    problem: _Problem, orders: Orders
) -> tuple[dict[str, list[tuple[int, int, int]]], int, IntArray]:
    """Placement rounds until the back-edge fan-out estimate covers what is measured:
    ranges, core count and every neuron's fan-out (by global id)."""
    back = problem.back_edge_estimate()
    ranges: dict[str, list[tuple[int, int, int]]] = {}
    n_cores = 0
    final = np.zeros(problem.n_ids, dtype=np.int64)
    for _ in range(MAX_ROUNDS):
        ranges, n_cores, forward, final = problem.run(back, orders)
        short = False
        for name, off in problem.pop_offsets.items():
            size = problem.net.populations[name].size
            measured = final[off : off + size] - forward[name]
            if np.any(measured > back[name]):
                short = True
                back[name] = np.maximum(back[name], measured)
        if not short:
            break
    return ranges, n_cores, final


def _evaluate(
    problem: _Problem, orders: Orders
) -> tuple[dict[str, list[tuple[int, int, int]]], int]:
    """Ranges and core count of the placement with ``orders``, backfilled."""
    ranges, n_cores, fan_out = _settle(problem, orders)
    if problem.limits.populations_per_core is not None:  # backfill would mix populations
        return ranges, n_cores
    return _backfill(problem, ranges, fan_out)


def _backfill(
    problem: _Problem, ranges: dict[str, list[tuple[int, int, int]]], fan_out: IntArray
) -> tuple[dict[str, list[tuple[int, int, int]]], int]:
    """Empty whole cores of first-layer populations into the spare room of other cores.

    Only populations fed by inputs alone are moved: a moved neuron keeps its destinations, so
    no neuron's fan-out changes and only the receiving core's use needs checking. Cores
    holding nothing else are tried fewest neurons first, until ``BACKFILL_MISSES`` in a row
    stay: each one's neurons, one image position at a time (its channels read the same
    sources), go next-fit into the other cores in order, and the core is emptied only if all
    of them fit. Returns ranges and core count.
    """
    net = problem.net
    movable = {
        name
        for name in net.populations
        if all(p.src in net.inputs for p, _ in problem.incoming.get(name, []))
    }
    rows: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for name, spans in ranges.items():
        for start, stop, core in spans:
            rows[core][name].extend(range(start, stop))
    victims = sorted(
        (k for k, core in rows.items() if set(core) <= movable),
        key=lambda k: (sum(len(rs) for rs in rows[k].values()), k),
    )
    usage = {k: _Usage.of(problem, core, fan_out) for k, core in rows.items()}
    misses = 0
    for victim in victims:
        moved = _move_all(problem, usage, victim, fan_out)
        if moved is not None:
            usage, misses = moved, 0
            continue
        misses += 1
        if misses > BACKFILL_MISSES:
            break
    out: dict[str, list[tuple[int, int, int]]] = {name: [] for name in net.populations}
    for core, u in usage.items():
        for name, rs in u.rows.items():
            out[name].extend((start, stop, core) for start, stop in _row_ranges(rs))
    return {name: sorted(spans) for name, spans in out.items()}, len(usage)


def _move_all(
    problem: _Problem, usage: dict[int, _Usage], victim: int, fan_out: IntArray
) -> dict[int, _Usage] | None:
    """``usage`` with every neuron of core ``victim`` moved next-fit into the other cores
    without breaking a limit, or None if some do not fit."""
    out = {k: u for k, u in usage.items() if k != victim}
    lim, moving = problem.limits, usage[victim]
    for cap, need, spare in (
        (lim.neurons_per_core, moving.neurons, [u.neurons for u in out.values()]),
        (lim.fan_out_axons_per_core, moving.fan_out, [u.fan_out for u in out.values()]),
    ):
        if cap is not None and need > sum(cap - used for used in spare):
            return None  # not enough room left in all the other cores together
    groups = _positions(problem, moving.rows)
    done = 0
    for target in sorted(out):
        # the longest run of groups that still fits (use only grows with more rows):
        # doubling steps, then bisection
        fit, over, grown = done, len(groups) + 1, out[target]
        step = 1
        while fit < len(groups) and fit + 1 < over:
            end = min(fit + step, len(groups)) if over > len(groups) else (fit + over) // 2
            trial = out[target].add(problem, groups[done:end], fan_out)
            if trial.fits(lim):
                fit, grown, step = end, trial, step * 2
            else:
                over = end
        out[target], done = grown, fit
        if done == len(groups):
            return out
    return None


@dataclass(frozen=True, kw_only=True)
class _Usage:
    """A core's use: neurons, synapse bits per population, fan-in keys and fan-out."""

    rows: dict[str, list[int]]
    bits: dict[str, int]
    keys: IntArray
    fan_out: int

    @staticmethod
    def of(problem: _Problem, core: dict[str, list[int]], fan_out: IntArray) -> _Usage:
        """The use of a core holding ``core`` (population -> rows)."""
        bits = {n: cost.rows_bits(problem.costs[n], np.asarray(rs)) for n, rs in core.items()}
        keys = [np.zeros(0, dtype=np.int64)] + [_keys(problem, n, rs) for n, rs in core.items()]
        glob = [problem.offsets[n] + np.asarray(rs, dtype=np.int64) for n, rs in core.items()]
        return _Usage(
            rows={n: list(rs) for n, rs in core.items()},
            bits=bits,
            keys=np.unique(np.concatenate(keys)),
            fan_out=int(fan_out[np.concatenate([np.zeros(0, dtype=np.int64), *glob])].sum()),
        )

    def add(
        self, problem: _Problem, groups: list[tuple[str, list[int]]], fan_out: IntArray
    ) -> _Usage:
        """This use with the rows of ``groups`` (population, rows) added."""
        added: dict[str, list[int]] = defaultdict(list)
        for name, rs in groups:
            added[name].extend(rs)
        rows = dict(self.rows)
        bits = dict(self.bits)
        keys, extra = [self.keys], 0
        for name, rs in added.items():
            rows[name] = [*rows.get(name, []), *rs]
            bits[name] = cost.rows_bits(problem.costs[name], np.asarray(rows[name]))
            keys.append(_keys(problem, name, rs))
            extra += int(fan_out[problem.offsets[name] + np.asarray(rs)].sum())
        return _Usage(
            rows=rows, bits=bits, keys=np.unique(np.concatenate(keys)), fan_out=self.fan_out + extra
        )

    @property
    def neurons(self) -> int:
        """Neurons on the core."""
        return sum(map(len, self.rows.values()))

    def fits(self, lim: Limits) -> bool:
        """True if no limit of ``lim`` is exceeded."""
        use = (self.neurons, sum(self.bits.values()), self.keys.size)
        caps = (
            lim.neurons_per_core,
            lim.synapse_memory_bits_per_core,
            lim.fan_in_axons_per_core,
            lim.fan_out_axons_per_core,
        )
        return all(c is None or u <= c for u, c in zip((*use, self.fan_out), caps, strict=True))


def _keys(problem: _Problem, name: str, rows: list[int]) -> IntArray:
    """Sorted distinct global sources of ``rows`` of ``name`` (``cost.fan_in_keys``)."""
    return cost.fan_in_keys(problem.incoming.get(name, []), problem.offsets, _row_ranges(rows))


def _row_ranges(rows: list[int]) -> list[tuple[int, int]]:
    """Distinct ``rows`` as sorted maximal ``[start, stop)`` runs of consecutive rows."""
    r = np.unique(np.asarray(rows, dtype=np.int64))
    cut = np.flatnonzero(np.diff(r) != 1) + 1
    starts, stops = np.concatenate([[0], cut]), np.concatenate([cut, [r.size]])
    return [(int(r[a]), int(r[b - 1]) + 1) for a, b in zip(starts, stops, strict=True) if b > a]


def _positions(problem: _Problem, core: dict[str, list[int]]) -> list[tuple[str, list[int]]]:
    """A core's rows grouped by population and image position (one row per group when the
    population is not convolution-like), positions in row-major order."""
    out: list[tuple[str, list[int]]] = []
    for name, rs in core.items():
        shape = problem.image(name)
        hw = shape[1] * shape[2] if shape is not None else 1
        by_pos: dict[int, list[int]] = defaultdict(list)
        for r in sorted(rs):
            by_pos[r % hw if shape is not None else r].append(r)
        out.extend((name, by_pos[pos]) for pos in sorted(by_pos))
    return out


@dataclass(kw_only=True)
class _Core:
    """The open core's use so far (mutable working state of one placement round)."""

    index: int
    neurons: int = 0
    bits: int = 0
    fan_out: int = 0
    populations: int = 0
    keys: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass(frozen=True, kw_only=True)
class _Problem:
    """The per-population data the placement loop reads (computed once)."""

    net: Net
    limits: Limits
    costs: dict[str, list[cost.ProjectionCost]]
    incoming: dict[str, list[tuple[Projection, bool]]]
    offsets: dict[str, int]
    pop_offsets: dict[str, int]
    n_ids: int
    cached_orders: dict[tuple[str, str], _Tiling] = field(default_factory=dict)
    """Source and cluster orders, computed once per population (every try re-places)."""

    @staticmethod
    def build(net: Net, limits: Limits) -> _Problem:
        incoming: dict[str, list[tuple[Projection, bool]]] = defaultdict(list)
        for proj, dense in zip(net.projections, cost.dense_encoded(net, limits), strict=True):
            incoming[proj.dst].append((proj, dense))
        offsets = cost.global_offsets(net)
        return _Problem(
            net=net,
            limits=limits,
            costs=cost.population_costs(net, limits),
            incoming=dict(incoming),
            offsets=offsets,
            pop_offsets={name: offsets[name] for name in net.populations},
            n_ids=cost.total_ids(net),
        )

    def back_edge_estimate(self) -> dict[str, IntArray]:
        """Round-1 fan-out of back edges: each neuron reaches >= ceil(degree / core size)."""
        order = {name: i for i, name in enumerate(self.net.populations)}
        npc = self.limits.neurons_per_core or _UNLIMITED
        out = {n: np.zeros(p.size, dtype=np.int64) for n, p in self.net.populations.items()}
        for proj in self.net.projections:
            if proj.src in order and order[proj.dst] <= order[proj.src]:
                m = cost.codes_of(proj)
                deg = np.bincount(m.indices, minlength=m.shape[1]).astype(np.int64)
                out[proj.src] += -(-deg // npc)
        return out

    def run(
        self, back: dict[str, IntArray], orders: Orders
    ) -> tuple[dict[str, list[tuple[int, int, int]]], int, dict[str, IntArray], IntArray]:
        """One placement round; also returns each population's forward fan-out at its turn and
        the final fan-out of every neuron."""
        counts = np.zeros(self.n_ids, dtype=np.int64)
        ranges: dict[str, list[tuple[int, int, int]]] = {}
        forward: dict[str, IntArray] = {}
        core = _Core(index=0)
        for name in reversed(list(self.net.populations)):
            off, size = self.pop_offsets[name], self.net.populations[name].size
            forward[name] = counts[off : off + size].copy()
            ranges[name], core = self._place_population(
                name, forward[name] + back[name], counts, core, orders
            )
        n_cores = core.index + 1 if core.neurons else core.index
        return ranges, n_cores, forward, counts

    def _place_population(
        self, name: str, fan_out: IntArray, counts: IntArray, core: _Core, orders: Orders
    ) -> tuple[list[tuple[int, int, int]], _Core]:
        lim = self.limits
        cap_n = lim.neurons_per_core or _UNLIMITED
        cap_b = lim.synapse_memory_bits_per_core or _UNLIMITED
        cap_in = lim.fan_in_axons_per_core or _UNLIMITED
        cap_out = lim.fan_out_axons_per_core or _UNLIMITED
        size = self.net.populations[name].size
        costs = self.costs[name]
        incoming = self.incoming.get(name, [])
        dense = [p for p, d in incoming if d]
        sparse = self.sparse(name)
        tiling = self._tiling(name, fan_out, sparse, orders)
        if tiling is not None:  # place in tile order: permute every per-row array once
            costs = [c.permuted(tiling.order) for c in costs]
            fan_out = fan_out[tiling.order]
            sparse = [(m[tiling.order], off) for m, off in sparse]
        row_bits = sum((c.row_bits for c in costs), np.zeros(size, dtype=np.int64))
        cum_bits = np.concatenate([[0], np.cumsum(row_bits)])
        cum_out = np.concatenate([[0], np.cumsum(fan_out)])
        shared = [c for c in costs if c.pattern_bits is not None]
        dense_keys = np.unique(
            np.concatenate(
                [np.zeros(0, dtype=np.int64)]
                + [
                    np.arange(self.offsets[p.src], self.offsets[p.src] + p.weight.shape[1])
                    for p in dense
                ]
            )
        ).astype(np.int64)
        nnz_cum = sum(
            (m.indptr.astype(np.int64) for m, _ in sparse),
            np.zeros(size + 1, dtype=np.int64),
        )
        out: list[tuple[int, int, int]] = []
        if core.neurons and core.populations >= (lim.populations_per_core or _UNLIMITED):
            core = _Core(index=core.index + 1)
        core.populations += 1
        start = 0
        while start < size:
            stop = min(size, start + cap_n - core.neurons)
            stop = min(stop, _last_fit(cum_out, start, cap_out - core.fan_out))
            stop = min(stop, _last_fit(cum_bits, start, cap_b - core.bits))
            if shared and stop > start:
                stop = _shared_cut(shared, cum_bits, start, stop, cap_b - core.bits)
            new_dense = _setdiff(dense_keys, core.keys)
            new_keys = np.zeros(0, dtype=np.int64)
            if stop > start and new_dense.size > cap_in - core.keys.size:
                stop = start
            elif stop > start:
                room = cap_in - core.keys.size - new_dense.size
                stop, new_keys = _fan_in_cut(
                    sparse, nnz_cum, start, stop, room, np.union1d(core.keys, new_dense)
                )
            if tiling is not None and stop > start and tiling.blocks.size > 2:
                # end at a block (one channel of one tile) boundary if that keeps at least
                # 3/4 of the chunk: a core then needs no part of the next tile's halo
                b = int(tiling.blocks[np.searchsorted(tiling.blocks, stop, side="right") - 1])
                if b > start and 4 * (b - start) >= 3 * (stop - start) and b < stop:
                    stop = b
                    new_keys = _setdiff(_fan_in_keys(sparse, start, stop), core.keys)
            if stop == start and core.neurons == 0:  # a neuron too big for any core: alone
                stop = start + 1
                new_keys = _setdiff(_fan_in_keys(sparse, start, stop), core.keys)
            if stop == start:
                core = _Core(index=core.index + 1, populations=1)
                continue
            added = _setdiff(np.union1d(new_keys, new_dense), core.keys)
            counts[added] += 1
            core.keys = np.union1d(core.keys, added)
            core.neurons += stop - start
            core.bits += cost.chunk_bits(costs, start, stop)
            core.fan_out += int(cum_out[stop] - cum_out[start])
            out.append((start, stop, core.index))
            start = stop
            if start < size:
                core = _Core(index=core.index + 1, populations=1)
        if tiling is not None:
            out = _unpermute(out, tiling.order)
        return out, core

    def _tiling(
        self, name: str, fan_out: IntArray, sparse: list[tuple[sp.csr_matrix, int]], orders: Orders
    ) -> _Tiling | None:
        """The placement order of a population (docs/MAPPING.md §2): ``orders``'s if it has
        one, else ``choose_tiling``'s for a convolution-like population; None for C order."""
        chosen = orders.get(name)
        if chosen == "sources" or chosen == "clusters":
            return self.ordered(name, chosen)
        shape = self.image(name)
        if shape is None:
            return None
        if chosen is not None:
            if chosen[0] == "regions":
                order, blocks = tile_order(shape, (chosen[1], chosen[2]), self.regions(name))
            else:
                order, blocks = tile_order(shape, (chosen[0], chosen[1]))
            return _Tiling(order=order, blocks=blocks)
        return choose_tiling(
            shape, self.costs[name], fan_out, sparse, self.limits, self.dense_axons(name)
        )

    def alternatives(self, name: str) -> list[Order]:
        """Orders the search tries for ``name``: one-column strips (``ceil(H/2) x 1``,
        ``ceil(H/4) x 1``) of a convolution-like population, and tiles inside its ``regions``.
        For another with sparse incoming
        projections: source order, unless its rows are in that order already; and cluster
        order when, even in source order, the rows one core could hold by neurons and synapse
        memory read more sources than its fan-in axons (at most ``CLUSTER_MAX_ROWS`` rows)."""
        out: list[Order] = []
        shape = self.image(name)
        if shape is not None:
            out += [(-(-shape[1] // g), 1) for g in (2, 4) if shape[1] >= g]
            region = self.regions(name)
            if region is not None:  # interior tiles (h/g x w/g) whose first fits the axons
                rows, cols = (region == 0).any(1).nonzero()[0], (region == 0).any(0).nonzero()[0]
                corner, sparse = (int(rows[0]), int(cols[0])), self.sparse(name)
                for g in (1, 2, 3):
                    tile = (-(-rows.size // g), -(-cols.size // g))
                    if _tile_fan_in(shape, corner, tile, sparse, shape[0]) <= self.axons(name):
                        out.append(("regions", *tile))
            return list(dict.fromkeys(out))
        sparse = self.sparse(name)
        if not sparse:
            return []
        by_source = self.ordered(name, "sources").order
        if np.any(np.diff(by_source) != 1):
            out.append("sources")
        size = self.net.populations[name].size
        rows = cost.rows_per_core(self.costs[name], size, self.limits)
        window = [(m[by_source[:rows]], off) for m, off in sparse]
        if size <= CLUSTER_MAX_ROWS and _fan_in_keys(window, 0, rows).size > self.axons(name):
            out.append("clusters")
        return out

    def regions(self, name: str) -> IntArray | None:
        """The interior and border bands of a convolution-like population's image, as an
        ``(H, W)`` array of region numbers; None if it has no such split.

        Where padding clips the kernel (rows and columns at the image edge) a position reads
        a different shared pattern than the interior, so a core holding a tile that straddles
        the edge stores up to four pattern sets per channel (nine over the image). Region 0
        is the rectangle of positions whose patterns (channel 0) equal the middle position's;
        1 to 4 are the bands above, right of, below and left of it, each with one corner (a
        pinwheel), so a core inside one region stores one or two pattern sets.
        """
        shape = self.image(name)
        assert shape is not None
        _, h, w = shape
        patterns = [c.pattern for c in self.costs[name] if c.pattern is not None]
        cls = np.stack([p[: h * w] for p in patterns], axis=-1).reshape(h, w, -1)
        middle = cls[h // 2, w // 2]
        rows = np.flatnonzero((cls[:, w // 2] == middle).all(-1))
        cols = np.flatnonzero((cls[h // 2] == middle).all(-1))
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        if rows.size != y1 - y0 or cols.size != x1 - x0 or (y0, y1, x0, x1) == (0, h, 0, w):
            return None
        y, x = np.mgrid[0:h, 0:w]
        return np.select(
            [
                (y >= y0) & (y < y1) & (x >= x0) & (x < x1),
                (y < y0) & (x < x1),
                (y < y1) & (x >= x1),
                (y >= y1) & (x >= x0),
            ],
            [0, 1, 2, 3],
            default=4,
        ).astype(np.int64)

    def ordered(self, name: str, kind: Literal["sources", "clusters"]) -> _Tiling:
        """``name``'s rows in source or cluster order (computed once)."""
        if (name, kind) not in self.cached_orders:
            size = self.net.populations[name].size
            sparse = self.sparse(name)
            if kind == "sources":
                order = source_order(sparse, size)
            else:
                rows = cost.rows_per_core(self.costs[name], size, self.limits)
                order = cluster_order(sparse, size, self.axons(name), rows)
            self.cached_orders[(name, kind)] = _Tiling(order=order, blocks=np.array([0, size]))
        return self.cached_orders[(name, kind)]

    def axons(self, name: str) -> int:
        """Fan-in axons a core has for ``name``'s sparse-encoded sources."""
        return (self.limits.fan_in_axons_per_core or _UNLIMITED) - self.dense_axons(name)

    def sparse(self, name: str) -> list[tuple[sp.csr_matrix, int]]:
        """Codes and source offset of ``name``'s sparse-encoded incoming projections."""
        return [
            (cost.codes_of(p), self.offsets[p.src]) for p, d in self.incoming.get(name, []) if not d
        ]

    def image(self, name: str) -> tuple[int, int, int] | None:
        """``(C, H, W)`` of a convolution-like population (``(C, L)`` as ``(C, 1, L)``; a
        ``shared`` incoming projection), or None."""
        pop = self.net.populations[name]
        if len(pop.shape) not in (2, 3) or not any(c.kind == "shared" for c in self.costs[name]):
            return None
        c_, h, w = (pop.shape[0], 1, pop.shape[1]) if len(pop.shape) == 2 else pop.shape
        return None if h * w < 2 else (int(c_), int(h), int(w))

    def dense_axons(self, name: str) -> int:
        """Fan-in axons every core holding ``name`` pays for its dense-encoded projections."""
        srcs = {p.src for p, d in self.incoming.get(name, []) if d}
        return sum(self.net.size_of(s) for s in srcs)


@dataclass(frozen=True, kw_only=True)
class _Tiling:
    """Placement order of a population and the cut points that end whole blocks.

    ``order[j]`` is the neuron placed ``j``-th; ``blocks`` are the positions (in placement
    order, ``0`` and ``size`` included) where one (tile, channel) block ends and the next
    starts (just ``[0, size]`` in source or cluster order).
    """

    order: IntArray
    blocks: IntArray


def source_order(sparse: list[tuple[sp.csr_matrix, int]], size: int) -> IntArray:
    """The rows sorted by their smallest source (global id; rows without one last), ties in C
    order: neurons reading the same sources become neighbours, so next-fit puts them on one
    core even when they are interleaved in C order (a strided or permuted connectivity).

    Examples:
        Rows 0 and 2 read sources 5 and 6, rows 1 and 3 read 0 and 1:

        >>> m = sp.csr_matrix(([1, 1, 1, 1, 1, 1, 1, 1],
        ...                    ([0, 0, 1, 1, 2, 2, 3, 3], [5, 6, 0, 1, 5, 6, 0, 1])))
        >>> source_order([(m, 0)], 4).tolist()
        [1, 3, 0, 2]
    """
    key = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
    for m, off in sparse:
        counts = np.diff(m.indptr)
        rows = np.repeat(np.arange(size, dtype=np.int64), counts)
        np.minimum.at(key, rows, m.indices.astype(np.int64) + off)
    order: IntArray = np.argsort(key, kind="stable").astype(np.int64)
    return order


def cluster_order(
    sparse: list[tuple[sp.csr_matrix, int]], size: int, axons: int, rows: int
) -> IntArray:
    """The rows grown greedily into clusters that each fit one core.

    A cluster starts from the lowest unplaced row; each step adds the unplaced row with the
    fewest sources outside the cluster (ties: lowest index), until that row would take the
    cluster past ``axons`` distinct sources or the cluster has ``rows`` rows. Neurons with
    overlapping random source sets (a reservoir) then share a core's fan-in axons, which no
    sort by index finds. Next-fit then cuts the order into cores as usual (snapping its cuts
    to cluster boundaries, as tiles do, measured 3 cores worse of 740). Each step scans every
    row: ``size**2`` work.

    Examples:
        Rows 0 and 2 read sources {0, 1}, rows 1 and 3 read {0, 5}; two axons per cluster:

        >>> m = sp.csr_matrix(([1] * 8, ([0, 0, 1, 1, 2, 2, 3, 3], [0, 1, 0, 5, 0, 1, 0, 5])))
        >>> cluster_order([(m, 0)], 4, axons=2, rows=4).tolist()
        [0, 2, 1, 3]
    """
    rows_of = np.concatenate(
        [np.repeat(np.arange(size, dtype=np.int64), np.diff(m.indptr)) for m, _ in sparse]
    )
    keys = np.concatenate([m.indices.astype(np.int64) + off for m, off in sparse])
    uniq, cols = np.unique(keys, return_inverse=True)
    a = sp.csr_matrix((np.ones(keys.size, dtype=np.int8), (rows_of, cols)), shape=(size, uniq.size))
    a.sum_duplicates()
    by_source = a.tocsc()
    degree = np.diff(a.indptr).astype(np.int64)
    placed = np.zeros(size, dtype=np.bool_)
    in_cluster = np.zeros(uniq.size, dtype=np.bool_)
    need = degree.copy()  # sources each row would add to the open cluster
    order: list[int] = []
    members: list[IntArray] = []  # the open cluster's sources, row by row
    n_sources = 0
    seed = 0
    while len(order) < size:
        if not members:
            while placed[seed]:
                seed += 1
            r = seed
        else:
            r = int(np.argmin(need))
            if n_sources + need[r] > axons or len(members) >= rows:
                in_cluster[np.concatenate(members)] = False
                members, n_sources = [], 0
                need = np.where(placed, _UNLIMITED, degree)
                continue
        srcs = a.indices[a.indptr[r] : a.indptr[r + 1]]
        new = srcs[~in_cluster[srcs]].astype(np.int64)
        in_cluster[new] = True
        members.append(new)
        n_sources += new.size
        placed[r] = True
        order.append(r)
        readers = np.concatenate(
            [by_source.indices[by_source.indptr[c] : by_source.indptr[c + 1]] for c in new]
            or [np.zeros(0, dtype=np.int32)]
        )
        need -= np.bincount(readers, minlength=size)
        need[r] = _UNLIMITED
    return np.array(order, dtype=np.int64)


def tile_order(
    shape: tuple[int, int, int], tile: tuple[int, int], region: IntArray | None = None
) -> tuple[IntArray, IntArray]:
    """Neurons of a C-order ``(C, H, W)`` population in tile order, and block boundaries.

    Tiles of ``tile = (th, tw)`` positions are visited row by row; inside a tile, channel by
    channel, and inside a channel row by row. So one tile of one channel (a block) is ``th``
    short C-order ranges, and a core holding a whole tile holds ``C * th`` ranges (fewer when
    ``tw == W``). With ``region`` (an ``(H, W)`` array of region numbers), the regions are
    visited in turn, each tiled from its own top-left position.
    """
    c_, h, w = shape
    th, tw = tile
    ch, y, x = np.meshgrid(
        np.arange(c_, dtype=np.int64),
        np.arange(h, dtype=np.int64),
        np.arange(w, dtype=np.int64),
        indexing="ij",
    )
    reg = np.zeros((h, w), dtype=np.int64) if region is None else region
    ys, xs = y[0], x[0]
    y0 = np.full(int(reg.max()) + 1, h, dtype=np.int64)
    x0 = np.full(y0.size, w, dtype=np.int64)
    np.minimum.at(y0, reg, ys)
    np.minimum.at(x0, reg, xs)
    at = (reg * h + (ys - y0[reg]) // th) * w + (xs - x0[reg]) // tw  # region, tile row, col
    tile_id = np.broadcast_to(at, (c_, h, w))
    key = np.stack([x.ravel(), y.ravel(), ch.ravel(), tile_id.ravel()])
    order = np.lexsort(key).astype(np.int64)  # by tile, then channel, y, x
    block = tile_id.ravel()[order] * c_ + ch.ravel()[order]
    cuts = np.flatnonzero(np.diff(block)) + 1
    blocks = np.concatenate([[0], cuts, [order.size]]).astype(np.int64)
    return order, blocks


def choose_tiling(
    shape: tuple[int, int, int],
    costs: list[cost.ProjectionCost],
    fan_out: IntArray,
    sparse: list[tuple[sp.csr_matrix, int]],
    limits: Limits,
    dense_axons: int,
) -> _Tiling | None:
    """The tile size with the fewest estimated cores whose every block fits a core's fan-in.

    Candidates are the tile sizes ``(ceil(H / gy), ceil(W / gx))``. For each, the per-tile
    neurons, synapse bits (shared patterns once per tile), fan-out and (for the tile in the
    middle of the grid, which has the widest halo) fan-in are measured; a tile over a core is
    split by channel (``ceil`` of its largest ratio), smaller tiles are packed (their ratios
    summed). Ties go to larger tiles. The estimate only orders the candidates: the packing
    itself is the next-fit of ``_place_population`` over the tile order.
    """
    c_, h, w = shape
    size = c_ * h * w
    caps = [
        limits.neurons_per_core or _UNLIMITED,
        limits.synapse_memory_bits_per_core or _UNLIMITED,
        limits.fan_out_axons_per_core or _UNLIMITED,
    ]
    cap_in = limits.fan_in_axons_per_core or _UNLIMITED
    y = np.tile(np.repeat(np.arange(h, dtype=np.int64), w), c_)
    x = np.tile(np.arange(w, dtype=np.int64), c_ * h)
    point = sum((c.row_bits for c in costs), np.zeros(size, dtype=np.int64))
    shared = [c for c in costs if c.pattern is not None and c.pattern_bits is not None]
    sizes = sorted(
        {
            (th, tw)
            for th in {-(-h // g) for g in range(1, h + 1)}
            for tw in {-(-w // g) for g in range(1, w + 1)}
            if th == h or tw == w or max(th, tw) <= 4 * min(th, tw)
        },
        key=lambda t: (-t[0] * t[1], abs(t[0] - t[1])),
    )
    scored = []
    for th, tw in sizes:
        gx = -(-w // tw)
        tid = (y // th) * gx + x // tw
        n_t = int(tid.max()) + 1
        use: list[npt.NDArray[np.float64]] = [
            np.bincount(tid, minlength=n_t).astype(np.float64),
            np.bincount(tid, weights=point, minlength=n_t).astype(np.float64),
            np.bincount(tid, weights=fan_out, minlength=n_t).astype(np.float64),
        ]
        for c in shared:
            assert c.pattern is not None
            assert c.pattern_bits is not None
            pair = tid * (int(c.pattern.max()) + 1) + c.pattern
            _, first = np.unique(pair, return_index=True)
            use[1] = use[1] + np.bincount(tid[first], weights=c.pattern_bits[first], minlength=n_t)
        ratio = np.max([u / cap for u, cap in zip(use, caps, strict=True)], axis=0)
        scored.append((_estimate(ratio), -th * tw, th, tw, ratio))
    scored.sort(key=lambda t: t[:2])
    best: tuple[float, int, int, int] | None = None
    tried = 0
    for est, neg, th, tw, ratio in scored:
        if best is not None and (est > best[0] or tried >= _MAX_FAN_IN_TRIES):
            break
        # one channel's sources first: a cheap rejection of tiles whose halo is too wide
        if _middle_tile_fan_in(shape, (th, tw), sparse, 1) + dense_axons > cap_in:
            continue
        tried += 1
        fan_in = _middle_tile_fan_in(shape, (th, tw), sparse, shape[0]) + dense_axons
        if fan_in > cap_in:
            continue
        # every tile's sources are output axons of the layer below: halos cost cores there
        upstream = ratio.size * fan_in / (limits.fan_out_axons_per_core or _UNLIMITED)
        est = _estimate(np.maximum(ratio, fan_in / cap_in)) + upstream
        if best is None or (est, neg) < best[:2]:
            best = (est, neg, th, tw)
    if best is None or (best[2], best[3]) == (h, w):  # one tile: plain C order, no block cuts
        return None
    tile = (best[2], best[3])
    order, blocks = tile_order(shape, tile)
    return _Tiling(order=order, blocks=blocks)


def _estimate(ratio: npt.NDArray[np.float64]) -> float:
    """Cores for tiles using ``ratio`` of a core each: big ones alone, small ones packed."""
    big = ratio > 0.5
    return float(np.ceil(ratio[big]).sum() + np.ceil(ratio[~big].sum()))


def _middle_tile_fan_in(
    shape: tuple[int, int, int],
    tile: tuple[int, int],
    sparse: list[tuple[sp.csr_matrix, int]],
    channels: int,
) -> int:
    """Distinct sources of the tile in the middle of the grid, its first ``channels``."""
    _, h, w = shape
    th, tw = tile
    gy, gx = -(-h // th), -(-w // tw)
    return _tile_fan_in(shape, ((gy // 2) * th, (gx // 2) * tw), tile, sparse, channels)


def _tile_fan_in(
    shape: tuple[int, int, int],
    corner: tuple[int, int],
    tile: tuple[int, int],
    sparse: list[tuple[sp.csr_matrix, int]],
    channels: int,
) -> int:
    """Distinct sources of the tile with top-left position ``corner``, its first ``channels``."""
    _, h, w = shape
    (y0, x0), (th, tw) = corner, tile
    ys = np.arange(y0, min(h, y0 + th), dtype=np.int64)
    xs = np.arange(x0, min(w, x0 + tw), dtype=np.int64)
    rows = (
        np.arange(channels, dtype=np.int64)[:, None, None] * (h * w) + ys[None, :, None] * w + xs
    ).ravel()
    parts = [m[rows].indices.astype(np.int64) + off for m, off in sparse]
    if not parts:
        return 0
    return int(np.unique(np.concatenate(parts)).size)


def _unpermute(out: list[tuple[int, int, int]], order: IntArray) -> list[tuple[int, int, int]]:
    """Chunks ``(start, stop, core)`` of the placement order as C-order neuron ranges."""
    if not out:
        return out
    core_at = np.empty(order.size, dtype=np.int64)
    for s, e, k in out:
        core_at[s:e] = k
    core_of = np.empty(order.size, dtype=np.int64)
    core_of[order] = core_at
    cut = np.flatnonzero(np.diff(core_of)) + 1
    starts = np.concatenate([[0], cut])
    stops = np.concatenate([cut, [order.size]])
    return [
        (int(s), int(e), int(core_of[s]))
        for s, e in zip(starts.tolist(), stops.tolist(), strict=True)
    ]


def _fan_in_keys(sparse: list[tuple[sp.csr_matrix, int]], start: int, stop: int) -> IntArray:
    """Sorted distinct sources of rows ``[start, stop)`` over sparse-encoded matrices."""
    _, keys, _ = _first_rows(sparse, start, stop)
    return keys


def _first_rows(
    sparse: list[tuple[sp.csr_matrix, int]], start: int, stop: int
) -> tuple[int, IntArray, IntArray]:
    """Rows ``[start, stop)``: their count, every distinct source (sorted, global id) and the
    first row (from ``start``) that reads it. A per-source minimum, not a sort of the synapses:
    a window holds up to millions of them."""
    width = stop - start
    keys, rows = [], []
    for m, off in sparse:
        lo, hi = int(m.indptr[start]), int(m.indptr[stop])
        row = np.repeat(np.arange(width, dtype=np.int64), np.diff(m.indptr[start : stop + 1]))
        first = np.full(m.shape[1], width, dtype=np.int64)
        np.minimum.at(first, m.indices[lo:hi], row)
        src = np.flatnonzero(first < width)
        keys.append(src.astype(np.int64) + off)
        rows.append(first[src])
    if not keys:
        return width, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    uk, fr = np.concatenate(keys), np.concatenate(rows)
    if len(keys) > 1:  # several projections may share a source: keep its earliest row
        order = np.lexsort((fr, uk))
        uk, fr = uk[order], fr[order]
        keep = np.ones(uk.size, dtype=bool)
        keep[1:] = uk[1:] != uk[:-1]
        uk, fr = uk[keep], fr[keep]
    return width, uk, fr


def _fan_in_cut(
    sparse: list[tuple[sp.csr_matrix, int]],
    nnz_cum: IntArray,
    start: int,
    stop: int,
    room: int,
    existing: IntArray,
) -> tuple[int, IntArray]:
    """Largest ``e <= stop`` whose rows ``[start, e)`` add at most ``room`` new sources,
    and those new sources; windows grow geometrically so work stays near the chunk's."""
    if not sparse:
        return stop, np.zeros(0, dtype=np.int64)
    budget = max(4 * room, 1024)
    while True:
        hi = int(np.searchsorted(nnz_cum, nnz_cum[start] + budget, side="right")) - 1
        hi = min(stop, max(hi, start + 1))
        fit, first_keys, first_rows = _prefix_distinct(sparse, start, hi, room, existing)
        if fit < hi or hi == stop:
            return fit, first_keys[first_rows < fit - start]
        budget *= 4


def _last_fit(cum: IntArray, start: int, room: int) -> int:
    """Largest ``e`` with ``cum[e] - cum[start] <= room`` (``start`` if even one row is over)."""
    if room < 0:
        return start
    return int(np.searchsorted(cum, cum[start] + room, side="right")) - 1


def _shared_cut(
    shared: list[cost.ProjectionCost], cum_bits: IntArray, start: int, stop: int, room: int
) -> int:
    """Tighten ``stop`` by the once-per-core pattern bits of shared-kernel projections."""
    extra = np.zeros(stop - start, dtype=np.int64)
    for c in shared:
        assert c.pattern_bits is not None
        assert c.prev_same is not None
        new = c.prev_same[start:stop] < start
        extra += np.where(new, c.pattern_bits[start:stop], 0)
    total = cum_bits[start + 1 : stop + 1] - cum_bits[start] + np.cumsum(extra)
    return start + int(np.searchsorted(total, room, side="right"))


def _setdiff(a: IntArray, sorted_b: IntArray) -> IntArray:
    """Elements of sorted unique ``a`` not in sorted ``sorted_b``."""
    if sorted_b.size == 0 or a.size == 0:
        return a
    pos = np.minimum(np.searchsorted(sorted_b, a), sorted_b.size - 1)
    out: IntArray = a[sorted_b[pos] != a]
    return out


def _prefix_distinct(
    sparse: list[tuple[sp.csr_matrix, int]],
    start: int,
    stop: int,
    room: int,
    existing: IntArray,
) -> tuple[int, IntArray, IntArray]:
    """For rows ``[start, stop)``: the largest prefix end adding at most ``room`` sources not in
    ``existing``, and every new source with the first row (from ``start``) that needs it."""
    width, uk, fr = _first_rows(sparse, start, stop)
    new = _setdiff_mask(uk, existing)
    uk, fr = uk[new], fr[new]
    per_row = np.cumsum(np.bincount(fr, minlength=width))
    fit = start + int(np.searchsorted(per_row, room, side="right"))
    return fit, uk, fr


def _setdiff_mask(a: IntArray, sorted_b: IntArray) -> npt.NDArray[np.bool_]:
    if sorted_b.size == 0:
        return np.ones(a.size, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_b, a), sorted_b.size - 1)
    return np.asarray(sorted_b[pos] != a)


def cores_used(net: Net) -> int:
    """Distinct (chip, core) pairs of a placed net."""
    return len({(pl.chip, pl.core) for p in net.populations.values() for pl in p.placement or ()})


def chips_used(net: Net) -> int:
    """Distinct chips of a placed net."""
    return len({pl.chip for p in net.populations.values() for pl in p.placement or ()})


__all__ = ["MAX_ROUNDS", "Map", "chips_used", "cores_used", "partition", "place"]
