"""Protection transforms applied to functional blocks at the Amaranth level (the safety mechanisms of issue 14).

A **protection plan** maps a functional block (a name of the design's block map) to an :class:`Option`. A design
keeps its plan in its config (a frozen ``protection`` field, default empty: the unprotected design, netlist
unchanged) and applies it where the block's sub-Component is instantiated, through one generic wrapper,
:class:`Protected`: it takes a Component and has the same signature (its ports *are* the Component's port signals,
so every connection made to the Component still holds) plus ``sm_error`` and ``sm_corrected``:

* ``none`` and ``hardened``: no logic change (hardened flip-flops only scale FIT and flip-flop area by the factors
  of :mod:`faultinj.protection`); not wrapped at all, so the netlist is the unprotected one.
* ``dmr``: duplicate and compare. The Component itself plus one replica fed the same inputs; the Component's
  outputs go on, ``sm_error`` is high on any cycle where an output of the two differs (detect).
* ``tmr``: three replicas, every output bit a majority vote; ``sm_corrected`` is high on any cycle where a replica
  disagrees with another (the voter masked it: correct). ``sm_error`` stays low (a bitwise vote always decides).
* ``lockstep``: dual-core lockstep, ``dmr`` applied to the whole design top (:func:`lockstep`).

* ``parity`` / ``secded`` (:data:`MEMORY_OPTIONS`): the block's logic unchanged, every
  :class:`amaranth.lib.memory.Memory` inside its instance (through its helpers, e.g. a FIFO's storage) replaced by
  a :class:`~rtl.common.protect.memory.ProtectedMemory`: per-granule parity (detect: ``sm_error``) or SECDED
  (correct a single flip: ``sm_corrected``; detect a double: ``sm_error``), checked on every read and by a
  background scrubber (see :mod:`rtl.common.protect.memory`). Only :func:`protect_hierarchy` applies them.
  (:class:`rtl.common.sram.Sram` has the same codes as a configuration of its own.)

Replicas are deep copies of the Component made before it is elaborated (:func:`replica`): they get their own port
signals and state; only the control signals of Amaranth transforms around it (``ResetInserter(clear)``) stay shared.
Their instances are named ``protect_copy<i>``; :meth:`rtl.designs.Design.block_of` skips those names, so a
replica's state belongs to the block of the Component it copies and the descriptor's block map still works.

Errors reach the design's ports in two ways: a Module that instantiates its sub-Components itself calls
:func:`protect_submodules` (the MAC array); a design whose blocks sit deeper in the hierarchy calls
:func:`protect_hierarchy` once at its top (the NPU): it walks down to the planned instances as they are elaborated
and ORs every wrapper's ``sm_error`` / ``sm_corrected`` into the top's ports.
"""
import copy
import enum
import re
from collections.abc import Iterable, Mapping

from amaranth import Elaboratable, Fragment, Module, Signal, Value
from amaranth.hdl._ast import DUID
from amaranth.hdl._xfrm import TransformedElaboratable
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Option", "LOGIC_OPTIONS", "MEMORY_OPTIONS", "COPY_NAME", "is_copy_name", "normalise_plan",
           "has_error_ports", "Protected", "replica", "protect_submodules", "protect_hierarchy", "lockstep",
           "ERROR_PORTS"]


class Option(enum.StrEnum):
    """One protection option of a block (see the module docstring)."""

    NONE = "none"
    HARDENED = "hardened"
    DMR = "dmr"
    TMR = "tmr"
    PARITY = "parity"
    SECDED = "secded"
    LOCKSTEP = "lockstep"


#: Options any block's logic can take through :class:`Protected` (``hardened``: FIT/area factors only).
LOGIC_OPTIONS: tuple[Option, ...] = (Option.NONE, Option.HARDENED, Option.DMR, Option.TMR)
#: Options of a block's memories (:class:`~rtl.common.protect.memory.ProtectedMemory`, by :func:`protect_hierarchy`).
MEMORY_OPTIONS: tuple[Option, ...] = (Option.PARITY, Option.SECDED)
#: The options that change the netlist through :class:`Protected`.
_WRAPPED = frozenset({Option.DMR, Option.TMR})
_MEMORY = frozenset(MEMORY_OPTIONS)
#: The ports a protected design adds (detection, correction).
ERROR_PORTS = ("sm_error", "sm_corrected")

