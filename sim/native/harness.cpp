// rampart native harness: a small C ABI around one Verilated model, loaded from Python with ctypes.
//
// Compiled once per design build, together with the Verilated model, with -DRP_TOP=<Verilator prefix> (e.g. Vtop)
// and optionally -DRP_TRACE for the FST-tracing variant. Everything is addressed by index into the model's public
// variables (the ports and the state elements a generated .vlt file makes public); Python resolves names to indices
// once with rp_var_count/rp_var_info.
//
// Cycle protocol: between calls the model sits just after a rising clock edge (clk = 1; at creation, settled at
// clk = 0). A cycle is
//   clk = 0, eval()   (inputs poked since the last edge settle here; nothing is triggered on the falling edge)
//   clk = 1, eval()   (the rising edge: registers update)
// so a value poked before step() is seen by the next rising edge, and a state bit flipped between cycles behaves like
// Amaranth's ctx.set() between ticks.
//
// Host memory (optional, rp_hostmem_attach): a large memory of 64-bit words kept here, outside the model, behind four
// ports of the design (a word address and byte write strobes, write data and read data). Before each rising edge
// (after the clk = 0 settle) the read data port is set to the word at the address; after the edge a write under the
// strobes (sampled before the edge) lands. That is a combinational read port and a synchronous write port, as an
// Amaranth Memory with a comb read port. Host memory is simulation scaffolding: it is not model state, so it is in no
// snapshot, digest or state map (fault-injection loops refuse a model that has one attached).
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "verilated.h"
#include "verilated_syms.h"
#ifdef RP_TRACE
#include "verilated_fst_c.h"
#endif

// The per-cycle helpers must inline into the replay loops (measured: ~20 instructions per call otherwise).
#define RP_HOT __attribute__((always_inline)) inline
#define RP_STR2(x) #x
#define RP_STR(x) RP_STR2(x)
#define RP_CAT2(a, b) a##b
#define RP_CAT(a, b) RP_CAT2(a, b)
#include RP_STR(RP_TOP.h)
#include RP_STR(RP_CAT(RP_TOP, ___024root.h))

using Top = RP_TOP;
using Root = RP_CAT(RP_TOP, ___024root);

// Verilator's generated time-zero settle: re-evaluates every combinational process from the current state. After
// writing state between cycles (a flip, a memory load) we call it so every combinational value is in line with the
// new state before anything reads it, exactly as if the design had been in that state all along.
void RP_CAT(RP_TOP, ___024root___eval_settle)(Root* root);
inline void resettle_combinational(Top* model) { RP_CAT(RP_TOP, ___024root___eval_settle)(model->rootp); }

