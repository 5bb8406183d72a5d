// snn-deploy FPGA backend: the Attention unit (linear spiking attention, docs/SEMANTICS.md 4.1-4.2).
//
// Per head h (channels h*D ... h*D + D - 1) the D x D state S_h lives in one synchronous-read
// RAM (block RAM) of SW-bit words, entry (h, i, j) at address (h*D + j)*D + i. Every step the
// unit visits each entry once, one per clock, heads outer, value channel j, key channel i
// inner, through a 4-stage pipeline:
//   stage 0  issue: operand indices (index ROMs) to the operand buffers, S address, q buffer address
//   stage 1  update: S = sat_S(decay(S, d_h) + k[i] * v[j]); write it back
//   stage 2  read:   acc = sum over i of q[i] * S[i][j]   (exact, AW bits)
//   stage 3  emit:   A[h*D + j] = sat_A(acc) to the readers' history buffers
// Binary k and v make k*v an AND, binary q makes q*S a masked add (the sum of the rows of S
// where q spikes); spike counts and inputs multiply as integers. Operands are the previous
// step's outputs (the operand buffers hold them); at t = 0 they and S read as 0, so S is
// cleared without a reset pass. Whole clip (CAUSAL = 0): for t = 1..T the unit accumulates S
// and stores q[t - 1] in a T x DIM RAM (output 0); for t = T+1..2T it reads S with the stored
// q[t - 1 - T] without updating S; after 2T it outputs 0.
// Cycles per step: DIM * D + 4 (issue DIM * D entries, drain 3 stages, flush 1).
module attention #(
    parameter DIM = 1,          // output elements (dim)
    parameter HEADS = 1,
    parameter IB = 16,          // operand source index bits
    parameter QW = 2,           // operand widths inside the unit (signed: a spike count gets a
    parameter KW = 2,           //   zero sign bit, an input is 8-bit two's complement)
    parameter VW = 2,
    parameter Q_BIN = 0,        // q is binary spikes: q * S is a masked add
    parameter KV_BIN = 0,       // k and v are binary spikes: k * v is an AND
    parameter SW = 8,           // state register width (ProductFixed.state): S saturates to it
    parameter OW = 8,           // output register width (ProductFixed.output): A saturates to it
    parameter [8*HEADS-1:0] DECAY = 0, // per head h its decay shift d_h in bits 8h +: 8 (0: none)
    parameter CAUSAL = 1,
    parameter STEPS = 1,        // clip length T (whole clip)
    parameter Q_FILE = "q_index.mem",  // per element the source index of its q, k and v
    parameter K_FILE = "k_index.mem",
    parameter V_FILE = "v_index.mem"
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              start,     // begin time step t
    input  wire [31:0]       t,
    output wire              busy,
    output wire [IB-1:0]     q_raddr,   // source indices read from the operand buffers
    output wire [IB-1:0]     k_raddr,
    output wire [IB-1:0]     v_raddr,
    input  wire [QW-1:0]     q_val,     // their values, one cycle later
    input  wire [KW-1:0]     k_val,
    input  wire [VW-1:0]     v_val,
    output reg               out_valid,
    output reg  [IB-1:0]     out_group, // element index (one lane)
    output reg  [OW-1:0]     out_vals
);
    localparam D = DIM / HEADS;                   // channels per head
    localparam N = DIM * D;                       // state entries, one per issue cycle
    localparam NB = (N > 1) ? $clog2(N) : 1;
    localparam DB = (D > 1) ? $clog2(D) : 1;
    localparam EB = (DIM > 1) ? $clog2(DIM) : 1;
    // k*v: the product of a KW-bit and a VW-bit signed value fits KW + VW bits.
    localparam PW = KW + VW;
    // decay(S) + k*v: one bit above the wider term, so the sum never wraps before sat_S.
    localparam XS = ((SW > PW) ? SW : PW) + 1;
    // acc: D products of QW x SW signed bits (each fits QW + SW bits); their sum needs
    // ceil(log2(D + 1)) more, so the exact sum the simulator saturates is never wrapped here
    // (and at least one bit above the output register, whose bounds sat_A compares with).
    localparam AW0 = QW + SW + $clog2(D + 1);
    localparam AW = (AW0 > OW) ? AW0 : OW + 1;
    localparam signed [XS-1:0] SMAX = (1 <<< (SW - 1)) - 1;
    localparam signed [XS-1:0] SMIN = -(1 <<< (SW - 1));
    localparam signed [AW-1:0] AMAX = (1 <<< (OW - 1)) - 1;
    localparam signed [AW-1:0] AMIN = -(1 <<< (OW - 1));

    reg [IB-1:0] qi [0:DIM-1];                    // index ROMs (LUTs)
    reg [IB-1:0] ki [0:DIM-1];
    reg [IB-1:0] vi [0:DIM-1];
    initial begin
        $readmemh(Q_FILE, qi);
        $readmemh(K_FILE, ki);
        $readmemh(V_FILE, vi);
    end
    reg [SW-1:0] smem [0:N-1];                    // S, all heads (block RAM)

    localparam S_IDLE = 2'd0, S_ISSUE = 2'd1, S_WAIT = 2'd2, S_FLUSH = 2'd3;
    reg [1:0] state;
    reg [NB-1:0] addr;                            // (h*D + j)*D + i: the issue counter
    reg [DB-1:0] i, j;
    reg [EB-1:0] c, hb;                           // element h*D + j; head base h*D
    reg [EB-1:0] h;
    assign busy = state != S_IDLE;
    wire [EB-1:0] r = hb + i;                     // key / query element h*D + i
    assign q_raddr = qi[r];
    assign k_raddr = ki[r];
    assign v_raddr = vi[c];

    // Step phase, fixed at start: t = 0 reads zero operands and a zero S (clears S).
    wire zero = t == 0;
    wire accumulate = CAUSAL || t <= STEPS;       // S is updated (whole clip: input steps < T)
    wire reading = CAUSAL || (t > STEPS && t <= 2 * STEPS);  // A is emitted (else 0)

    // Stage 0 -> 1: S and the q buffer are read with one cycle of latency, like the operands.
    reg [SW-1:0] sq;
    reg v1, fi1, li1, st1;
    reg [NB-1:0] addr1;
    reg [EB-1:0] c1;
    reg [7:0] d1;
    always @(posedge clk) begin
        sq <= smem[addr];
        v1 <= !rst && state == S_ISSUE;
        {fi1, li1, st1} <= {i == 0, i == D - 1, j == 0};
        addr1 <= addr;
        c1 <= c;
        d1 <= DECAY[h*8 +: 8];
    end

    // Stage 1: update. Zero operands and S at t = 0.
    wire signed [QW-1:0] qh = zero ? {QW{1'b0}} : q_val;
    wire signed [KW-1:0] k = zero ? {KW{1'b0}} : k_val;
    wire signed [VW-1:0] v = zero ? {VW{1'b0}} : v_val;
    wire signed [SW-1:0] s_old = zero ? {SW{1'b0}} : sq;
    wire signed [PW-1:0] kv;
    generate if (KV_BIN) begin : kv_and
        assign kv = {{(PW-1){1'b0}}, k[0] & v[0]};
    end else begin : kv_mul
        assign kv = k * v;
    end endgenerate
    // decay(S, d) = S - sign(S) * (|S| >> d): rounds toward zero, as kernels.decay_shift.
    // |S| <= 2^(SW-1) fits SW unsigned bits; S - trunc(S / 2^d) stays within S's range.
    wire [SW-1:0] mag = s_old[SW-1] ? -s_old : s_old;
    wire [SW-1:0] lost = mag >> d1;
    wire signed [XS-1:0] s_dec = (d1 == 0) ? s_old
        : s_old[SW-1] ? s_old + $signed({1'b0, lost}) : s_old - $signed({1'b0, lost});
    wire signed [XS-1:0] s_sum = s_dec + kv;
    // sat_S: clip to the SW-bit state register (saturates, never wraps).
    wire signed [XS-1:0] s_sat = (s_sum > SMAX) ? SMAX : (s_sum < SMIN) ? SMIN : s_sum;
    wire signed [SW-1:0] s_new = accumulate ? s_sat[SW-1:0] : s_old;
    always @(posedge clk) begin
        if (v1 && accumulate) smem[addr1] <= s_new;
    end

    // Whole clip: q of input step t - 1 is stored at (t - 1)*DIM + element during the
    // accumulation and read back at (t - 1 - T)*DIM + element. qbase is that row, set at
    // start: 0 at t = 1 and t = T + 1, one row (DIM) further every other step (steps of a
    // sample are consecutive), so no multiplier.
    wire signed [QW-1:0] q1;
    generate if (CAUSAL) begin : causal_q
        assign q1 = qh;
    end else begin : clip_q
        localparam QN = STEPS * DIM;
        localparam QB = (QN > 1) ? $clog2(QN) : 1;
        reg [QW-1:0] qbuf [0:QN-1];               // T x DIM stored queries (block RAM)
        reg [QB-1:0] qbase;
        reg [QW-1:0] qq;
        reg [QB-1:0] qaddr1;
        always @(posedge clk) begin
            if (start) qbase <= (t == 1 || t == STEPS + 1) ? {QB{1'b0}} : qbase + DIM;
            qq <= qbuf[qbase + r];
            qaddr1 <= qbase + r;
            if (v1 && st1 && !zero && t <= STEPS) qbuf[qaddr1] <= qh;
        end
        assign q1 = (t > STEPS) ? qq : qh;
    end endgenerate

    // Stage 2: read, acc = sum_i q[i] * S[i][j] on the updated S.
    reg signed [SW-1:0] s2;
    reg signed [QW-1:0] q2;
    reg v2, fi2, li2;
    reg [EB-1:0] c2;
    always @(posedge clk) begin
        v2 <= !rst && v1;
        {fi2, li2, c2} <= {fi1, li1, c1};
        s2 <= s_new;
        q2 <= q1;
    end
    wire signed [AW-1:0] prod;
    generate if (Q_BIN) begin : q_mask
        assign prod = q2[0] ? $signed(s2) : $signed({AW{1'b0}});
    end else begin : q_mul
        assign prod = q2 * s2;
    end endgenerate
    reg signed [AW-1:0] acc;
    reg v3;
    reg [EB-1:0] c3;
    always @(posedge clk) begin
        if (v2) acc <= (fi2 ? $signed({AW{1'b0}}) : acc) + prod;
        v3 <= !rst && v2 && li2;
        c3 <= c2;
    end

    // Stage 3: emit sat_A(acc) (0 outside the read phase of a whole clip).
    wire signed [AW-1:0] a_sat = (acc > AMAX) ? AMAX : (acc < AMIN) ? AMIN : acc;
    always @(posedge clk) begin
        out_valid <= v3;
        out_group <= c3;
        out_vals <= reading ? a_sat[OW-1:0] : {OW{1'b0}};
        if (rst) begin
            state <= S_IDLE; addr <= 0; i <= 0; j <= 0; c <= 0; hb <= 0; h <= 0;
        end else case (state)
            S_IDLE: if (start) begin
                state <= S_ISSUE; addr <= 0; i <= 0; j <= 0; c <= 0; hb <= 0; h <= 0;
            end
            S_ISSUE: begin
                addr <= addr + 1;
                if (i != D - 1) i <= i + 1;
                else begin
                    i <= 0;
                    c <= c + 1;
                    if (j != D - 1) j <= j + 1;
                    else begin
                        j <= 0; hb <= hb + D; h <= h + 1;
                        if (c == DIM - 1) state <= S_WAIT;
                    end
                end
            end
            S_WAIT: if (v3 && c3 == DIM - 1) state <= S_FLUSH;
            S_FLUSH: state <= S_IDLE;
        endcase
    end
endmodule
