"""``map``: Before/Expected core assignments for every limit, determinism, coverage, errors."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest
import scipy.sparse as sp

from snn_deploy.errors import DesignRuleError, PassError
from snn_deploy.frontends.nir import load
from snn_deploy.ir.net import (
    Net,
    NeuronFixed,
    Placement,
    Population,
    Projection,
    SynapseFixed,
)
from snn_deploy.ir.types import ResetMode
from snn_deploy.passes import pipeline
from snn_deploy.passes.base import PassContext
from snn_deploy.passes.map import Map, cores_used, place
from snn_deploy.reports.placement import placement
from snn_deploy.target import cost
from snn_deploy.target.load import load_target
from snn_deploy.target.rules import check_design_rules
from snn_deploy.target.schema import Limits, Target
from tests.graphs import conv_codes, every_node_type

SPEC = load_target("sim").numeric
W = SPEC.weight.width  # bits of one weight code


def target(**limits: int) -> Target:
    """The sim target with the given (small, test-only) limits."""
    return dataclasses.replace(load_target("sim"), limits=Limits(**limits))


def pop(name: str, n: int, vth: int = 10) -> Population:
    fixed = NeuronFixed(
        scale=1.0,
        du=np.full(n, 4095),
        dv=np.zeros(n, dtype=np.int64),
        vth=np.full(n, vth),
        bias_mant=np.zeros(n, dtype=np.int64),
        bias_exp=np.zeros(n, dtype=np.int64),
    )
    return Population(
        name=name,
        node_type="LIF",
        shape=(n,),
        alpha=1.0,
        beta=0.0,
        bias=0.0,
        threshold=1.0,
        reset=ResetMode.ZERO,
        fixed=fixed,
    )


def proj(name: str, src: str, dst: str, codes: object) -> Projection:
    m = sp.csr_matrix(np.asarray(codes) if not sp.issparse(codes) else codes, dtype=np.int64)
    return Projection(
        name=name,
        src=src,
        dst=dst,
        weight=sp.csr_matrix(m, dtype=float),
        fixed=SynapseFixed(codes=m, exp=0),
    )


def net(inputs: dict, pops: list[Population], projs: list[Projection]) -> Net:
    out = Net(
        dt=1e-3,
        inputs=inputs,
        populations={p.name: p for p in pops},
        projections=projs,
        outputs={"y": pops[-1].name},
        numeric=SPEC,
    )
    out.verify()
    return out


def ranges(mapped: Net, name: str) -> list[tuple[int, int, int, int]]:
    return [(p.start, p.stop, p.chip, p.core) for p in mapped.populations[name].placement]


def test_splits_by_neurons_and_fills_chips_in_order():
    n = net({"x": (2,)}, [pop("p", 10)], [proj("w", "x", "p", np.ones((10, 2)))])
    mapped = Map().run(n, PassContext(target=target(neurons_per_core=4, cores_per_chip=2)))
    assert ranges(mapped, "p") == [(0, 4, 0, 0), (4, 8, 0, 1), (8, 10, 1, 0)]


def test_splits_by_dense_synapse_memory():
    # dense: 4 sources x W bits per neuron; 12 W + 4 bits per core -> 3 neurons per core
    n = net({"x": (4,)}, [pop("p", 6)], [proj("w", "x", "p", np.ones((6, 4)))])
    mapped = place(n, target(synapse_memory_bits_per_core=12 * W + 4).limits)
    assert ranges(mapped, "p") == [(0, 3, 0, 0), (3, 6, 0, 1)]


def test_sparse_encoding_pays_index_bits():
    # one synapse per neuron with distinct weights (nothing shared): W + log2(8) bits
    n = net({"x": (8,)}, [pop("p", 8)], [proj("w", "x", "p", np.diag(np.arange(1, 9)))])
    t = target(neurons_per_core=8, synapse_memory_bits_per_core=3 * (W + 3))
    (c,) = cost.population_costs(n, t.limits)["p"]
    assert c.kind == "sparse"
    assert c.row_bits.tolist() == [W + 3] * 8
    assert ranges(place(n, t.limits), "p") == [(0, 3, 0, 0), (3, 6, 0, 1), (6, 8, 0, 2)]


def test_convolution_shares_its_kernel_once_per_core():
    # 1-D convolution, kernel [1, 2, 3], 10 inputs, no padding: 8 rows with one pattern
    w = np.zeros((8, 10))
    for i in range(8):
        w[i, i : i + 3] = [1, 2, 3]
    n = net({"x": (10,)}, [pop("p", 8)], [proj("conv", "x", "p", w)])
    t = target(neurons_per_core=8)
    (c,) = cost.population_costs(n, t.limits)["p"]
    assert c.kind == "shared"
    # pattern once: 3 entries x (W + 3) bits, plus a 3-bit pointer per neuron
    assert cost.chunk_bits([c], 0, 8) == 3 * (W + 3) + 8 * 3
    assert cost.chunk_bits([c], 4, 8) == 3 * (W + 3) + 4 * 3
    assert c.total_min_bits() == 3 * (W + 3) + 8 * 3


def test_splits_by_fan_in():
    # neuron i reads inputs 3i..3i+2 (distinct weights: sparse); 6 axons per core
    w = np.zeros((4, 12))
    for i in range(4):
        w[i, 3 * i : 3 * i + 3] = [i + 1, i + 2, i + 4]
    n = net({"x": (12,)}, [pop("p", 4)], [proj("w", "x", "p", w)])
    t = target(fan_in_axons_per_core=6)
    assert ranges(place(n, t.limits), "p") == [(0, 2, 0, 0), (2, 4, 0, 1)]


def test_fan_in_counts_sources_shared_by_neurons_once():
    # both neurons read the same 3 inputs: 3 axons, not 6
    n = net({"x": (3,)}, [pop("p", 2)], [proj("w", "x", "p", [[1, 0, 2], [0, 3, 4]])])
    t = target(fan_in_axons_per_core=3)
    mapped = place(n, t.limits)
    assert ranges(mapped, "p") == [(0, 2, 0, 0)]
    assert cost.core_usage(mapped, t.limits)[0].fan_in == 3


def test_splits_by_fan_out_with_destinations_placed_first():
    # b: 4 neurons, 4 W bits each, 4 W bits per core -> one per core; every a neuron reaches
    # 4 cores, 8 output axons per core -> two a neurons per core. Reverse graph order: b is
    # placed first (b[3] last), then a starts in b[3]'s core and a[2:4] opens a fifth core.
    # Backfill: a has no sources, so moving a[2:4] changes no fan-out; it fits b[0]'s core
    # (3 neurons, 8 output axons): 4 cores. Cores are numbered by graph order.
    n = net(
        {"x": (1,)},
        [pop("a", 4), pop("b", 4)],
        [proj("ab", "a", "b", np.ones((4, 4)))],
    )
    t = target(neurons_per_core=4, synapse_memory_bits_per_core=4 * W, fan_out_axons_per_core=8)
    mapped = Map().run(n, PassContext(target=t))
    assert ranges(mapped, "a") == [(0, 2, 0, 0), (2, 4, 0, 1)]
    assert ranges(mapped, "b") == [(0, 1, 0, 1), (1, 2, 0, 2), (2, 3, 0, 3), (3, 4, 0, 0)]
    assert [u.fan_out for u in cost.core_usage(mapped, t.limits)] == [8, 8, 0, 0]


def test_small_populations_share_a_core():
    n = net(
        {"x": (1,)},
        [pop("a", 2), pop("b", 2), pop("c", 2)],
        [
            proj("xa", "x", "a", np.ones((2, 1))),
            proj("ab", "a", "b", np.ones((2, 2))),
            proj("bc", "b", "c", np.ones((2, 2))),
        ],
    )
    mapped = place(n, target(neurons_per_core=4).limits)
    # reverse graph order: c then b fill one core, a opens the next; numbered in graph order
    assert ranges(mapped, "a") == [(0, 2, 0, 0)]
    assert ranges(mapped, "b") == [(0, 2, 0, 1)]
    assert ranges(mapped, "c") == [(0, 2, 0, 1)]


def _chain() -> Net:
    return net(
        {"x": (1,)},
        [pop("a", 2), pop("b", 2), pop("c", 2)],
        [
            proj("xa", "x", "a", np.ones((2, 1))),
            proj("ab", "a", "b", np.ones((2, 2))),
            proj("bc", "b", "c", np.ones((2, 2))),
        ],
    )


def test_one_population_per_core_without_other_limits():
    """``populations_per_core = 1`` (the FPGA targets): a core per population, numbered in
    graph order, where an unlimited target puts all three on one core."""
    mapped = Map().run(_chain(), PassContext(target=target(populations_per_core=1)))
    assert [ranges(mapped, k) for k in "abc"] == [[(0, 2, 0, 0)], [(0, 2, 0, 1)], [(0, 2, 0, 2)]]
    two = place(_chain(), target(populations_per_core=2).limits)
    assert [ranges(two, k) for k in "abc"] == [[(0, 2, 0, 0)], [(0, 2, 0, 0)], [(0, 2, 0, 1)]]
    assert cost.core_lower_bounds(_chain(), target(populations_per_core=1).limits) == {
        "populations": 3
    }


def test_one_population_per_core_beside_a_neuron_limit():
    """The next-fit loop: b and c would share a core by neurons (as in
    ``test_small_populations_share_a_core``), but not with one population per core; a
    population split by neurons keeps its cores to itself."""
    t = target(neurons_per_core=4, populations_per_core=1)
    mapped = Map().run(_chain(), PassContext(target=t))
    assert [ranges(mapped, k) for k in "abc"] == [[(0, 2, 0, 0)], [(0, 2, 0, 1)], [(0, 2, 0, 2)]]
    big = net({"x": (1,)}, [pop("a", 6), pop("b", 1)], [proj("xa", "x", "a", np.ones((6, 1)))])
    mapped = place(big, t.limits)
    assert ranges(mapped, "a") == [(0, 4, 0, 0), (4, 6, 0, 1)]
    assert ranges(mapped, "b") == [(0, 1, 0, 2)]
    assert cost.core_lower_bounds(big, t.limits)["populations"] == 3


def test_two_populations_on_a_core_break_populations_per_core():
    shared = place(_chain(), target(neurons_per_core=4).limits)  # b and c share core 1
    with pytest.raises(DesignRuleError, match=r"core 1 \(b, c\): populations is 2, limit 1"):
        check_design_rules(shared, target(neurons_per_core=4, populations_per_core=1))


def test_unlimited_target_puts_everything_on_one_core():
    mapped = place(_random_net(0), load_target("sim").limits)
    assert cores_used(mapped) == 1


def _random_net(seed: int, n1: int = 300, n2: int = 200, recurrent: bool = True) -> Net:
    rng = np.random.default_rng(seed)

    def codes(rows: int, cols: int, density: float) -> sp.csr_matrix:
        m = sp.random(
            rows,
            cols,
            density=density,
            random_state=rng,
            data_rvs=lambda k: rng.integers(1, 127, k),
        )
        return sp.csr_matrix(m)

    projs = [proj("w1", "x", "p1", codes(n1, 50, 0.3)), proj("w2", "p1", "p2", codes(n2, n1, 0.2))]
    if recurrent:
        projs.append(proj("rec", "p2", "p1", codes(n1, n2, 0.05)))
        projs.append(proj("self", "p1", "p1", codes(n1, n1, 0.05)))
    return net({"x": (50,)}, [pop("p1", n1), pop("p2", n2, vth=20)], projs)


LIMITS = dict(
    neurons_per_core=64,
    synapse_memory_bits_per_core=2500 * W,
    fan_in_axons_per_core=200,
    fan_out_axons_per_core=400,
    cores_per_chip=8,
    chips=64,
)


@pytest.mark.parametrize("seed", range(4))
def test_every_neuron_placed_once_and_every_core_within_limits(seed):
    t = target(**LIMITS)
    mapped = Map().run(_random_net(seed), PassContext(target=t))  # runs every design rule
    for p in mapped.populations.values():
        spans = [(pl.start, pl.stop) for pl in p.placement]
        assert spans[0][0] == 0 and spans[-1][1] == p.size
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in itertools.pairwise(spans))
    for u in cost.core_usage(mapped, t.limits):
        assert u.neurons <= 64 and u.synapse_bits <= 2500 * W
        assert u.fan_in <= 200 and u.fan_out <= 400
    bound = max(cost.core_lower_bounds(mapped, t.limits).values())
    assert bound <= cores_used(mapped)


def test_deterministic_byte_identical_placement():
    t = target(**LIMITS)
    first = json.dumps(placement(Map().run(_random_net(1), PassContext(target=t))))
    again = json.dumps(placement(Map().run(_random_net(1), PassContext(target=t))))
    assert first == again


def test_too_few_chips_lists_every_violation():
    # every neuron is too wide for a core (6 sources, 5 axons): each sits alone on a core,
    # 10 cores on 5 chips of 2 cores, but the system has 1 chip of 2 cores
    w = np.ones((10, 6))
    n = net({"x": (6,)}, [pop("p", 10)], [proj("w", "x", "p", w)])
    t = target(neurons_per_core=4, fan_in_axons_per_core=5, cores_per_chip=2, chips=1)
    with pytest.raises(DesignRuleError) as exc:
        Map().run(n, PassContext(target=t))
    text = str(exc.value)
    assert "[system-neurons] (network): neurons is 10, limit 8" in text
    assert "[system-chips] (network): chips is 5, limit 1" in text
    assert "[neuron-fan-in] p[0]: fan-in axons of one neuron is 6, limit 5" in text
    assert "[core-capacity] chip 0 core 0 (p): fan-in axons is 6, limit 5" in text
    assert "design-rule violation(s)" in text


def test_unmapped_net_checked_against_the_core_lower_bound():
    n = net({"x": (40,)}, [pop("p", 8)], [proj("w", "x", "p", np.ones((8, 40)))])
    # 8 x 40 dense weights = 320 W bits; 80 W bits per core -> at least 4 cores
    t = target(neurons_per_core=8, synapse_memory_bits_per_core=80 * W, cores_per_chip=2, chips=1)
    with pytest.raises(
        DesignRuleError,
        match=r"\[system-cores\].*cores \(at least, by "
        r"synapse_bits\) is 4, limit 2",
    ):
        check_design_rules(n, t)


def test_pipeline_lower_quantize_map_on_every_node_type():
    from snn_deploy.frontends.nir import load as load_graph

    t = load_target("loihi1")
    steps = pipeline.parse("lower{dt=0.0001},quantize,map") if "map" in _passes() else None
    graph = load_graph(every_node_type())
    if steps is None:  # registry entry not added yet: run the passes by hand
        from snn_deploy.passes.lower import lower
        from snn_deploy.passes.quantize import quantize

        quantized = quantize(lower(graph, dt=1e-4), t.numeric)
        mapped = Map().run(quantized, PassContext(target=t))
    else:
        mapped = pipeline.run(graph, steps, PassContext(target=t))
    assert all(p.placement for p in mapped.populations.values())
    assert cores_used(mapped) == 1


def _passes() -> set[str]:
    from snn_deploy.passes import get_all_passes

    return set(get_all_passes())


def test_map_rejects_a_float_net():
    from snn_deploy.passes.lower import lower

    float_net = lower(load(every_node_type()), dt=1e-4)
    with pytest.raises(PassError, match="quantized net"):
        Map().run(float_net, PassContext(target=load_target("loihi1")))


def _conv1d_net() -> Net:
    # x (1 x 10) -> p (2 channels x 8): channel c, position i reads x[i:i+3] with kernel k_c
    w = np.zeros((16, 10))
    for c, k in enumerate(([1, 2, 3], [4, 5, 6])):
        for i in range(8):
            w[c * 8 + i, i : i + 3] = k
    p = dataclasses.replace(pop("p", 16), shape=(2, 8))
    return net({"x": (10,)}, [p], [proj("conv", "x", "p", w)])


def test_conv_population_is_tiled_across_channels():
    # Before (contiguous C-order ranges): p[0:4] reads x[0:6], p[4:8] x[4:10], p[8:12] x[0:6]..
    # -> 4 cores of 4 neurons. Expected: a tile = 4 positions of BOTH channels (2 ranges on
    # one core), fan-in 4 + 2 halo = 6 axons, 8 neurons: 2 cores.
    n = _conv1d_net()
    t = target(neurons_per_core=8, fan_in_axons_per_core=6)
    mapped = Map().run(n, PassContext(target=t))
    assert ranges(mapped, "p") == [(0, 4, 0, 0), (4, 8, 0, 1), (8, 12, 0, 0), (12, 16, 0, 1)]
    usage = cost.core_usage(mapped, t.limits)
    assert [(u.neurons, u.fan_in) for u in usage] == [(8, 6), (8, 6)]
    # each core stores both channels' kernels once: 2 x 3 x (W + 3) + 8 pointers x 3 bits
    assert [u.synapse_bits for u in usage] == [2 * 3 * (W + 3) + 8 * 3] * 2


def test_tile_order_and_blocks():
    from snn_deploy.passes.map import tile_order

    # (C, H, W) = (2, 2, 4), tiles of 2 x 2: tile 0 = columns 0-1, tile 1 = columns 2-3
    order, blocks = tile_order((2, 2, 4), (2, 2))
    assert order.tolist() == [0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15]
    assert blocks.tolist() == [0, 4, 8, 12, 16]


def test_regions_split_a_padded_convolution_into_interior_and_border_bands():
    from snn_deploy.passes import map as mapping

    # 3 x 3 kernel, padding 1, on 6 x 6: positions on the edge read clipped patterns. The
    # interior (rows and columns 1-4) is region 0; the bands top, right, bottom and left are
    # 1-4, each with one corner
    codes, shape = conv_codes(np.random.default_rng(0), (1, 6, 6), 2, 3, 1, 1)
    p = dataclasses.replace(pop("p", 72), shape=shape)
    n = net({"x": (1, 6, 6)}, [p], [proj("w", "x", "p", codes)])
    problem = mapping._Problem.build(n, target(fan_in_axons_per_core=36).limits)
    region = problem.regions("p")
    assert region is not None
    assert region.tolist() == [
        [1, 1, 1, 1, 1, 2],
        [4, 0, 0, 0, 0, 2],
        [4, 0, 0, 0, 0, 2],
        [4, 0, 0, 0, 0, 2],
        [4, 0, 0, 0, 0, 2],
        [4, 3, 3, 3, 3, 3],
    ]
    # each region tiled from its own corner: 2 x 2 tiles of the interior, then the bands
    order, blocks = mapping.tile_order((1, 6, 6), (2, 2), region)
    assert order.tolist() == [
        *(7, 8, 13, 14, 9, 10, 15, 16, 19, 20, 25, 26, 21, 22, 27, 28),
        *(0, 1, 2, 3, 4, 5, 11, 17, 23, 29, 31, 32, 33, 34, 35, 6, 12, 18, 24, 30),
    ]
    assert blocks.tolist() == [0, 4, 8, 12, 16, 18, 20, 21, 23, 25, 26, 28, 30, 31, 33, 35, 36]
    # tried by the search when an interior tile fits a core's axons (4 x 4 reads 36 inputs)
    assert ("regions", 4, 4) in problem.alternatives("p")
    assert ("regions", 2, 2) in problem.alternatives("p")


def test_padded_convolution_is_placed_by_regions_when_its_patterns_fill_the_memory():
    # 4 channels, 3 x 3 kernel, padding 1 on a 2 x 8 x 8 image: the interior, each edge and
    # each corner read different patterns. With 200 W bits of synapse memory a core holds
    # the 4 channels' patterns of about two of those classes, so tiles that straddle the
    # edge are cut by channel (12 cores). By regions: 4 interior tiles of 3 x 3 positions
    # (one pattern set, 50 axons) and 4 bands of 7 positions (an edge and a corner)
    codes, shape = conv_codes(np.random.default_rng(0), (2, 8, 8), 4, 3, 1, 1)
    p = dataclasses.replace(pop("p", int(np.prod(shape))), shape=shape)
    n = net({"x": (2, 8, 8)}, [p], [proj("w", "x", "p", codes)])
    t = target(neurons_per_core=128, synapse_memory_bits_per_core=200 * W, fan_in_axons_per_core=50)
    assert cores_used(place_without_search(n, t.limits)) == 12
    mapped = Map().run(n, PassContext(target=t))
    assert cores_used(mapped) == 8
    usage = cost.core_usage(mapped, t.limits)
    assert sorted((u.neurons, u.fan_in) for u in usage) == [(28, 32)] * 4 + [(36, 50)] * 4


def test_core_usage_pays_a_shared_pattern_once_per_core_over_several_ranges():
    # rows 0-1 and 4-7 of a 1-D convolution on one core: one kernel, 6 pointers
    w = np.zeros((8, 10))
    for i in range(8):
        w[i, i : i + 3] = [1, 2, 3]
    n = net({"x": (10,)}, [pop("p", 8)], [proj("conv", "x", "p", w)])
    placed = [
        Placement(start=0, stop=2, chip=0, core=0),
        Placement(start=2, stop=4, chip=0, core=1),
    ]
    placed.append(Placement(start=4, stop=8, chip=0, core=0))
    n = n.replace(
        populations={"p": dataclasses.replace(n.populations["p"], placement=tuple(placed))}
    )
    t = target(neurons_per_core=8)
    first, second = cost.core_usage(n, t.limits)
    assert first.synapse_bits == 3 * (W + 3) + 6 * 3
    assert second.synapse_bits == 3 * (W + 3) + 2 * 3
    assert first.fan_in == 10  # x[0:4] and x[4:10]
    check_design_rules(n, t)  # coverage holds with interleaved ranges


def test_exclusive_layers_bound_is_met_by_the_mapper():
    # a reads all 6 inputs, b all 8 a neurons: a core with an a and a b neuron needs 14 > 8
    # axons, so a and b need disjoint cores. b: 2 rows of 8 W bits per core -> 4 cores; each
    # a neuron then reaches 4 cores, 8 output axons per core -> 2 a per core -> 4 cores.
    # Resource totals alone give 7 (bits; and fan-in: each input reaches the 4 cores of a,
    # each a neuron the 4 of b: 56 axons); the disjoint sum gives the optimum, 8.
    n = net(
        {"x": (6,)},
        [pop("a", 8), pop("b", 8)],
        [proj("xa", "x", "a", np.ones((8, 6))), proj("ab", "a", "b", np.ones((8, 8)))],
    )
    t = target(
        neurons_per_core=16,
        synapse_memory_bits_per_core=16 * W,
        fan_in_axons_per_core=8,
        fan_out_axons_per_core=8,
    )
    bounds = cost.core_lower_bounds(n, t.limits)
    assert bounds == {
        "neurons": 1,
        "synapse_bits": 7,
        "fan_in": 7,
        "fan_out": 4,
        "exclusive_layers": 8,
    }
    assert cores_used(Map().run(n, PassContext(target=t))) == 8


def test_groups_that_cannot_share_cores_pool_their_resources():
    # q reads all 8 inputs of x1 (dense): its core has no axon left, so q shares a core with
    # neither a (reads x2) nor b (reads a). a and b can share: groups {q} and {a, b}, on
    # disjoint cores: 1 + ceil(13 / 4) = 5. Totals give ceil(16 / 4) = 4 (neurons) and
    # ceil(21 / 8) = 3 (fan-in: every source reaches one core), and the pairwise exclusive set
    # {q, a} 1 + 2 = 3. The mapper needs 5.
    n = net(
        {"x1": (8,), "x2": (7,)},
        [pop("q", 3), pop("a", 7), pop("b", 6)],
        [
            proj("xq", "x1", "q", np.ones((3, 8))),
            proj("xa", "x2", "a", np.eye(7)),
            proj("ab", "a", "b", np.eye(6, 7)),
        ],
    )
    t = target(neurons_per_core=4, fan_in_axons_per_core=8)
    bounds = cost.core_lower_bounds(n, t.limits)
    assert bounds == {"neurons": 4, "fan_in": 3, "exclusive_layers": 5}
    assert cores_used(Map().run(n, PassContext(target=t))) == 5


def _conv_net(rng: np.random.Generator, src: tuple[int, int, int], layers: int) -> Net:
    """x (an image ``src``) -> ``layers`` random convolutions (1-3 channels, kernel 1-4,
    stride 1-2, any padding, some zero weights) -> p1 .. pN."""
    pops, projs, prev, shape = [], [], "x", src
    for i in range(1, layers + 1):
        k = int(rng.integers(1, min(4, *shape[1:]) + 1))
        codes, out = conv_codes(
            rng,
            shape,
            int(rng.integers(1, 4)),
            k,
            int(rng.integers(1, 3)),
            int(rng.integers(0, k)),
            0.1,
        )
        size = int(np.prod(out))
        pops.append(dataclasses.replace(pop(f"p{i}", size), shape=out))
        projs.append(proj(f"w{i}", prev, f"p{i}", codes))
        prev, shape = f"p{i}", out
    return net({"x": src}, pops, projs)


def test_conv_bounds_never_above_the_cores_of_a_legal_placement():
    # many small conv nets with small limits (fan-in binds): every bound term is at most the
    # cores of the mapper's placement (strips and backfill included) when it is legal
    rng = np.random.default_rng(7)
    for _ in range(40):
        src = (int(rng.integers(1, 4)), int(rng.integers(3, 12)), int(rng.integers(3, 12)))
        n = _conv_net(rng, src, int(rng.integers(1, 3)))
        widest = max(int(np.diff(p.fixed.codes.indptr).max()) for p in n.projections)
        limits = Limits(
            neurons_per_core=int(rng.integers(4, 200)),
            synapse_memory_bits_per_core=int(rng.integers(200, 4000)) * W,
            fan_in_axons_per_core=widest + int(rng.integers(0, 3 * widest)),
            fan_out_axons_per_core=int(rng.integers(50, 500)),
        )
        mapped = place(n, limits)
        if not _legal(mapped, limits):
            continue  # a neuron that fits no core: no legal placement to compare with
        bounds = cost.core_lower_bounds(n, limits)
        assert max(bounds.values()) <= cores_used(mapped), bounds


def _fewest_cores(n: Net, limits: Limits) -> int:
    """The optimum by brute force for one population fed by inputs: the fewest feasible
    neuron sets covering it (a set is feasible when its neurons, synapse bits and distinct
    sources fit a core; inputs have no fan-out limit)."""
    (name,) = n.populations
    size = n.populations[name].size
    (c,) = cost.population_costs(n, limits)[name]
    m = n.projections[0].fixed.codes
    ok = [False] * (1 << size)
    for mask in range(1, 1 << size):
        rows = np.array([i for i in range(size) if mask >> i & 1], dtype=np.int64)
        sources = np.unique(
            np.concatenate([m.indices[m.indptr[r] : m.indptr[r + 1]] for r in rows])
        )
        ok[mask] = (
            rows.size <= limits.neurons_per_core
            and sources.size <= limits.fan_in_axons_per_core
            and cost.rows_bits([c], rows) <= limits.synapse_memory_bits_per_core
        )
    best = [0] + [size] * ((1 << size) - 1)
    for mask in range(1, 1 << size):
        low = mask & -mask
        sub = mask
        while sub:
            if sub & low and ok[sub]:
                best[mask] = min(best[mask], best[mask ^ sub] + 1)
            sub = (sub - 1) & mask
    return best[-1]


def test_conv_bounds_never_above_the_brute_force_optimum():
    rng = np.random.default_rng(3)
    tight = 0
    for _ in range(30):
        src = (int(rng.integers(1, 3)), int(rng.integers(2, 6)), int(rng.integers(2, 6)))
        n = _conv_net(rng, src, 1)
        if not 4 <= n.populations["p1"].size <= 9:
            continue
        widest = max(1, int(np.diff(n.projections[0].fixed.codes.indptr).max()))
        limits = Limits(
            neurons_per_core=int(rng.integers(2, n.populations["p1"].size + 1)),
            synapse_memory_bits_per_core=10**6,
            fan_in_axons_per_core=widest + int(rng.integers(0, 2 * widest)),
        )
        best = _fewest_cores(n, limits)
        bound = max(cost.core_lower_bounds(n, limits).values())
        assert bound <= best
        tight += bound == best
    assert tight >= 1


def test_strips_and_backfill_keep_every_limit_and_never_add_cores():
    # the per-layer placement, then strips and emptying first-layer cores into spare room:
    # never more cores, and the result still passes every design rule
    from snn_deploy.passes import map as mapping

    rng = np.random.default_rng(5)
    saved = 0
    for _ in range(25):
        src = (int(rng.integers(1, 4)), int(rng.integers(4, 12)), int(rng.integers(4, 12)))
        n = _conv_net(rng, src, 2)
        widest = max(int(np.diff(p.fixed.codes.indptr).max()) for p in n.projections)
        t = target(
            neurons_per_core=int(rng.integers(8, 120)),
            synapse_memory_bits_per_core=int(rng.integers(500, 4000)) * W,
            fan_in_axons_per_core=widest + int(rng.integers(0, 4 * widest)),
            fan_out_axons_per_core=int(rng.integers(100, 600)),
        )
        problem = mapping._Problem.build(n, t.limits)
        _, first, _ = mapping._settle(problem, {})
        try:
            mapped = Map().run(n, PassContext(target=t))
        except DesignRuleError:
            assert not _legal(place_without_search(n, t.limits), t.limits)
            continue
        assert cores_used(mapped) <= first
        saved += first - cores_used(mapped)
    assert saved > 0


def place_without_search(n: Net, limits: Limits) -> Net:
    """``place`` with the per-layer tile choice only (no strips, no backfill)."""
    from snn_deploy.passes import map as mapping

    ranges, _, _ = mapping._settle(mapping._Problem.build(n, limits), {})
    pops = {
        name: dataclasses.replace(
            p,
            placement=tuple(
                Placement(start=s, stop=e, chip=0, core=k) for s, e, k in sorted(ranges[name])
            ),
        )
        for name, p in n.populations.items()
    }
    return n.replace(populations=pops)


def _legal(n: Net, limits: Limits) -> bool:
    return all(
        u.neurons <= limits.neurons_per_core
        and u.synapse_bits <= limits.synapse_memory_bits_per_core
        and u.fan_in <= limits.fan_in_axons_per_core
        and u.fan_out <= limits.fan_out_axons_per_core
        for u in cost.core_usage(n, limits)
    )


def _relay_net(codes: sp.csr_matrix) -> Net:
    """x -> a (one input each) -> p through ``codes``: p's only sources are a population, so
    backfill (which moves input-fed neurons) cannot change where p goes."""
    n_p, n_a = codes.shape
    return net(
        {"x": (n_a,)},
        [pop("a", n_a), pop("p", n_p)],
        [proj("in", "x", "a", np.eye(n_a, dtype=np.int64)), proj("w", "a", "p", codes)],
    )


def test_interleaved_sources_are_placed_in_source_order():
    # x -> a (one input each) -> p: 64 neurons in 8 classes, interleaved; neuron i reads a's
    # 4c..4c+3, c = i % 8. With 8 fan-in axons per core, C order fits 2 neurons of p per core
    # (two classes): 32 cores, and backfill cannot help (p is not fed by inputs). The search
    # tries source order (classes contiguous): 2 classes = 16 neurons per core, 4 cores; a
    # takes 4 (8 inputs per core). Deterministic.
    rows = np.repeat(np.arange(64), 4)
    cols = (4 * (rows % 8) + np.tile(np.arange(4), 64)).astype(np.int64)
    n = _relay_net(sp.csr_matrix((np.ones(256, dtype=np.int64), (rows, cols)), shape=(64, 32)))
    t = target(neurons_per_core=16, fan_in_axons_per_core=8)
    assert cores_used(place_without_search(n, t.limits)) == 36
    mapped = Map().run(n, PassContext(target=t))
    assert cores_used(mapped) == 8
    p_cores = {(r.chip, r.core) for r in mapped.populations["p"].placement}
    assert len(p_cores) == 4
    for u in cost.core_usage(mapped, t.limits):
        assert u.fan_in == 8
    again = Map().run(n, PassContext(target=t))
    assert again.populations["p"].placement == mapped.populations["p"].placement


def test_overlapping_random_sources_are_placed_in_cluster_order():
    # x -> a (one input each) -> p: 48 neurons in 6 hidden groups; a group owns 8 of a's 48
    # neurons (a random partition) and each of its neurons reads a random 5 of them; groups
    # are shuffled over p's index. With 8 neurons and 8 fan-in axons per core, a core holds
    # one whole group, but only if its neurons are found together: neither C order nor
    # source order (rows sorted by smallest source) lines them up, the greedy clusters do.
    rng = np.random.default_rng(3)
    owned = rng.permutation(48).reshape(6, 8)
    group = rng.permutation(np.repeat(np.arange(6), 8))
    cols = np.concatenate([rng.choice(owned[g], 5, replace=False) for g in group])
    rows = np.repeat(np.arange(48), 5)
    n = _relay_net(sp.csr_matrix((np.ones(240, dtype=np.int64), (rows, cols)), shape=(48, 48)))
    t = target(neurons_per_core=8, fan_in_axons_per_core=8)
    from snn_deploy.passes import map as mapping

    problem = mapping._Problem.build(n, t.limits)
    assert problem.alternatives("p") == ["sources", "clusters"]
    assert problem.alternatives("a") == []  # a's inputs fit: nothing to try
    order = mapping.cluster_order(problem.sparse("p"), 48, axons=8, rows=8)
    assert sorted(order.tolist()) == list(range(48))
    assert all(len(set(group[order[i : i + 8]])) == 1 for i in range(0, 48, 8))
    assert mapping._evaluate(problem, {})[1] == 41  # C order: ~1 neuron of p per core
    assert mapping._evaluate(problem, {"p": "sources"})[1] == 17
    mapped = Map().run(n, PassContext(target=t))
    assert len({(r.chip, r.core) for r in mapped.populations["p"].placement}) == 6
    assert cores_used(mapped) == 12
    again = Map().run(n, PassContext(target=t))
    assert again.populations["p"].placement == mapped.populations["p"].placement