namespace {

struct Var {
    std::string scope;
    std::string name;
    uint8_t* data;
    uint32_t width;      // bits of one element
    uint32_t depth;      // elements (1 unless an unpacked array: a memory)
    uint32_t ent_bytes;  // bytes of storage per element (1, 2, 4, 8 or a multiple of 4)
};

struct StateVar {
    uint8_t* data;
    uint32_t width, depth, ent_bytes;
};

struct HostMem {
    std::vector<uint64_t> words;
    const Var* addr = nullptr;   // output: word address (its width covers exactly words.size())
    const Var* wen = nullptr;    // output: byte write strobes (8 bits)
    const Var* wdata = nullptr;  // output: write data (64 bits)
    Var* rdata = nullptr;        // input: read data (64 bits)
};

struct Sim {
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<HostMem> hostmem;
    std::unique_ptr<Top> model;
    std::vector<Var> vars;
    std::vector<StateVar> state;  // the state map, in its order (set by rp_set_state)
    size_t state_bytes = 0;
    bool settled = true;
    uint64_t time = 0;
#ifdef RP_TRACE
    std::unique_ptr<VerilatedFstC> trace;
#endif
};

RP_HOT void dump(Sim* s) {
#ifdef RP_TRACE
    if (s->trace) s->trace->dump(s->time);
#endif
    s->time++;
}

RP_HOT void settle(Sim* s) {
    if (!s->settled) {
        s->model->clk = 0;
        s->model->eval();
        dump(s);
        s->settled = true;
    }
}

inline uint64_t load_u64(const Var* v) {
    uint64_t x = 0;
    std::memcpy(&x, v->data, v->ent_bytes < 8 ? v->ent_bytes : 8);
    return x;
}

// Before the rising edge: drive the read data, and return the pending write (strobes 0: none).
inline uint8_t hostmem_before_edge(HostMem* hm, uint64_t* addr, uint64_t* wdata) {
    *addr = load_u64(hm->addr);
    uint64_t rd = *addr < hm->words.size() ? hm->words[*addr] : 0;
    std::memcpy(hm->rdata->data, &rd, 8);
    *wdata = load_u64(hm->wdata);
    return static_cast<uint8_t>(load_u64(hm->wen));
}

inline void hostmem_write(HostMem* hm, uint64_t addr, uint8_t wen, uint64_t wdata) {
    if (!wen || addr >= hm->words.size()) return;
    uint64_t mask = 0;
    for (int b = 0; b < 8; ++b)
        if (wen >> b & 1) mask |= 0xFFULL << (8 * b);
    hm->words[addr] = (hm->words[addr] & ~mask) | (wdata & mask);
}

RP_HOT void cycle(Sim* s) {
    Top* m = s->model.get();
    if (s->settled && m->clk == 0) {
        // already evaluated at clk = 0
    } else {
        m->clk = 0;
        m->eval();
        dump(s);
    }
    HostMem* hm = s->hostmem.get();
    uint64_t addr = 0, wdata = 0;
    uint8_t wen = 0;
    if (hm) wen = hostmem_before_edge(hm, &addr, &wdata);  // read data reaches the edge through eval's input phase
    m->clk = 1;
    m->eval();
    dump(s);
    if (hm) hostmem_write(hm, addr, wen, wdata);
    s->settled = true;
}

// Elements are stored little-endian in ent_bytes; bits above the width must stay zero. Fast paths for the scalar
// storage types (CData/SData/IData/QData) keep per-cycle port access out of libc calls.
inline uint64_t width_mask(uint32_t width) { return width >= 64 ? ~0ULL : (1ULL << width) - 1; }

RP_HOT void write_element(uint8_t* p, uint32_t width, uint32_t ent_bytes, const uint32_t* words) {
    switch (ent_bytes) {
        case 1: *p = static_cast<uint8_t>(words[0] & width_mask(width)); return;
        case 2: *reinterpret_cast<uint16_t*>(p) = static_cast<uint16_t>(words[0] & width_mask(width)); return;
        case 4: *reinterpret_cast<uint32_t*>(p) = static_cast<uint32_t>(words[0] & width_mask(width)); return;
        case 8: {
            uint64_t value = words[0] | (width > 32 ? static_cast<uint64_t>(words[1]) << 32 : 0);
            *reinterpret_cast<uint64_t*>(p) = value & width_mask(width);
            return;
        }
        default: break;
    }
    uint32_t nbytes = (width + 7) / 8;
    std::memcpy(p, words, nbytes);
    if (width % 8) p[nbytes - 1] &= static_cast<uint8_t>((1u << (width % 8)) - 1);
    if (ent_bytes > nbytes) std::memset(p + nbytes, 0, ent_bytes - nbytes);
}

RP_HOT void read_element(const uint8_t* p, uint32_t width, uint32_t ent_bytes, uint32_t* words) {
    switch (ent_bytes) {
        case 1: words[0] = *p; return;
        case 2: words[0] = *reinterpret_cast<const uint16_t*>(p); return;
        case 4: words[0] = *reinterpret_cast<const uint32_t*>(p); return;
        case 8: {
            uint64_t value = *reinterpret_cast<const uint64_t*>(p);
            words[0] = static_cast<uint32_t>(value);
            if (width > 32) words[1] = static_cast<uint32_t>(value >> 32);
            return;
        }
        default: break;
    }
    uint32_t nwords = (width + 31) / 32;
    std::memcpy(words, p, nwords * 4);  // wide values (VlWide) are whole 32-bit words
}

// A 64-bit multiply-xorshift hash over the state bytes, 8 bytes at a time, with a final avalanche (splitmix64's
// finaliser). Each step is a bijection of h for a given v, so a state differing in one 8-byte word never matches;
// the xorshift carries high-bit differences down (a plain FNV-1a step on whole words keeps a difference in bit 63
// in bit 63, so two flipped top bits, e.g. a memory word and a register loaded from it, cancel exactly).
inline uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v;
    h *= 0x9e3779b97f4a7c15ULL;
    h ^= h >> 32;
    return h;
}

