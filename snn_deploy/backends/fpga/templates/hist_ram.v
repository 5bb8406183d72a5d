// snn-deploy FPGA backend: history buffer of one projection's source values.
//
// D slots of NSRC values (D = delay + 2). During step t the source writes slot t mod D while
// the destination core reads slot (t + 1) mod D, which holds step t - 1 - delay. A source
// with P lanes writes P values (one group) per cycle, so the buffer has P banks: value j
// lives in bank j mod P at group j / P (P is a power of two).
module hist_ram #(
    parameter NSRC = 1,
    parameter D = 2,
    parameter W = 1,
    parameter P = 1,
    parameter IB = 16
) (
    input  wire          clk,
    input  wire          rst,
    input  wire          advance,   // end of a time step
    input  wire          we,
    input  wire [IB-1:0] wgroup,    // values wgroup*P ... + P-1
    input  wire [P*W-1:0] wdata,
    input  wire [IB-1:0] raddr,
    output wire [W-1:0]  q          // value raddr, one cycle later
);
    localparam G = (NSRC + P - 1) / P;
    localparam LB = (P > 1) ? $clog2(P) : 0;
    localparam AB = (G * D > 1) ? $clog2(G * D) : 1;
    localparam [AB-1:0] LAST = (D - 1) * G;
    reg [AB-1:0] wbase, rbase;
    always @(posedge clk) begin
        if (rst) begin
            wbase <= 0;
            rbase <= G;
        end else if (advance) begin
            wbase <= (wbase == LAST) ? 0 : wbase + G;
            rbase <= (rbase == LAST) ? 0 : rbase + G;
        end
    end
    wire [P*W-1:0] qs;
    reg [IB-1:0] sel;
    always @(posedge clk) sel <= raddr & (P - 1);
    assign q = qs[sel*W +: W];
    genvar l;
    generate for (l = 0; l < P; l = l + 1) begin : bank
        reg [W-1:0] mem [0:G*D-1];
        reg [W-1:0] bq;
        always @(posedge clk) begin
            if (we) mem[wbase + wgroup] <= wdata[l*W +: W];
            bq <= mem[rbase + (raddr >> LB)];
        end
        assign qs[l*W +: W] = bq;
    end endgenerate
endmodule
