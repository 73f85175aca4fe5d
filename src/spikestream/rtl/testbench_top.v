// Simulation top of a generated accelerator (spikestream.rtl.verify): the only hand-written Verilog of
// the RTL flow. It holds a free-running clock, so that the simulator toggles it instead of Python (the
// cocotb testbench then wakes only on handshake events), and the registers cocotb drives. Macros set by
// rtl.verify: ACCELERATOR (module name), PIXEL_BITS (input payload width), LAYERS, HALF_PERIOD_NS.
// The public_flat_rw metacomments give cocotb these signals under Verilator, which builds with
// --no-public-flat-rw so that it can optimise the accelerator's own logic.
`timescale 1ns/1ps
module spikestream_testbench;
  reg clk /*verilator public_flat_rw*/ = 1'b0;
  reg rst /*verilator public_flat_rw*/ = 1'b1;
  reg pixels__valid /*verilator public_flat_rw*/ = 1'b0;
  reg [`PIXEL_BITS-1:0] pixels__payload /*verilator public_flat_rw*/ = {`PIXEL_BITS{1'b0}};
  reg outputs__ready /*verilator public_flat_rw*/ = 1'b1;
  wire pixels__ready /*verilator public_flat_rw*/;
  wire outputs__valid /*verilator public_flat_rw*/;
  wire [32:0] outputs__payload /*verilator public_flat_rw*/;  // {last, value[31:0]}
  wire [`LAYERS-1:0] layer_busy /*verilator public_flat_rw*/;

  always #(`HALF_PERIOD_NS) clk = ~clk;

  `ACCELERATOR dut (
    .clk(clk), .rst(rst),
    .pixels__valid(pixels__valid), .pixels__ready(pixels__ready), .pixels__payload(pixels__payload),
    .outputs__valid(outputs__valid), .outputs__ready(outputs__ready), .outputs__payload(outputs__payload),
    .layer_busy(layer_busy)
  );
endmodule