inline uint64_t finalise(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// A port as the per-cycle loops touch it, resolved once per call: its storage, bytes per element, 32-bit words per
// cycle and the mask of its width (scalar storage only), so a cycle costs a few instructions per port.
struct PortVar {
    uint8_t* data;
    uint32_t width, ent_bytes, words;
    uint64_t mask;
};

// The input and output ports of a stimulus; a cycle's words are the ports' words in order.
struct Ports {
    std::vector<PortVar> ins, outs;
    size_t in_stride = 0, out_stride = 0;
};

PortVar port_var(const Var& v) { return {v.data, v.width, v.ent_bytes, (v.width + 31) / 32, width_mask(v.width)}; }

Ports resolve_ports(Sim* s, int n_in, const int* in_vars, int n_out, const int* out_vars) {
    Ports p;
    for (int i = 0; i < n_in; ++i) {
        p.ins.push_back(port_var(s->vars.at(in_vars[i])));
        p.in_stride += p.ins.back().words;
    }
    for (int i = 0; i < n_out; ++i) {
        p.outs.push_back(port_var(s->vars.at(out_vars[i])));
        p.out_stride += p.outs.back().words;
    }
    return p;
}

RP_HOT void write_port(const PortVar& v, const uint32_t* words) {
    switch (v.ent_bytes) {
        case 1: *v.data = static_cast<uint8_t>(words[0] & v.mask); return;
        case 2: *reinterpret_cast<uint16_t*>(v.data) = static_cast<uint16_t>(words[0] & v.mask); return;
        case 4: *reinterpret_cast<uint32_t*>(v.data) = static_cast<uint32_t>(words[0] & v.mask); return;
        default: write_element(v.data, v.width, v.ent_bytes, words);
    }
}

RP_HOT void read_port(const PortVar& v, uint32_t* words) {
    if (v.ent_bytes <= 8) {
        read_element(v.data, v.width, v.ent_bytes, words);
    } else {
        for (uint32_t w = 0; w < v.words; ++w) words[w] = reinterpret_cast<const uint32_t*>(v.data)[w];
    }
}

// Apply cycle c's inputs and settle at clk = 0 (outputs are then valid for sampling).
RP_HOT void apply_inputs(Sim* s, const Ports& p, const uint32_t* in_words, uint64_t c) {
    const uint32_t* iw = in_words + c * p.in_stride;
    for (const PortVar& v : p.ins) {
        write_port(v, iw);
        iw += v.words;
    }
    s->settled = false;
    settle(s);
}

RP_HOT void sample_outputs(const Ports& p, uint32_t* ow) {
    for (const PortVar& v : p.outs) {
        read_port(v, ow);
        ow += v.words;
    }
}

}  // namespace

