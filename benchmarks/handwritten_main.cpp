// Baseline for benchmarks/sim_speed.py: the fastest plain way to run a Verilated model -- a hand-written C++ main.
// It replays the same per-cycle stimulus buffer as the native harness's rp_run_stimulus, with the same cycle
// protocol (inputs applied, settle at clk = 0, outputs read, rising edge), and records `out` every cycle into a
// trace buffer allocated beforehand but not yet touched, as rp_run_stimulus does into its fresh numpy array: the same
// work, timed the same way (from the first cycle to the last, the stimulus already in memory).
// Usage: main STIMULUS.bin CYCLES ; the buffer holds, per cycle, one uint32 per input in the order used below.
// (Verilator spells the Verilog port a_in__0 as the C++ member a_in___05F0.)
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "Vtop.h"
#include "verilated.h"

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    FILE* f = std::fopen(argv[1], "rb");
    if (!f) return 2;
    uint64_t cycles = std::strtoull(argv[2], nullptr, 10);
    const int n_in = 3 + 8 + 8;  // en, clear, rsel, a_in__0..7, w_in__0..7 (INPUT_ORDER in sim_speed.py)
    std::vector<uint32_t> stim(cycles * n_in);
    if (std::fread(stim.data(), 4, stim.size(), f) != stim.size()) return 2;
    std::fclose(f);
    VerilatedContext ctx;
    Vtop top(&ctx, "TOP");
    top.clk = 0;
    top.rst = 0;
    top.eval();
    std::unique_ptr<uint32_t[]> trace(new uint32_t[cycles * 8]);  // uninitialised: pages are mapped on first write
    auto start = std::chrono::steady_clock::now();
    for (uint64_t c = 0; c < cycles; ++c) {
        const uint32_t* s = &stim[c * n_in];
        top.en = s[0];
        top.clear = s[1];
        top.rsel = s[2];
        top.a_in___05F0 = s[3]; top.a_in___05F1 = s[4]; top.a_in___05F2 = s[5]; top.a_in___05F3 = s[6];
        top.a_in___05F4 = s[7]; top.a_in___05F5 = s[8]; top.a_in___05F6 = s[9]; top.a_in___05F7 = s[10];
        top.w_in___05F0 = s[11]; top.w_in___05F1 = s[12]; top.w_in___05F2 = s[13]; top.w_in___05F3 = s[14];
        top.w_in___05F4 = s[15]; top.w_in___05F5 = s[16]; top.w_in___05F6 = s[17]; top.w_in___05F7 = s[18];
        top.clk = 0;
        top.eval();
        for (int w = 0; w < 8; ++w) trace[c * 8 + w] = top.out[w];
        top.clk = 1;
        top.eval();
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    uint64_t checksum = 0;
    for (uint64_t i = 0; i < cycles * 8; ++i) checksum = checksum * 31 + trace[i];
    std::printf("%.6f %llu\n", seconds, static_cast<unsigned long long>(checksum));
    top.final();
    return 0;
}
