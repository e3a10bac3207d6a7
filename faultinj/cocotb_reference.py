"""The independent reference path of fault injection: cocotb drives the Verilog in Icarus (or Verilator).

:func:`reference_outcomes` (host side) writes a case file and runs :func:`reference_injections` (the cocotb test,
inside the simulator) once for a whole batch of faults. Inside the simulator, per run (golden first, then one per
fault): restore the power-on state (read once at time 0; the flip-flops' and memories' initial values) with the
workload's memory image over it, replay the workload from cycle 0, flip the bit through its simulator handle when
the fault's cycle comes (after that many rising edges, before that cycle's inputs: the fast engine's convention),
run to the end, read the observed memory regions and every state element through the handles, and classify with
the rules of :mod:`faultinj.workload`:

* DETECTED_UNRECOVERABLE if a detection port is high on a cycle (from the flip) no later than the first observed
  output mismatch and, with a completion port, no later than the cycle it ends on (before the watchdog);
* HANG if the completion port is not high on any cycle in ``[cycles, watchdog)``; the run then ends at the
  first such cycle, with the last inputs held;
* SDC if an observed output differs on an observed cycle or an observed memory region differs at the end;
* else LATENT if any state element differs from the golden run's end state, else MASKED.

No snapshots, digests or early stop, nothing shared with the native harness but the Verilog. Icarus start-up
needs two repairs to reach the power-on state the Verilated model starts from: every register is written once (Icarus
turns no declaration initialiser into an event, so logic reading only initialised registers stays X), and signals
still X after that (``always @*`` blocks that read nothing never run) get 0 in their X bits, as in Verilator's
2-state model. Python does not sit
in every cycle: the clock runs in the simulator and the test wakes only on cycles where an input changes, an output
is observed or the fault is flipped, and on a rising detection or completion port (those are registered, so the
value settled after an edge is the value the next cycle samples).

Port rule for ``simulator="verilator"``: through cocotb's VPI, Verilator silently drops a deposit into a register
that is also a top-level output port (e.g. the MAC array's ``out``), so there only faults in other registers and
in memories are meaningful; Icarus (the default) can flip every site.

Environment of the simulator process: RAMPART_FI_CASE (.npz written by :func:`reference_outcomes`),
RAMPART_FI_RESULT (.npz written back: outcome codes, wall seconds of the fault runs).
"""
import os
import time
from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.handle import Immediate
from cocotb.simtime import get_sim_time
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer, ValueChange
from cocotb.types import Logic, LogicArray

from base import RampartError

# faultinj.outcomes.Outcome values (kept literal: this module also runs inside the simulator process)
MASKED, SDC, DETECTED_UNRECOVERABLE, HANG, LATENT = 0, 1, 3, 4, 5
PERIOD = 10_000  # ps; a run starts with the clock low, the rising edge of cycle c is at start + (c + 1/2) PERIOD


@dataclass(frozen=True)
class Fault:
    name: str
    word: int
    bit: int
    cycle: int


@dataclass
class RunResult:
    outputs: dict       # observed cycle -> tuple of output values
    detected: int | None
    end: int | None     # the cycle the run ended on; None: HANG
    detect_limit: int   # the last cycle on which a detection counts
    regions: list
    state: list


def _handles(dut) -> dict:
    handles = {}
    for handle in dut:
        name = handle._name
        handles[name[1:].rstrip(" ") if name.startswith("\\") else name] = handle
    return handles


def _read(handle) -> int:
    """A signal's value as an int (its binary string: much faster than ``int(handle.value)``; X or Z raise)."""
    return int(handle._handle.get_signal_val_binstr(), 2)


def _now() -> int:
    return int(get_sim_time("ps"))