extern "C" {

void* rp_create() {
    auto* s = new Sim;
    s->ctx = std::make_unique<VerilatedContext>();
    s->ctx->fatalOnError(false);
#ifdef RP_TRACE
    s->ctx->traceEverOn(true);
#endif
    s->model = std::make_unique<Top>(s->ctx.get(), "TOP");
    // Settle at clk = 0 without a rising edge, so the first cycle is the design's first edge (as in pysim and cocotb).
    s->model->clk = 0;
    s->model->rst = 0;
    s->model->eval();
    const VerilatedScopeNameMap* scopes = s->ctx->scopeNameMap();
    if (scopes) {
        for (const auto& sc : *scopes) {
            const VerilatedVarNameMap* vars = sc.second->varsp();
            if (!vars) continue;
            for (const auto& v : *vars) {
                const VerilatedVar& var = v.second;
                Var out;
                out.scope = sc.second->name();
                out.name = v.first;
                out.data = static_cast<uint8_t*>(var.datap());
                if (var.udims() > 1) continue;  // not produced by Amaranth
                if (var.udims() == 1 && var.low(1) != 0) continue;  // memories are declared [depth-1:0]
                out.depth = var.udims() == 1 ? var.elements(1) : 1;
                out.width = var.entBits();
                out.ent_bytes = var.entSize();
                s->vars.push_back(out);
            }
        }
    }
    return s;
}

void rp_destroy(void* h) {
    auto* s = static_cast<Sim*>(h);
#ifdef RP_TRACE
    if (s->trace) s->trace->close();
#endif
    // ~VerilatedScope unregisters from Verilated::threadContextp(), the context most recently created on this thread,
    // not its own: point it at ours, or destroying instances out of creation order uses a freed context (deadlock).
    Verilated::threadContextp(s->ctx.get());
    s->model->final();
    delete s;
    Verilated::threadContextp(nullptr);
}

int rp_var_count(void* h) { return static_cast<int>(static_cast<Sim*>(h)->vars.size()); }

// Fills width, depth, ent_bytes; returns "scope\tname" (valid while the Sim lives).
const char* rp_var_info(void* h, int i, uint32_t* width, uint32_t* depth, uint32_t* ent_bytes) {
    static thread_local std::string buf;
    const Var& v = static_cast<Sim*>(h)->vars.at(i);
    *width = v.width;
    *depth = v.depth;
    *ent_bytes = v.ent_bytes;
    buf = v.scope + "\t" + v.name;
    return buf.c_str();
}

// The state map in order, as indices into the public variables.
void rp_set_state(void* h, int n, const int* var_indices) {
    auto* s = static_cast<Sim*>(h);
    s->state.clear();
    s->state_bytes = 0;
    for (int i = 0; i < n; ++i) {
        const Var& v = s->vars.at(var_indices[i]);
        s->state.push_back({v.data, v.width, v.depth, v.ent_bytes});
        s->state_bytes += static_cast<size_t>(v.ent_bytes) * v.depth;
    }
}

void rp_poke(void* h, int var, uint32_t element, const uint32_t* words) {
    auto* s = static_cast<Sim*>(h);
    const Var& v = s->vars.at(var);
    write_element(v.data + static_cast<size_t>(element) * v.ent_bytes, v.width, v.ent_bytes, words);
    s->settled = false;
}

void rp_peek(void* h, int var, uint32_t element, uint32_t* words) {
    auto* s = static_cast<Sim*>(h);
    settle(s);
    const Var& v = s->vars.at(var);
    read_element(v.data + static_cast<size_t>(element) * v.ent_bytes, v.width, v.ent_bytes, words);
}

// Bulk memory access: `count` elements from `first`, each (width+31)/32 words.
void rp_load_mem(void* h, int var, uint32_t first, uint32_t count, const uint32_t* words) {
    auto* s = static_cast<Sim*>(h);
    const Var& v = s->vars.at(var);
    uint32_t stride = (v.width + 31) / 32;
    for (uint32_t i = 0; i < count; ++i)
        write_element(v.data + static_cast<size_t>(first + i) * v.ent_bytes, v.width, v.ent_bytes, words + i * stride);
    resettle_combinational(s->model.get());
    s->settled = false;
}

void rp_read_mem(void* h, int var, uint32_t first, uint32_t count, uint32_t* words) {
    auto* s = static_cast<Sim*>(h);
    const Var& v = s->vars.at(var);
    uint32_t stride = (v.width + 31) / 32;
    for (uint32_t i = 0; i < count; ++i)
        read_element(v.data + static_cast<size_t>(first + i) * v.ent_bytes, v.width, v.ent_bytes, words + i * stride);
}

void rp_step(void* h, uint64_t n) {
    auto* s = static_cast<Sim*>(h);
    for (uint64_t i = 0; i < n; ++i) cycle(s);
}

void rp_reset(void* h, uint32_t cycles) {
    auto* s = static_cast<Sim*>(h);
    s->model->rst = 1;
    s->settled = false;
    for (uint32_t i = 0; i < cycles; ++i) cycle(s);
    s->model->rst = 0;
    s->settled = false;
}

// Replays per-cycle stimulus and records outputs before each rising edge: per cycle, `in_words` holds the words of
// every input var in order; `out_words` receives the words of every output var in order.
void rp_run_stimulus(void* h, uint64_t cycles, int n_in, const int* in_vars, const uint32_t* in_words, int n_out,
                     const int* out_vars, uint32_t* out_words) {
    auto* s = static_cast<Sim*>(h);
    Ports p = resolve_ports(s, n_in, in_vars, n_out, out_vars);
    for (uint64_t c = 0; c < cycles; ++c) {
        apply_inputs(s, p, in_words, c);
        sample_outputs(p, out_words + c * p.out_stride);
        cycle(s);
    }
}

// --- state access for fault injection -------------------------------------------------------------------------

uint64_t rp_state_bytes(void* h) { return static_cast<Sim*>(h)->state_bytes; }

// The digest input: every state element's storage bytes, in state-map order.
void rp_state_dump(void* h, uint8_t* out) {
    auto* s = static_cast<Sim*>(h);
    for (const StateVar& v : s->state) {
        size_t n = static_cast<size_t>(v.ent_bytes) * v.depth;
        std::memcpy(out, v.data, n);
        out += n;
    }
}

uint64_t rp_state_digest(void* h) {
    auto* s = static_cast<Sim*>(h);
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (const StateVar& v : s->state) {
        size_t n = static_cast<size_t>(v.ent_bytes) * v.depth;
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            std::memcpy(&w, v.data + i, 8);
            hash = mix(hash, w);
        }
        uint64_t tail = 0;
        if (i < n) std::memcpy(&tail, v.data + i, n - i);
        hash = mix(hash, tail ^ (static_cast<uint64_t>(n) << 56));
    }
    return finalise(hash);
}