COPY_NAME = "protect_copy{}"
_COPY_RE = re.compile(r"protect_copy\d+")


def is_copy_name(name: str) -> bool:
    """True for the instance names of a :class:`Protected` wrapper's copies."""
    return _COPY_RE.fullmatch(name) is not None


def normalise_plan(plan) -> tuple[tuple[str, str], ...]:
    """A plan (mapping or pairs of block -> option name) as the sorted tuple a frozen config holds; ``none``
    entries are dropped (an empty plan is the unprotected design). Raises ValueError for an unknown option."""
    if plan is None:
        return ()
    items = plan.items() if isinstance(plan, Mapping) else plan
    out = {}
    for entry in items:
        try:
            block, option = entry
        except (TypeError, ValueError):
            raise ValueError(f"a protection plan entry is (block, option), not {entry!r}") from None
        if not isinstance(block, str) or not block:
            raise ValueError(f"a protection plan names blocks by string, not {block!r}")
        try:
            option = Option(option)
        except ValueError:
            raise ValueError(f"unknown protection option {option!r} for block {block!r} "
                             f"(options: {', '.join(o.value for o in Option)})") from None
        if block in out and out[block] != option:
            raise ValueError(f"block {block!r} has two protection options")
        if option is not Option.NONE:
            out[block] = option
    return tuple(sorted((b, o.value) for b, o in out.items()))


def has_error_ports(plan) -> bool:
    """Whether a design under ``plan`` has the :data:`ERROR_PORTS` (some block is wrapped, or the design is in
    lockstep); ``none`` / ``hardened`` alone leave the netlist as it is."""
    return any(Option(o) in (*_WRAPPED, *_MEMORY, Option.LOCKSTEP) for _, o in normalise_plan(plan))


def replica(component):
    """A fresh copy of a not-yet-elaborated Component: own ports and state. Amaranth transforms around it
    (``ResetInserter(clear)``, ...) are applied to the copy too, with the same (shared) control signals."""
    if isinstance(component, TransformedElaboratable):
        twin = TransformedElaboratable(replica(component._elaboratable_))
        twin._transforms_ = list(component._transforms_)
        return twin
    memo = {}
    # objects that forward attribute access (data.View, wiring.FlippedInterface, ...) break deepcopy's generic
    # reconstruction (it probes the half-built copy): copy those by their instance dictionaries
    forwarding = {type(v) for v in _walk(component) if hasattr(v, "__dict__") and not isinstance(v, enum.Enum)
                  and any("__getattr__" in vars(k) for k in type(v).__mro__)}
    dispatch = copy._deepcopy_dispatch
    saved = {t: dispatch[t] for t in forwarding if t in dispatch}
    dispatch.update(dict.fromkeys(forwarding, _copy_by_dict))
    try:
        twin = copy.deepcopy(component, memo)
    finally:
        for t in forwarding:
            dispatch.pop(t, None)
        dispatch.update(saved)
    # Amaranth identifies signals (and other design objects) by their DUID, which deepcopy copies: renumber
    for obj in memo.values():
        if isinstance(obj, DUID):
            obj.duid = DUID().duid
    # references to other components (e.g. a layout source) are copied too but never elaborated
    for value in _walk(twin):
        if isinstance(value, Elaboratable) and value is not twin:
            value._MustUse__silence = True
    return twin


def _copy_by_dict(obj, memo):
    twin = object.__new__(type(obj))
    memo[id(obj)] = twin
    twin.__dict__.update({k: copy.deepcopy(v, memo) for k, v in vars(obj).items()})
    return twin


def _walk(obj, seen=None):
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, str | bytes | int | float | type | Value):
        return
    seen.add(id(obj))
    yield obj
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, list | tuple | set | frozenset):
        children = list(obj)
    elif hasattr(obj, "__dict__"):
        children = list(vars(obj).values())
    else:
        children = []
    for child in children:
        yield from _walk(child, seen)


