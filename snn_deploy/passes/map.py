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
4. **Chips:** cores are numbered in graph order and filled into chips consecutively, so the
   cores of one layer and of adjacent layers share a chip; the report gives the inter-chip
   traffic this leaves.

Everything works on CSR ``indptr``/``indices`` with NumPy, per core rather than per synapse.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from snn_deploy.ir.net import Net, Placement, Projection
from snn_deploy.passes.base import Pass, PassContext
from snn_deploy.target import cost
from snn_deploy.target.rules import check_design_rules
from snn_deploy.target.schema import Limits

IntArray = npt.NDArray[np.int64]

MAX_ROUNDS = 4
"""Placement rounds at most, to settle the fan-out estimate of recurrent (back) edges."""

_UNLIMITED = 1 << 62

_MAX_FAN_IN_TRIES = 8
"""Tile sizes whose full fan-in is measured at most, per tiled population and round."""


@dataclass(frozen=True, kw_only=True)
class Map(Pass):
    """Partition neurons into cores and cores into chips under every limit of the target.

    What: sets ``placement`` of every population to ``Placement(start, stop, chip, core)``
    neuron ranges (``core`` counts within its chip; a tiled population has several ranges on
    one core), using as few cores as the heuristic of the module docstring finds, then runs
    every design rule on the placed net.

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
            raise TypeError("map takes a quantized Net")
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
    if all(lim is None for lim in per_core):  # nothing to pack against: one core
        return {name: [(0, pop.size, 0)] for name, pop in net.populations.items()}, 1
    problem = _Problem.build(net, limits)
    back = problem.back_edge_estimate()
    ranges: dict[str, list[tuple[int, int, int]]] = {}
    n_cores = 0
    for _ in range(MAX_ROUNDS):
        ranges, n_cores, forward, final = problem.run(back)
        short = False
        for name, off in problem.pop_offsets.items():
            size = net.populations[name].size
            measured = final[off : off + size] - forward[name]
            if np.any(measured > back[name]):
                short = True
                back[name] = np.maximum(back[name], measured)
        if not short:
            break
    return ranges, n_cores


@dataclass(kw_only=True)
class _Core:
    """The open core's use so far (mutable working state of one placement round)."""

    index: int
    neurons: int = 0
    bits: int = 0
    fan_out: int = 0
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
        self, back: dict[str, IntArray]
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
                name, forward[name] + back[name], counts, core
            )
        n_cores = core.index + 1 if core.neurons else core.index
        return ranges, n_cores, forward, counts

    def _place_population(
        self, name: str, fan_out: IntArray, counts: IntArray, core: _Core
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
        sparse = [(cost.codes_of(p), self.offsets[p.src]) for p, d in incoming if not d]
        tiling = self._tiling(name, fan_out, sparse)
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
                core = _Core(index=core.index + 1)
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
                core = _Core(index=core.index + 1)
        if tiling is not None:
            out = _unpermute(out, tiling.order)
        return out, core

    def _tiling(
        self, name: str, fan_out: IntArray, sparse: list[tuple[sp.csr_matrix, int]]
    ) -> _Tiling | None:
        """Spatial tiling of a convolution-like population (docs/MAPPING.md §2), or None."""
        pop = self.net.populations[name]
        costs = self.costs[name]
        if len(pop.shape) not in (2, 3) or not any(c.kind == "shared" for c in costs):
            return None
        c_, h, w = (pop.shape[0], 1, pop.shape[1]) if len(pop.shape) == 2 else pop.shape
        if h * w < 2:
            return None
        return choose_tiling(
            (int(c_), int(h), int(w)), costs, fan_out, sparse, self.limits, self.dense_axons(name)
        )

    def dense_axons(self, name: str) -> int:
        """Fan-in axons every core holding ``name`` pays for its dense-encoded projections."""
        srcs = {p.src for p, d in self.incoming.get(name, []) if d}
        return sum(self.net.size_of(s) for s in srcs)


@dataclass(frozen=True, kw_only=True)
class _Tiling:
    """Placement order of a tiled population and the cut points that end whole blocks.

    ``order[j]`` is the neuron placed ``j``-th; ``blocks`` are the positions (in placement
    order, ``0`` and ``size`` included) where one (tile, channel) block ends and the next
    starts.
    """

    order: IntArray
    blocks: IntArray
    tile: tuple[int, int]


def tile_order(shape: tuple[int, int, int], tile: tuple[int, int]) -> tuple[IntArray, IntArray]:
    """Neurons of a C-order ``(C, H, W)`` population in tile order, and block boundaries.

    Tiles of ``tile = (th, tw)`` positions are visited row by row; inside a tile, channel by
    channel, and inside a channel row by row. So one tile of one channel (a block) is ``th``
    short C-order ranges, and a core holding a whole tile holds ``C * th`` ranges (fewer when
    ``tw == W``).
    """
    c_, h, w = shape
    th, tw = tile
    ch, y, x = np.meshgrid(
        np.arange(c_, dtype=np.int64),
        np.arange(h, dtype=np.int64),
        np.arange(w, dtype=np.int64),
        indexing="ij",
    )
    gx = -(-w // tw)
    tile_id = (y // th) * gx + x // tw
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
    return _Tiling(order=order, blocks=blocks, tile=tile)


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
    y0, x0 = (gy // 2) * th, (gx // 2) * tw
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