// Flip / read / write one bit of state element `elem`, word `element`, bit `bit`. Returns the new value.
int rp_flip(void* h, int elem, uint32_t element, uint32_t bit) {
    auto* s = static_cast<Sim*>(h);
    const StateVar& v = s->state.at(elem);
    uint8_t* p = v.data + static_cast<size_t>(element) * v.ent_bytes + bit / 8;
    *p ^= static_cast<uint8_t>(1u << (bit % 8));
    resettle_combinational(s->model.get());
    return (*p >> (bit % 8)) & 1;
}

int rp_get_bit(void* h, int elem, uint32_t element, uint32_t bit) {
    const StateVar& v = static_cast<Sim*>(h)->state.at(elem);
    return (v.data[static_cast<size_t>(element) * v.ent_bytes + bit / 8] >> (bit % 8)) & 1;
}

// --- host memory (see the header comment) -------------------------------------------------------------------

// Attach a host memory of `words` 64-bit words to the ports `addr_var`, `wen_var`, `wdata_var` (outputs) and
// `rdata_var` (input). Returns 0, or -1 if a port has the wrong width.
int rp_hostmem_attach(void* h, uint64_t words, int addr_var, int wen_var, int wdata_var, int rdata_var) {
    auto* s = static_cast<Sim*>(h);
    auto hm = std::make_unique<HostMem>();
    hm->addr = &s->vars.at(addr_var);
    hm->wen = &s->vars.at(wen_var);
    hm->wdata = &s->vars.at(wdata_var);
    hm->rdata = &s->vars.at(rdata_var);
    if (hm->addr->width > 64 || hm->wen->width != 8 || hm->wdata->width != 64 || hm->rdata->width != 64) return -1;
    hm->words.assign(words, 0);
    s->hostmem = std::move(hm);
    s->settled = false;
    return 0;
}

int rp_hostmem_attached(void* h) { return static_cast<Sim*>(h)->hostmem ? 1 : 0; }

void rp_hostmem_load(void* h, uint64_t first, uint64_t count, const uint64_t* words) {
    auto* s = static_cast<Sim*>(h);
    std::memcpy(s->hostmem->words.data() + first, words, count * 8);
    s->settled = false;
}

void rp_hostmem_read(void* h, uint64_t first, uint64_t count, uint64_t* words) {
    auto* s = static_cast<Sim*>(h);
    std::memcpy(words, s->hostmem->words.data() + first, count * 8);
}

void rp_hostmem_clear(void* h) {
    auto* s = static_cast<Sim*>(h);
    std::fill(s->hostmem->words.begin(), s->hostmem->words.end(), 0);
    s->settled = false;
}

// --- snapshots: the whole model root, restored into the same instance ------------------------------------------

uint64_t rp_snapshot_size() { return sizeof(Root); }

void rp_snapshot(void* h, uint8_t* buf) {
    auto* s = static_cast<Sim*>(h);
    std::memcpy(buf, static_cast<void*>(s->model->rootp), sizeof(Root));
}

void rp_restore(void* h, const uint8_t* buf) {
    auto* s = static_cast<Sim*>(h);
    std::memcpy(static_cast<void*>(s->model->rootp), buf, sizeof(Root));
    s->settled = true;
}

// --- fault-injection inner loops: golden run with checkpoints, batched injection ---------------------------------
//
// A workload is `cycles` cycles of per-cycle input words (as rp_run_stimulus) and a list of observed output vars.
// Cycle c means: apply the inputs of cycle c, settle, sample the observed outputs, rising edge. "The state at cycle
// c" is the state after c rising edges (before cycle c's inputs); a fault at cycle c flips a bit of that state.
// Checkpoint j (every `interval` cycles) is the state at cycle j*interval: a snapshot (for j*interval < cycles) and
// a state digest (for j*interval <= cycles); the digest of the final state (at `cycles`) is returned separately.
// `observe` (nullable) is one byte per cycle: outputs are compared only on cycles where it is non-zero.