class Protected(Elaboratable):
    """``component`` under protection ``option``: the same signature plus ``sm_error`` and ``sm_corrected``.

    Its port members are the Component's own port signals (attribute access is forwarded to the Component), so
    connections made to the Component before or after wrapping hold. See the module docstring for the options.
    """

    def __init__(self, component, option: Option | str):
        self._component = component
        self._option = Option(option)
        if self._option not in LOGIC_OPTIONS:
            raise ValueError(f"option {self._option.value!r} is not a logic protection ({LOGIC_OPTIONS})")
        members = dict(component.signature.members.items())
        clash = set(members) & set(ERROR_PORTS)
        if clash:
            raise ValueError(f"component already has member(s) {', '.join(sorted(clash))}")
        self.signature = wiring.Signature({**members, "sm_error": Out(1), "sm_corrected": Out(1)})
        self.sm_error = Signal(name="sm_error")
        self.sm_corrected = Signal(name="sm_corrected")
        # replicas now, before anything elaborates the Component
        match self._option:
            case Option.DMR:
                self._copies = [component, replica(component)]
            case Option.TMR:
                self._copies = [replica(component) for _ in range(3)]
                for unused in _walk(component):    # only a bundle of port signals now
                    if isinstance(unused, Elaboratable):
                        unused._MustUse__silence = True
            case _:
                self._copies = [component]

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._component, name)

    @property
    def option(self) -> Option:
        return self._option

    def elaborate(self, platform):
        if self._option not in _WRAPPED:
            return self._component
        m = Module()
        for i, c in enumerate(self._copies):
            m.submodules[COPY_NAME.format(i)] = c
        sig = self._component.signature
        ports = [list(sig.flatten(c)) for c in [self._component, *self._copies]]
        mismatch = []
        for own, *copies in zip(*ports, strict=True):
            _, member, value = own
            values = [Value.cast(v) for _, _, v in copies]
            if member.flow == In:
                m.d.comb += [v.eq(Value.cast(value)) for (_, _, c), v in zip(copies, values, strict=True)
                             if c is not value]
            elif self._option is Option.DMR:
                mismatch.append(values[0] != values[1])
            else:
                a, b, c = values
                m.d.comb += Value.cast(value).eq((a & b) | (a & c) | (b & c))
                mismatch.append((a != b) | (a != c))
        flag = self.sm_error if self._option is Option.DMR else self.sm_corrected
        if mismatch:
            m.d.comb += flag.eq(_any(mismatch))
        return m


def _any(values: Iterable) -> Value:
    result = None
    for v in values:
        result = v if result is None else result | v
    return result if result is not None else Value.cast(0)


def _plan_options(plan) -> dict[str, Option]:
    return {k: Option(v) for k, v in (plan.items() if isinstance(plan, Mapping) else plan)}


def protect_submodules(m: Module, plan) -> tuple[Value, Value]:
    """Wrap the named submodules of ``m`` that ``plan`` (instance name -> option) protects in :class:`Protected`;
    returns the OR of their ``sm_error`` and of their ``sm_corrected`` (constant 0 when nothing is wrapped).

    Call it after the submodules were added and before ``m`` is returned from ``elaborate``.
    """
    wrappers = []
    named = m._named_submodules   # Amaranth 0.5: name -> (elaboratable, src_loc)
    for name, option in _plan_options(plan).items():
        if option not in _WRAPPED:
            continue
        if name not in named:
            raise ValueError(f"no submodule {name!r} to protect (have: {', '.join(named)})")
        sub, src_loc = named[name]
        wrapper = Protected(sub, option)
        named[name] = (wrapper, src_loc)
        wrappers.append(wrapper)
    return _any(w.sm_error for w in wrappers), _any(w.sm_corrected for w in wrappers)


class _Collector(Elaboratable):
    """Added last to the top Module: elaborated after every wrapper, it ORs their flags into the top's ports."""

    def __init__(self, error: Signal, corrected: Signal):
        self.error, self.corrected = error, corrected
        self.wrappers: list[Protected] = []

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.error.eq(_any(w.sm_error for w in self.wrappers)),
                     self.corrected.eq(_any(w.sm_corrected for w in self.wrappers))]
        return m


class _Around(Elaboratable):
    """Stands in for ``self._inner`` (its attributes read through) and elaborates it in place."""

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def _elaborate_inner(self, platform):
        self._inner._MustUse__used = True   # elaborated here, not through Fragment.get
        return self._inner.elaborate(platform)


class _Scope(_Around):
    """Elaborates ``inner`` and protects the planned instances below it (paths relative to it)."""

    def __init__(self, inner, plan: dict[str, Option], collector: _Collector, where: str):
        self._inner, self._plan, self._collector, self._where = inner, plan, collector, where

    def elaborate(self, platform):
        m = self._elaborate_inner(platform)
        if not isinstance(m, Module):
            raise ValueError(f"cannot protect instances inside {self._where}: it is not elaborated as a Module "
                             "(protect the whole instance instead)")
        _protect_module(m, self._plan, self._collector, self._where)
        return m


