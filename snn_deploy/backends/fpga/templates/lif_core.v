// snn-deploy FPGA backend: one time-multiplexed LIF core with P neuron-update lanes.
//
// Implements docs/SEMANTICS.md section 2 bit for bit. Per time step the core visits its
// neurons in groups of P (lane l of group g is neuron g*P + l); for a group it streams the
// dense weight rows (all incoming projections, one source value per clock, shared by the
// lanes) through a 3-stage multiply-accumulate pipeline, shifts each projection's sum by the
// projection's exponent, then updates u and v of the P neurons and emits their outputs.
// A spiking population of LEVELS > 1 emits multi-level spikes (docs/SEMANTICS.md 1.1): the
// count #{k in 1..LEVELS : v > k*th}, LB = ceil(log2(LEVELS + 1)) bits, found by LB
// compare-and-add steps (no divider); the synapses multiply the weight by the count.
// Weights, parameters and state live in synchronous-read memories of P-wide words (block
// RAM); the source values of each incoming projection come from history buffers.
// Cycles per step: ceil(N / P) * (ROW + 3) + 1.
module lif_core #(
    parameter N = 1,            // neurons
    parameter P = 1,            // neuron-update lanes
    parameter K = 1,            // incoming projections
    parameter ROW = 1,          // weights per neuron (sum of the projections' source sizes)
    parameter IB = 16,          // neuron index bits
    parameter XW = 2,           // source value width (signed), after extension in the top
    parameter W = 40,           // datapath width (acc, a, u and v before overflow handling)
    parameter UW = 26,          // stored u width
    parameter WB = 8,           // weight code width
    parameter DB = 12,          // decay code width
    parameter DU_OFF = 1,       // current_decay_offset
    parameter DV_OFF = 0,       // voltage_decay_offset
    parameter TB = 17,          // threshold mantissa width
    parameter TH_SHIFT = 6,     // threshold_shift
    parameter IN_SHIFT = 6,     // input_shift
    parameter BW = 20,          // bias (bias_mant << bias_exp) width, signed
    parameter SB = 24,          // state register width (u wraps once, v saturates)
    parameter SPIKING = 1,
    parameter LEVELS = 1,       // spike levels D (1: binary spikes)
    parameter LB = 1,           // spike payload bits, ceil(log2(LEVELS + 1))
    parameter SUBTRACT = 0,
    parameter GE = 0,           // 1: spike at v >= k*th (docs/SEMANTICS.md 1.2), else v > k*th
    parameter PROJ_FILE = "proj.mem",
    parameter WEIGHT_FILE = "weights.mem",
    parameter PARAM_FILE = "params.mem"
) (
    input  wire                 clk,
    input  wire                 rst,
    input  wire                 start,     // begin time step t
    input  wire [31:0]          t,         // step within the sample
    output wire                 busy,
    output wire [IB-1:0]        rd_idx,    // source index read from every history buffer
    input  wire [K*XW-1:0]      rd_vals,   // their values, one cycle later
    output reg                  out_valid,
    output reg  [IB-1:0]        out_group, // outputs of neurons out_group*P ... + P-1
    output reg  [P*SB-1:0]      out_vals   // per lane: spike count (0..LEVELS) or v
);
    localparam G = (N + P - 1) / P;
    localparam KB = (K > 1) ? $clog2(K) : 1;
    localparam WAB = (G * ROW > 1) ? $clog2(G * ROW) : 1;
    localparam GB = (G > 1) ? $clog2(G) : 1;
    localparam SW = UW + SB;
    localparam PW = 2 * DB + TB + BW;
    localparam signed [W-1:0] HALF = 1 <<< (SB - 1);
    localparam signed [W-1:0] FULL = 1 <<< SB;
    localparam signed [W-1:0] VMAX = HALF - 1;

    // Projection table: {n_src[15:0], delay[15:0], exp[7:0]} per incoming projection.
    reg [39:0] proj [0:K-1];
    reg [P*WB-1:0] wmem [0:G*ROW-1];          // lane l in bits l*WB +: WB
    reg [P*PW-1:0] pmem [0:G-1];               // per lane {du, dv, vth, bias}
    reg [P*SW-1:0] smem [0:G-1];               // per lane {u, v}
    initial begin
        $readmemh(PROJ_FILE, proj);
        $readmemh(WEIGHT_FILE, wmem);
        $readmemh(PARAM_FILE, pmem);
    end

    localparam S_IDLE = 2'd0, S_ISSUE = 2'd1, S_WAIT = 2'd2, S_FLUSH = 2'd3;
    reg [1:0] state;
    reg [GB-1:0] g;
    reg [KB-1:0] k;
    reg [IB-1:0] j;
    reg [WAB-1:0] wptr;
    assign busy = state != S_IDLE;
    assign rd_idx = j;

    // Stage 0: issue weight address wptr and source index j of projection k.
    wire [39:0] pk = proj[k];
    wire last_j = j == pk[39:24] - 1;
    wire last_k = k == K - 1;
    wire skip = t < 32'd1 + pk[23:8];          // source step t-1-delay is before the sample
    reg [P*WB-1:0] wq;
    reg [P*PW-1:0] pq;
    reg [P*SW-1:0] sq;
    always @(posedge clk) begin
        wq <= wmem[wptr];
        pq <= pmem[g];
        sq <= smem[g];
    end

    // Stage 1: multiply. Stage 2: accumulate. Stage 3: shift by the exponent and sum.
    reg v1, fj1, lj1, fk1, lk1, skip1;
    reg [KB-1:0] k1, k2;
    reg v2, lj2, fk2, lk2, v3, lk3;
    wire signed [XW-1:0] x = skip1 ? {XW{1'b0}} : rd_vals[k1*XW +: XW];
    wire signed [7:0] e2 = proj[k2][7:0];
    always @(posedge clk) begin
        if (rst) begin
            v1 <= 0; v2 <= 0; v3 <= 0;
        end else begin
            v1 <= state == S_ISSUE;
            {fj1, lj1, fk1, lk1, skip1, k1} <= {j == 0, last_j, k == 0, last_k, skip, k};
            v2 <= v1;
            {lj2, fk2, lk2, k2} <= {lj1, fk1, lk1, k1};
            v3 <= v2 && lj2;
            lk3 <= lk2;
        end
    end

    // Neuron update, when the group's last projection sums are in every lane's `a`.
    wire update = v3 && lk3;
    // decay(x, f) = sign(x * f) * (|x * f| >> DB): rounds toward zero (Lava's rule).
    function signed [UW-1:0] decay_u(input signed [UW-1:0] xv, input [DB:0] f);
        reg signed [UW+DB+1:0] p;
        reg [UW+DB+1:0] m;
        begin
            p = xv * $signed({1'b0, f});
            m = p[UW+DB+1] ? -p : p;
            decay_u = p[UW+DB+1] ? -$signed(m >> DB) : $signed(m >> DB);
        end
    endfunction
    function signed [SB-1:0] decay_v(input signed [SB-1:0] xv, input [DB:0] f);
        reg signed [SB+DB+1:0] p;
        reg [SB+DB+1:0] m;
        begin
            p = xv * $signed({1'b0, f});
            m = p[SB+DB+1] ? -p : p;
            decay_v = p[SB+DB+1] ? -$signed(m >> DB) : $signed(m >> DB);
        end
    endfunction
    localparam signed [W-1:0] ZERO = 0;
    // Multi-level spike: the largest q <= LEVELS with v > q*th, by binary lifting (bit LB-1
    // first; v > k*th is monotone in k). Returns {q, q*th}. CW holds (2^LB - 1)*th and v.
    localparam CW = W + LB + 1;
    function [LB+CW-1:0] level_count(input signed [CW-1:0] vv, input signed [CW-1:0] tt);
        integer i;
        reg [LB-1:0] q;
        reg signed [CW-1:0] qt, ct;
        begin
            q = 0;
            qt = 0;
            for (i = LB - 1; i >= 0; i = i - 1) begin
                ct = qt + (tt <<< i);
                if ((q | (1 << i)) <= LEVELS && vv > ct) begin
                    q = q | (1 << i);
                    qt = ct;
                end
            end
            level_count = {q, qt};
        end
    endfunction
    wire [P*SW-1:0] s_new;
    wire [P*SB-1:0] o_new;
    wire [P*W-1:0] u_all, v_all;               // for the testbench's state dump
    genvar l;
    generate for (l = 0; l < P; l = l + 1) begin : lane
        wire signed [WB-1:0] w = wq[l*WB +: WB];
        wire signed [WB+XW-1:0] prod = w * x;
        reg signed [W-1:0] acc, a;
        wire signed [W-1:0] shifted = (e2 >= 0) ? (acc <<< e2) : (acc >>> (-e2));
        always @(posedge clk) begin
            if (v1) acc <= (fj1 ? ZERO : acc) + prod;
            if (v2 && lj2) a <= (fk2 ? ZERO : a) + shifted;
        end
        wire [PW-1:0] pl = pq[l*PW +: PW];
        wire [SW-1:0] sl = sq[l*SW +: SW];
        wire [DB-1:0] du = pl[PW-1 -: DB];
        wire [DB-1:0] dv = pl[PW-DB-1 -: DB];
        wire [TB-1:0] vth = pl[BW+TB-1 -: TB];
        wire signed [BW-1:0] bias = pl[BW-1:0];
        wire signed [UW-1:0] u0 = (t == 0) ? 0 : sl[SW-1:SB];
        wire signed [SB-1:0] v0 = (t == 0) ? 0 : sl[SB-1:0];
        wire [DB:0] fu = (1 << DB) - (du + DU_OFF);
        wire [DB:0] fv = (1 << DB) - (dv + DV_OFF);
        wire signed [W-1:0] u_pre = decay_u(u0, fu) + (a <<< IN_SHIFT);
        wire signed [W-1:0] u1 = (u_pre > HALF) ? u_pre - FULL : (u_pre <= -HALF) ? u_pre + FULL : u_pre;
        wire signed [W-1:0] v_pre = decay_v(v0, fv) + u1 + bias;
        wire signed [W-1:0] v1c = (v_pre > VMAX) ? VMAX : (v_pre < -VMAX) ? -VMAX : v_pre;
        wire signed [W-1:0] th = $signed({1'b0, vth}) <<< TH_SHIFT;
        wire signed [W-1:0] v2c;
        wire [LB-1:0] count;
        if (LEVELS == 1) begin : binary
            // integers: v >= th is v + 1 > th (v1c <= VMAX < 2^(W-1) - 1: no overflow)
            wire spike = SPIKING && (v1c + GE > th);
            assign count = spike;
            assign v2c = spike ? (SUBTRACT ? v1c - th : ZERO) : v1c;
        end else begin : graded
            wire signed [CW-1:0] vw = v1c + GE;  // #{k : v >= k*th} = #{k : v + 1 > k*th}
            wire signed [CW-1:0] tw = th;
            wire [LB+CW-1:0] lv = level_count(vw, tw);
            wire signed [CW-1:0] qth = lv[CW-1:0];  // count * th <= v1c when count > 0 (also GE)
            assign count = SPIKING ? lv[LB+CW-1:CW] : {LB{1'b0}};
            assign v2c = (count != 0) ? (SUBTRACT ? v1c - qth[W-1:0] : ZERO) : v1c;
        end
        assign s_new[l*SW +: SW] = {u1[UW-1:0], v2c[SB-1:0]};
        assign o_new[l*SB +: SB] = SPIKING ? {{(SB-LB){1'b0}}, count} : v2c[SB-1:0];
        assign u_all[l*W +: W] = u1;
        assign v_all[l*W +: W] = v2c;
    end endgenerate

    always @(posedge clk) begin
        if (update) smem[g] <= s_new;
    end

    always @(posedge clk) begin
        out_valid <= update;
        out_group <= g;
        out_vals <= o_new;
        if (rst) begin
            state <= S_IDLE; g <= 0; j <= 0; k <= 0; wptr <= 0;
        end else case (state)
            S_IDLE: if (start) begin
                state <= S_ISSUE; g <= 0; j <= 0; k <= 0; wptr <= 0;
            end
            S_ISSUE: begin
                wptr <= wptr + 1;
                if (!last_j) j <= j + 1;
                else begin
                    j <= 0;
                    if (last_k) begin k <= 0; state <= S_WAIT; end
                    else k <= k + 1;
                end
            end
            S_WAIT: if (update) begin
                if (g == G - 1) begin g <= 0; state <= S_FLUSH; end
                else begin g <= g + 1; state <= S_ISSUE; end
            end
            S_FLUSH: state <= S_IDLE;
        endcase
    end
endmodule
