// snn-deploy FPGA backend: the Gate unit (elementwise gate, docs/SEMANTICS.md 4.3).
//
// y[e] = sat_y((a[e] * g[e]) >> SHIFT) for every element e, one element per clock:
//   stage 0  issue: operand indices (index ROMs) to the operand buffers
//   stage 1  product, floor shift, saturation; emit y[e] to the readers' history buffers
// A binary gate g makes the product a mask (g ? a : 0); otherwise it is a signed integer
// product (a spike count, an input or a non-spiking population's voltage times the gate).
// Operands are the previous step's outputs; at t = 0 they read as 0 (output 0).
// Cycles per step: SIZE + 2 (issue SIZE elements, drain 1 stage, flush 1).
module gate #(
    parameter SIZE = 1,         // elements
    parameter IB = 16,          // operand source index bits
    parameter AW = 2,           // operand widths inside the unit (signed: a spike count gets a
    parameter GW = 2,           //   zero sign bit; inputs 8 bits, a voltage 24 bits)
    parameter G_BIN = 0,        // g is binary spikes: a * g is a mask
    parameter SHIFT = 0,        // ProductFixed.shift: low product bits the reader cannot use
    parameter OW = 8,           // output register width (ProductFixed.output): y saturates to it
    parameter A_FILE = "a_index.mem",  // per element the source index of its a and g
    parameter G_FILE = "g_index.mem"
) (
    input  wire              clk,
    input  wire              rst,
    input  wire              start,     // begin time step t
    input  wire [31:0]       t,
    output wire              busy,
    output wire [IB-1:0]     a_raddr,   // source indices read from the operand buffers
    output wire [IB-1:0]     g_raddr,
    input  wire [AW-1:0]     a_val,     // their values, one cycle later
    input  wire [GW-1:0]     g_val,
    output reg               out_valid,
    output reg  [IB-1:0]     out_group, // element index (one lane)
    output reg  [OW-1:0]     out_vals
);
    localparam EB = (SIZE > 1) ? $clog2(SIZE) : 1;
    // a*g: an AW-bit times a GW-bit signed value fits AW + GW bits; at least one bit above
    // the output register, whose bounds the saturation compares with.
    localparam PW = (AW + GW > OW) ? AW + GW : OW + 1;
    localparam signed [PW-1:0] YMAX = (1 <<< (OW - 1)) - 1;
    localparam signed [PW-1:0] YMIN = -(1 <<< (OW - 1));

    reg [IB-1:0] ai [0:SIZE-1];                   // index ROMs (LUTs)
    reg [IB-1:0] gi [0:SIZE-1];
    initial begin
        $readmemh(A_FILE, ai);
        $readmemh(G_FILE, gi);
    end

    localparam S_IDLE = 2'd0, S_ISSUE = 2'd1, S_WAIT = 2'd2, S_FLUSH = 2'd3;
    reg [1:0] state;
    reg [EB-1:0] e;
    assign busy = state != S_IDLE;
    assign a_raddr = ai[e];
    assign g_raddr = gi[e];

    reg v1;
    reg [EB-1:0] e1;
    always @(posedge clk) begin
        v1 <= !rst && state == S_ISSUE;
        e1 <= e;
    end

    // Stage 1: y = sat((a * g) >>> SHIFT); >>> on the signed product is the floor shift of
    // kernels.gate (numpy's >> on int64).
    wire zero = t == 0;
    wire signed [AW-1:0] a = zero ? {AW{1'b0}} : a_val;
    wire signed [GW-1:0] g = zero ? {GW{1'b0}} : g_val;
    wire signed [PW-1:0] p;
    generate if (G_BIN) begin : g_mask
        assign p = g[0] ? $signed(a) : $signed({PW{1'b0}});
    end else begin : g_mul
        assign p = a * g;
    end endgenerate
    wire signed [PW-1:0] ps = p >>> SHIFT;
    // sat_y: clip to the OW-bit output register (saturates, never wraps).
    wire signed [PW-1:0] y = (ps > YMAX) ? YMAX : (ps < YMIN) ? YMIN : ps;

    always @(posedge clk) begin
        out_valid <= v1;
        out_group <= e1;
        out_vals <= y[OW-1:0];
        if (rst) begin
            state <= S_IDLE; e <= 0;
        end else case (state)
            S_IDLE: if (start) begin state <= S_ISSUE; e <= 0; end
            S_ISSUE: begin
                e <= e + 1;
                if (e == SIZE - 1) state <= S_WAIT;
            end
            S_WAIT: state <= S_FLUSH;
            S_FLUSH: state <= S_IDLE;
        endcase
    end
endmodule