def _protect_module(m: Module, plan: dict[str, Option], collector: _Collector, where: str):
    named = m._named_submodules
    heads = {path.split(".")[0] for path in plan}
    missing = sorted(heads - set(named))
    if missing:
        collector._MustUse__silence = True   # the design is not built: no unused-elaboratable warning on top
        raise ValueError(f"no instance {where + '.' if where else ''}{missing[0]} to protect")
    for name in heads:
        sub, src_loc = named[name]
        below = {p[len(name) + 1:]: o for p, o in plan.items() if p.startswith(name + ".")}
        if name in plan and below:
            raise ValueError(f"protection of {where + '.' if where else ''}{name} overlaps {', '.join(below)}")
        if name in plan and plan[name] in _MEMORY:
            named[name] = (_protect_memories(sub, plan[name], collector), src_loc)
        elif name in plan:
            wrapper = Protected(sub, plan[name])
            collector.wrappers.append(wrapper)
            named[name] = (wrapper, src_loc)
        else:
            named[name] = (_scope(sub, below, collector, f"{where}.{name}" if where else name), src_loc)


def _scope(sub, plan: dict[str, Option], collector: _Collector, where: str):
    """A :class:`_Scope` around ``sub``; inside the transforms (``ResetInserter``, ...) wrapped around it."""
    if isinstance(sub, TransformedElaboratable):
        outer = TransformedElaboratable(_scope(sub._elaboratable_, plan, collector, where))
        outer._transforms_ = list(sub._transforms_)
        sub._MustUse__silence = True   # replaced by ``outer``
        return outer
    return _Scope(sub, plan, collector, where)


def protect_hierarchy(m: Module, plan, error: Signal, corrected: Signal):
    """Protect instances anywhere below the top Module ``m`` (``plan``: dotted instance path -> option, e.g.
    ``{"compute.mac.acc": "tmr", "shram": "secded"}``; a memory option codes every memory inside the instance)
    and drive ``error`` / ``corrected`` with the OR of every wrapper's flags.

    The one hook of a hierarchical design: call it at the end of the top's ``elaborate``. Instances on the way down
    must elaborate to a :class:`~amaranth.hdl.Module` (possibly behind transforms such as ``ResetInserter``).
    """
    plan = {k: o for k, o in _plan_options(plan).items() if o in _WRAPPED | _MEMORY}
    collector = _Collector(error, corrected)
    _protect_module(m, plan, collector, "")
    m.submodules.protect_errors = collector


class _MemoryScope(_Around):
    """Elaborates ``inner`` and puts every Memory below it under ``option`` (:class:`ProtectedMemory`)."""

    def __init__(self, inner, option: Option, collector: _Collector):
        self._inner, self._option, self._collector = inner, option, collector

    def elaborate(self, platform):
        m = self._elaborate_inner(platform)
        if isinstance(m, Module):
            named = m._named_submodules
            for name, (sub, src_loc) in list(named.items()):
                named[name] = (_protect_memories(sub, self._option, self._collector), src_loc)
            m._anon_submodules = [(_protect_memories(sub, self._option, self._collector), src_loc)
                                  for sub, src_loc in m._anon_submodules]
        return m


def _protect_memories(sub, option: Option, collector: _Collector):
    """``sub`` with its memories (or itself, if it is one) under ``option``."""
    from amaranth.lib.memory import Memory

    from rtl.common.protect.memory import ProtectedMemory
    from rtl.common.sram import Protection

    if isinstance(sub, Memory):
        protected = ProtectedMemory(sub, Protection(option.value))
        collector.wrappers.append(protected)
        return protected
    if isinstance(sub, TransformedElaboratable):
        outer = TransformedElaboratable(_protect_memories(sub._elaboratable_, option, collector))
        outer._transforms_ = list(sub._transforms_)
        sub._MustUse__silence = True   # replaced by ``outer``
        return outer
    if isinstance(sub, Elaboratable) and not isinstance(sub, Fragment):
        return _MemoryScope(sub, option, collector)
    return sub


def lockstep(component) -> Protected:
    """Dual-core lockstep: the whole ``component`` duplicated and compared at its ports (``sm_error``)."""
    return Protected(component, Option.DMR)