uint64_t rp_checkpoint_count(uint64_t cycles, uint64_t interval) {
    return interval ? (cycles + interval - 1) / interval : 0;
}

}  // extern "C"

// Byte range of `count` words of state element `elem` from word `first` (for observed memory regions).
namespace {
inline const uint8_t* region_ptr(Sim* s, int elem, uint32_t first, size_t* nbytes, uint32_t count) {
    const StateVar& v = s->state.at(elem);
    *nbytes = static_cast<size_t>(v.ent_bytes) * count;
    return v.data + static_cast<size_t>(first) * v.ent_bytes;
}

// A var's current (settled) value is non-zero; any of several vars is.
inline bool is_high(const Var* v) {
    for (uint32_t i = 0; i < v->ent_bytes; ++i)
        if (v->data[i]) return true;
    return false;
}

inline bool any_high(const std::vector<const Var*>& vars) {
    for (const Var* v : vars)
        if (is_high(v)) return true;
    return false;
}

std::vector<const Var*> resolve_vars(Sim* s, int n, const int* ids) {
    std::vector<const Var*> out;
    for (int i = 0; i < n; ++i) out.push_back(&s->vars.at(ids[i]));
    return out;
}
}  // namespace

extern "C" {

// Replays the workload from the current state (normally a fresh instance, possibly with a memory image loaded),
// recording every cycle's observed outputs into out_words (cycles * out_stride words), the snapshots
// (rp_checkpoint_count * rp_snapshot_size bytes), the checkpoint digests (cycles / interval + 1 entries) and the
// final digest. The `n_mem` observed memory regions (state element mem_elems[k], words
// [mem_first[k], +mem_count[k])) are copied into golden_mem (their storage bytes, concatenated) at the end; the
// detection vars (det_vars, ports) are sampled every cycle and at the end (the state at `cycles`, with the last
// cycle's inputs held): *first_detect gets the first such cycle where one is non-zero (UINT64_MAX: never); the
// completion var (complete_var, -1: none) is sampled at the end into *completed. Returns 0, or -1 for a zero
// interval.
int rp_golden_run_ex(void* h, uint64_t cycles, int n_in, const int* in_vars, const uint32_t* in_words, int n_out,
                     const int* out_vars, uint32_t* out_words, uint64_t interval, uint8_t* snapshots,
                     uint64_t* digests, uint64_t* final_digest, int n_mem, const int32_t* mem_elems,
                     const uint32_t* mem_first, const uint32_t* mem_count, uint8_t* golden_mem, int n_det,
                     const int* det_vars, int complete_var, uint64_t* first_detect, int* completed) {
    if (interval == 0) return -1;
    auto* s = static_cast<Sim*>(h);
    Ports p = resolve_ports(s, n_in, in_vars, n_out, out_vars);
    std::vector<const Var*> det = resolve_vars(s, n_det, det_vars);
    const Var* done = complete_var >= 0 ? &s->vars.at(complete_var) : nullptr;
    uint64_t detect = UINT64_MAX;
    for (uint64_t c = 0; c < cycles; ++c) {
        if (c % interval == 0) {
            std::memcpy(snapshots + (c / interval) * sizeof(Root), static_cast<void*>(s->model->rootp), sizeof(Root));
            digests[c / interval] = rp_state_digest(h);
        }
        apply_inputs(s, p, in_words, c);
        if (detect == UINT64_MAX && any_high(det)) detect = c;
        sample_outputs(p, out_words + c * p.out_stride);
        cycle(s);
    }
    if (cycles % interval == 0) digests[cycles / interval] = rp_state_digest(h);
    *final_digest = rp_state_digest(h);
    if (cycles && (n_det || done)) {
        apply_inputs(s, p, in_words, cycles - 1);  // held inputs; settling changes no state
        if (detect == UINT64_MAX && any_high(det)) detect = cycles;
    }
    if (first_detect) *first_detect = detect;
    if (completed) *completed = done ? is_high(done) : 1;
    for (int k = 0; k < n_mem; ++k) {
        size_t nbytes;
        const uint8_t* src = region_ptr(s, mem_elems[k], mem_first[k], &nbytes, mem_count[k]);
        std::memcpy(golden_mem, src, nbytes);
        golden_mem += nbytes;
    }
    return 0;
}

// Injects n faults, one after the other, each (state element elems[i], word words[i], bit bits[i]) at fault_cycles[i]:
// restore the checkpoint at or before the cycle, replay to it, flip, then run on. A fault flips upset[i] adjacent
// bits of that one word (upset == nullptr: 1 each): bits[i], bits[i]+1, ... modulo the element's width, i.e.
// wrapping at the word's edge, so every fault flips exactly min(upset[i], width) distinct bits. Every cycle c
// (inputs applied, settled): a non-zero detection var is DETECTED_UNRECOVERABLE (stop); a non-zero correction var
// (corr_vars: e.g. an ECC's "corrected") is remembered; for c < cycles on observed cycles, observed outputs
// differing from golden_out are SDC (stop); after the edge, a state digest equal to the golden one at a checkpoint
// is MASKED (stop). Without a completion var the run ends at `cycles`. With one, the run ends at the first
// c >= cycles where it is non-zero (inputs of the last cycle held from `cycles` on); not by `watchdog` is HANG. At
// the end: an observed memory region differing from golden_mem is SDC, else an unchanged final digest is MASKED, a
// changed one LATENT; a MASKED or LATENT run during which a correction var was non-zero is DETECTED_RECOVERABLE.
// Per region k (each nullable, defaults in brackets): mem_outcome[k] is the outcome of a difference [SDC];
// mem_at[k] < cycles checks the region at the top of cycle mem_at[k] (the state after that many edges, before
// anything else of that cycle) instead of at the end [at the end] -- its golden copy must then not change after
// that cycle; top1_len[k] > 0 makes the region a classifier's scores: top1_len[k] int8 bytes from byte
// top1_off[k] of the region, and when the region decides the outcome, bit 0 of flags[i] says whether their
// argmax (the first maximum) differs from the golden one (flags nullable; 0 otherwise).
// Writes outcome codes (faultinj.outcomes.Outcome) and cycles simulated per fault. Returns 0, or -(i+1) if fault i
// is out of range or flips no bit (nothing after it is run).
int rp_inject_batch_ex(void* h, uint64_t cycles, int n_in, const int* in_vars, const uint32_t* in_words, int n_out,
                       const int* out_vars, const uint32_t* golden_out, const uint8_t* observe, uint64_t interval,
                       const uint8_t* snapshots, const uint64_t* digests, uint64_t final_digest, int n_mem,
                       const int32_t* mem_elems, const uint32_t* mem_first, const uint32_t* mem_count,
                       const uint8_t* golden_mem, const uint8_t* mem_outcome, const uint64_t* mem_at,
                       const uint32_t* top1_off, const uint32_t* top1_len, int n_det, const int* det_vars,
                       int n_corr, const int* corr_vars, int complete_var, uint64_t watchdog, uint64_t n,
                       const int32_t* elems, const uint32_t* words, const uint32_t* bits, const uint8_t* upset,
                       const uint64_t* fault_cycles, uint8_t* outcomes, uint64_t* simulated, uint8_t* flags) {
    enum { MASKED = 0, SDC = 1, DETECTED_RECOVERABLE = 2, DETECTED_UNRECOVERABLE = 3, HANG = 4, LATENT = 5 };
    if (interval == 0) return -1;
    auto* s = static_cast<Sim*>(h);
    Ports p = resolve_ports(s, n_in, in_vars, n_out, out_vars);
    std::vector<const Var*> det = resolve_vars(s, n_det, det_vars);
    std::vector<const Var*> corr = resolve_vars(s, n_corr, corr_vars);
    const Var* done = complete_var >= 0 ? &s->vars.at(complete_var) : nullptr;
    if (done && watchdog < cycles) watchdog = cycles;
    std::vector<uint32_t> sample(p.out_stride ? p.out_stride : 1);
    std::vector<const uint8_t*> golden_region(n_mem > 0 ? n_mem : 1);
    bool checks_midway = false;
    for (int k = 0, off = 0; k < n_mem; ++k) {
        const StateVar& sv = s->state.at(mem_elems[k]);
        if (static_cast<uint64_t>(mem_first[k]) + mem_count[k] > sv.depth) return -1;
        if (top1_len && static_cast<uint64_t>(top1_off[k]) + top1_len[k] > static_cast<uint64_t>(sv.ent_bytes) *
                                                                                mem_count[k]) return -1;
        golden_region[k] = golden_mem + off;
        off += static_cast<int>(static_cast<size_t>(sv.ent_bytes) * mem_count[k]);
        checks_midway |= mem_at && mem_at[k] < cycles;
    }
    // Region k differs from its golden copy: its outcome, and whether a classifier's top-1 changed.
    auto region_differs = [&](int k, uint8_t* outcome, uint8_t* flag) {
        size_t nbytes;
        const uint8_t* cur = region_ptr(s, mem_elems[k], mem_first[k], &nbytes, mem_count[k]);
        if (std::memcmp(cur, golden_region[k], nbytes) == 0) return false;
        *outcome = mem_outcome ? mem_outcome[k] : SDC;
        if (top1_len && top1_len[k]) {
            const int8_t* a = reinterpret_cast<const int8_t*>(cur + top1_off[k]);
            const int8_t* g = reinterpret_cast<const int8_t*>(golden_region[k] + top1_off[k]);
            uint32_t ia = 0, ig = 0;
            for (uint32_t j = 1; j < top1_len[k]; ++j) {
                if (a[j] > a[ia]) ia = j;
                if (g[j] > g[ig]) ig = j;
            }
            *flag = ia != ig;
        }
        return true;
    };
    for (uint64_t i = 0; i < n; ++i) {
        uint64_t t = fault_cycles[i];
        if (elems[i] < 0 || static_cast<size_t>(elems[i]) >= s->state.size() || t >= cycles) return -static_cast<int>(i + 1);
        const StateVar& sv = s->state[elems[i]];
        uint32_t k = upset ? upset[i] : 1;
        if (words[i] >= sv.depth || bits[i] >= sv.width || k == 0) return -static_cast<int>(i + 1);
        if (k > sv.width) k = sv.width;
        uint64_t start = t / interval * interval;
        std::memcpy(static_cast<void*>(s->model->rootp), snapshots + (t / interval) * sizeof(Root), sizeof(Root));
        s->settled = true;
        for (uint64_t c = start; c < t; ++c) {
            apply_inputs(s, p, in_words, c);
            cycle(s);
        }
        for (uint32_t j = 0; j < k; ++j) rp_flip(h, elems[i], words[i], (bits[i] + j) % sv.width);
        uint8_t outcome = 255, flag = 0;
        bool corrected = false;
        uint64_t c = t;
        for (;;) {
            if (checks_midway && c < cycles) {
                for (int r = 0; r < n_mem && outcome == 255; ++r)
                    if (mem_at[r] == c) region_differs(r, &outcome, &flag);
                if (outcome != 255) break;
            }
            if (c >= cycles && !done) break;
            if (done && c >= watchdog) {
                outcome = HANG;
                break;
            }
            apply_inputs(s, p, in_words, c < cycles ? c : cycles - 1);
            if (n_det && any_high(det)) {
                outcome = DETECTED_UNRECOVERABLE;
                ++c;
                break;
            }
            if (n_corr && !corrected) corrected = any_high(corr);
            if (c < cycles && p.out_stride && (!observe || observe[c])) {
                sample_outputs(p, sample.data());
                if (std::memcmp(sample.data(), golden_out + c * p.out_stride, p.out_stride * 4) != 0) {
                    outcome = SDC;
                    ++c;  // this cycle was simulated up to the sample
                    break;
                }
            }
            if (done && c >= cycles && is_high(done)) break;  // completed: the run ends in this state
            cycle(s);
            ++c;
            if (c % interval == 0 && c < cycles && rp_state_digest(h) == digests[c / interval]) {
                outcome = MASKED;
                break;
            }
        }
        for (int r = 0; r < n_mem && outcome == 255; ++r)
            if (!mem_at || mem_at[r] >= cycles) region_differs(r, &outcome, &flag);
        if (outcome == 255) outcome = rp_state_digest(h) == final_digest ? MASKED : LATENT;
        if (corrected && (outcome == MASKED || outcome == LATENT)) outcome = DETECTED_RECOVERABLE;
        outcomes[i] = outcome;
        simulated[i] = c - start;
        if (flags) flags[i] = flag;
    }
    return 0;
}

// --- tracing ---------------------------------------------------------------------------------------------------

int rp_trace_open(void* h, const char* path) {
#ifdef RP_TRACE
    auto* s = static_cast<Sim*>(h);
    s->trace = std::make_unique<VerilatedFstC>();
    s->model->trace(s->trace.get(), 99);
    s->trace->open(path);
    return 1;
#else
    (void)h;
    (void)path;
    return 0;
#endif
}

}  // extern "C"