class Replayer:
    """Runs the case's workload again and again in one simulator process, each run from the power-on state."""

    def __init__(self, dut, case):
        self.dut = dut
        self.handles = _handles(dut)
        self.inputs = case["inputs"].item()
        self.cycles = int(case["cycles"])
        self.observe = np.asarray(case["observe"], dtype=bool)
        self.outputs = [str(o) for o in case["outputs"]]
        self.names = [str(n) for n in case["state_names"]]
        self.depths = [int(d) for d in case["state_depths"]]
        self._check_shapes([int(w) for w in case["state_widths"]])
        self.words = {n: [self.handles[n][i] for i in range(d)] for n, d in zip(self.names, self.depths, strict=True)
                      if d > 1}
        self.memory = case["memory"].tolist()
        self.regions = [(str(n), int(f), int(c)) for n, f, c in case["regions"].tolist()]
        complete = str(case["complete"])
        self.complete = self.handles[complete] if complete else None
        self.detect = [self.handles[str(d)] for d in case["detect"]]
        self.watchdog = int(case["watchdog"])
        self.changes = self._input_changes()
        self.idle_inputs = [str(p) for p in case["input_ports"] if str(p) not in self.inputs]
        self.start = None       # time of the current run's cycle 0 (None between runs)
        self.detected = None    # first cycle of the current run with a detection port high

    def _check_shapes(self, widths: list[int]):
        """The simulator's objects must have the state map's shapes (else it runs other Verilog than the build)."""
        for name, depth, width in zip(self.names, self.depths, widths, strict=True):
            handle = self.handles.get(name)
            if handle is None:
                raise AssertionError(f"no state element {name} in the simulated Verilog")
            shape = (len(handle), len(handle[0])) if depth > 1 else (1, len(handle))
            if shape != (depth, width):
                raise AssertionError(f"{name} is {shape[0]} x {shape[1]} bits in the simulator, {depth} x {width} in "
                                     "the state map: the simulator build is stale")

    def _input_changes(self) -> dict[int, dict[str, int]]:
        """Cycle -> {port: value} for the cycles where an input port takes a new value (all ports at cycle 0)."""
        changes: dict[int, dict[str, int]] = {}
        for port, values in self.inputs.items():
            values = np.asarray(values, dtype=np.uint64)
            for c in np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]])):
                changes.setdefault(int(c), {})[port] = int(values[c])
        return changes

    def read_state(self) -> list:
        return [tuple(_read(w) for w in self.words[name]) if depth > 1 else _read(self.handles[name])
                for name, depth in zip(self.names, self.depths, strict=True)]

    def _read_regions(self) -> list:
        return [tuple(_read(w) for w in self.words[n][f:f + c]) for n, f, c in self.regions]

    async def power_on(self):
        """Read the power-on state (after the Verilog initial blocks) and lay the memory image over it."""
        self.dut.rst.value = 0
        self.dut.clk.value = 0
        for port in self.idle_inputs:  # as in a fresh native model: input ports the workload does not drive are 0
            self.handles[port].value = 0
        for port, value in self.changes[0].items():
            self.handles[port].value = value
        await Timer(1, "ns")
        state = self.read_state()
        self._kick(state)
        await Timer(1, "ns")
        self.zeroed = self._zero_unknown()
        await Timer(1, "ns")
        index = {n: i for i, n in enumerate(self.names)}
        for name, first, values in self.memory:
            words = list(state[index[str(name)]])
            words[int(first):int(first) + len(values)] = [int(v) for v in values]
            state[index[str(name)]] = tuple(words)
        self.initial = state
        self.current = self.read_state()  # what is in the simulator now
        self.clock = Clock(self.dut.clk, PERIOD, unit="ps", impl="gpi")
        for handle in self.detect:
            cocotb.start_soon(self._watch(handle))

    def _kick(self, state: list):
        """Icarus does not turn declaration initialisers (``reg r = 0;``) into events, so continuous assignments and
        ``always @*`` blocks that read only initialised registers stay X. Write every flip-flop with another value and
        back, and toggle Yosys' ``dump_module`` registers (every ``always @*`` block of its Verilog reads one)."""
        for name, depth, value in zip(self.names, self.depths, state, strict=True):
            if depth == 1:
                self.handles[name].set(Immediate(value ^ 1))
                self.handles[name].set(Immediate(value))
        for name, handle in self.handles.items():
            if "dump_module" in name:
                value = int(handle.value)
                handle.set(Immediate(value ^ 1))
                handle.set(Immediate(value))

    def _zero_unknown(self) -> list[str]:
        """Deposit 0 into the X bits of signals still unknown after :meth:`_kick` (Icarus never runs an ``always @*``
        block that reads nothing, e.g. one assigning a constant); Verilator's 2-state model (X as 0) is what the fast
        engine runs. Returns their names."""
        zeroed = []
        for name, handle in self.handles.items():
            try:
                value = handle.value
            except (TypeError, NotImplementedError):
                continue   # no single value to repair (memories, scopes: cocotb refuses to read them whole)
            if not isinstance(value, (Logic, LogicArray)) or value.is_resolvable:
                continue
            handle.set(Immediate(int("".join(b if b in "01" else "0" for b in str(value)), 2)))
            zeroed.append(name)
        return zeroed

    async def _watch(self, handle):
        while True:
            await ValueChange(handle)
            await ReadOnly()
            if self.start is not None and self.detected is None and int(handle.value):
                self.detected = self._cycle()

    def _cycle(self) -> int:
        """The workload cycle whose sampling point the current time belongs to (state after that many edges)."""
        return (_now() - self.start + PERIOD // 2) // PERIOD

    async def _restore(self):
        """With the clock stopped, put the power-on state (+ memory image) back where it differs; start the clock."""
        await Timer(1, "ns")  # out of the last run's read-only phase; no clock edge while it is stopped
        self.dut.clk.set(Immediate(0))
        for name, depth, want, have in zip(self.names, self.depths, self.initial, self.current, strict=True):
            if want == have:
                continue
            handle = self.handles[name]
            if depth == 1:
                handle.set(Immediate(want))
            else:
                for i in np.flatnonzero(np.array(want, dtype=object) != np.array(have, dtype=object)):
                    handle[int(i)].set(Immediate(want[int(i)]))
        for port, value in self.changes[0].items():
            self.handles[port].set(Immediate(value))
        self.start = _now()
        self.detected = None
        self.clock.start(start_high=False)

    def _flip(self, fault: Fault):
        handle = self.handles[fault.name]
        target = handle[fault.word] if self.depths[self.names.index(fault.name)] > 1 else handle
        target.set(Immediate(int(target.value) ^ (1 << fault.bit)))

    def _sample_detect(self):
        if self.detected is None and any(int(h.value) for h in self.detect):
            self.detected = self._cycle()

    async def run(self, fault: Fault | None = None) -> RunResult:
        await self._restore()
        events = set(self.changes)
        if self.outputs:
            events.update(int(c) for c in np.flatnonzero(self.observe))
        if fault is not None:
            events.add(fault.cycle)
        seen, cur = {}, 0
        for cycle in sorted(events):
            if cycle > cur:
                await Timer((cycle - cur) * PERIOD, "ps")
                cur = cycle
            if fault is not None and cycle == fault.cycle:
                self._flip(fault)
            for port, value in self.changes.get(cycle, {}).items():
                self.handles[port].set(Immediate(value))
            await ReadOnly()
            self._sample_detect()
            if self.outputs and self.observe[cycle]:
                seen[cycle] = tuple(int(self.handles[o].value) for o in self.outputs)
        await Timer((self.cycles - cur) * PERIOD, "ps")
        await ReadOnly()
        end = await self._complete()
        if self.complete is None:
            limit = self.cycles - 1  # without a completion port the run ends before sampling cycle ``cycles``
        else:
            limit = self.watchdog - 1 if end is None else end
        result = RunResult(seen, self.detected, end, limit, self._read_regions(), self.read_state())
        self.clock.stop()
        self.current, self.start = result.state, None
        return result

    async def _complete(self) -> int | None:
        """At the sampling point of ``cycles``: the cycle the run ends on (completion port high), None for HANG."""
        if self.complete is None:
            return self.cycles
        self._sample_detect()
        while not int(self.complete.value):
            deadline = self.start + self.watchdog * PERIOD
            if _now() >= deadline:
                return None
            await First(RisingEdge(self.complete), Timer(deadline - _now(), "ps"))
            await ReadOnly()
            self._sample_detect()
        end = self._cycle()
        return end if end < self.watchdog else None


def classify(golden: RunResult, faulty: RunResult) -> int:
    """Outcome code of ``faulty`` against ``golden`` (rules in the module docstring)."""
    bad = [c for c, values in faulty.outputs.items() if values != golden.outputs[c]]
    first_sdc = min(bad) if bad else None
    detected = faulty.detected is not None and faulty.detected <= faulty.detect_limit
    if detected and (first_sdc is None or faulty.detected <= first_sdc):
        return DETECTED_UNRECOVERABLE
    if first_sdc is not None:
        return SDC
    if faulty.end is None:
        return HANG
    if faulty.regions != golden.regions:
        return SDC
    return MASKED if faulty.state == golden.state else LATENT


@cocotb.test()
async def reference_injections(dut):
    case = np.load(os.environ["RAMPART_FI_CASE"], allow_pickle=True)
    replay = Replayer(dut, case)
    await replay.power_on()
    golden = await replay.run()
    if golden.detected is not None or golden.end != replay.cycles:
        raise AssertionError(f"fault-free run: detection at {golden.detected}, ended at {golden.end}")
    start = time.perf_counter()
    results = []
    faults = zip(case["names"], case["words"], case["bits"], case["fault_cycles"], strict=True)
    for name, word, bit, cycle in faults:
        faulty = await replay.run(Fault(str(name), int(word), int(bit), int(cycle)))
        results.append(classify(golden, faulty))
    np.savez(os.environ["RAMPART_FI_RESULT"], outcomes=np.array(results, dtype=np.uint8),
             seconds=np.array(time.perf_counter() - start))


# --------------------------------------------------------------------------------------------------------------------
# Host side

def reference_outcomes(build_, workload, sites, cycles, *, simulator: str = "icarus") -> tuple[np.ndarray, float]:
    """Outcome codes of the faults ``(sites[i], cycles[i])`` from the cocotb reference path, and its wall seconds.

    All faults run in one simulator process (see the module docstring); the wall time counts the fault runs only
    (not the build, start-up or golden run).
    """
    import tempfile
    from pathlib import Path

    from sim.cocotb_glue import run_cocotb

    sites = np.asarray(sites, dtype=np.int64)
    when = np.asarray(cycles, dtype=np.int64)
    if sites.shape != when.shape:
        raise RampartError("sites and cycles differ in length")
    if when.size and (when.min() < 0 or when.max() >= workload.cycles):
        raise RampartError(f"injection cycle out of range (0..{workload.cycles - 1})")
    names, words, bits = _decode(build_, sites)
    with tempfile.TemporaryDirectory() as tmp:
        case, result = Path(tmp) / "case.npz", Path(tmp) / "result.npz"
        np.savez(case, inputs=np.array(workload.inputs, dtype=object), cycles=np.array(workload.cycles),
                 observe=np.ones(workload.cycles, bool) if workload.observe is None else workload.observe,
                 outputs=np.array(workload.outputs, dtype=object),
                 input_ports=np.array([p.name for p in build_.ports if p.direction == "in"], dtype=object),
                 state_names=np.array([e.var for e in build_.state], dtype=object),
                 state_depths=np.array([e.depth for e in build_.state]),
                 state_widths=np.array([e.width for e in build_.state]),
                 memory=_object_array([(_var(build_, n), f, v) for n, f, v in workload.memory]),
                 regions=_object_array([(_var(build_, n), f, c) for n, f, c in workload.regions]),
                 complete=np.array(workload.complete or ""), detect=np.array(workload.detect, dtype=object),
                 watchdog=np.array(workload.watchdog_cycles),
                 names=names, words=words, bits=bits, fault_cycles=when)
        stamp = _forget_stale_simulator_build(build_, simulator)
        run_cocotb(build_.design, build_.config, "faultinj.cocotb_reference", test_dir=Path(tmp),
                   simulator=simulator, extra_env={"RAMPART_FI_CASE": str(case), "RAMPART_FI_RESULT": str(result)})
        stamp()
        data = np.load(result)
        return data["outcomes"], float(data["seconds"])


def _forget_stale_simulator_build(build_, simulator: str):
    """Remove the cached cocotb simulator build of ``build_`` unless it is stamped as made from its Verilog (a
    simulator build made from other Verilog was seen under a build folder; the runner's timestamps do not catch it).
    Returns the function that stamps the (re)made simulator build."""
    import fcntl
    import hashlib
    import shutil

    from sim.build import build
    from sim.cocotb_glue import cocotb_build_dir

    current = build(build_.design, build_.config)  # what run_cocotb will simulate
    if current.key != build_.key:
        raise RampartError(f"the {build_.design} sources changed since this build was made; build it again")
    folder = cocotb_build_dir(current, simulator)
    stamp = folder / "rampart_verilog.sha256"
    digest = hashlib.sha256(build_.verilog.read_bytes()).hexdigest()
    # under run_cocotb's lock, so a simulator build another process is running is never removed
    with open(current.directory / f".cocotb_{simulator}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.read_text() != digest:
            shutil.rmtree(folder, ignore_errors=True)
    return lambda: stamp.write_text(digest)


def _object_array(items: list) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _var(build_, hier_name: str) -> str:
    """A state element's flattened Verilog name from its hierarchical name (``top.extmem.storage``)."""
    for element in build_.state:
        if element.hier_name == hier_name:
            return element.var
    raise RampartError(f"no state element {hier_name!r} in the {build_.design} build")


def _decode(build_, sites: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global state-bit indices -> (flattened Verilog name, word, bit) arrays (the state map's order)."""
    sizes = np.array([e.width * e.depth for e in build_.state], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    if sites.size and (sites.min() < 0 or sites.max() >= offsets[-1]):
        raise RampartError(f"site out of range (0..{offsets[-1] - 1})")
    elements = np.searchsorted(offsets, sites, side="right") - 1
    widths = np.array([e.width for e in build_.state], dtype=np.int64)
    words, bits = np.divmod(sites - offsets[elements], widths[elements])
    names = np.array([build_.state[e].var for e in elements], dtype=object)
    return names, words, bits
