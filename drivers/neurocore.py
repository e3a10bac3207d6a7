"""Host driver of the UART-attached NeuroCore (:mod:`rtl.neurocore.uart_top`): numpy in, numpy out.

Three layers: a :class:`~drivers.transport.ByteTransport` (:class:`~drivers.transport.SimTransport` drives the
Verilated design's ``rx``/``tx`` pins through the native harness, :class:`~drivers.transport.SerialTransport` a real
port via pyserial), the protocol (:mod:`rtl.neurocore.protocol`: frames, CRC, ACK/NAK), and :class:`NeuroCoreHost`,
whose API mirrors :class:`models.snn.golden.GoldenCore` (set_weights, set_neuron_params, enable_stdp, run, weights,
membrane, ...).

Every command waits for its response, so no sleep pacing is ever needed; a NAK raises :class:`NakError`.

Also here: the encoders from the engine's register map to bus words (:func:`weight_words`, :func:`decode_words`,
:func:`neuron_field_values`, :func:`global_values`), shared with the engine's bus-level tests.
"""
from __future__ import annotations

import numpy as np

from base import RampartError
from drivers.transport import ByteTransport, ProtocolError
from models.snn.params import NeuronParams, ResetMode, StdpParams, SynapseParams, check_learnable
from rtl.neurocore.config import GlobalReg, NeuroCoreConfig, NeuronField, Region
from rtl.neurocore.protocol import (
    ID_BYTES,
    RSP_HEADER_BYTES,
    SYNC_RSP,
    VERSION,
    Op,
    Status,
    crc16,
    encode_frame,
    word_bytes,
)

__all__ = ["NakError", "NeuroCoreHost", "ProtocolError", "decode_words", "global_values", "neuron_field_values",
           "signed", "weight_words"]

# -- register-map encoders -----------------------------------------------------------------------------------------


def signed(value, bits: int):
    """Two's-complement ``bits``-bit values (int or int array, zero-extended) -> signed."""
    v = np.asarray(value, dtype=np.int64) & ((1 << bits) - 1)
    out = np.where(v >> (bits - 1), v - (1 << bits), v)
    return int(out) if out.ndim == 0 else out


def weight_words(cfg: NeuroCoreConfig, w: np.ndarray, mask: np.ndarray) -> list[int]:
    """(N+M, N) int8 weights and bool mask -> the (N+M)*K weight-memory words (Python ints: 9P may exceed 64)."""
    p = cfg.lanes
    wb = (np.asarray(w, dtype=np.int64) & 0xFF).reshape(-1, p)
    mb = np.asarray(mask, dtype=np.int64).reshape(-1, p)
    return [sum(int(wb[i, lane]) << (8 * lane) | int(mb[i, lane]) << (8 * p + lane) for lane in range(p))
            for i in range(wb.shape[0])]


def decode_words(cfg: NeuroCoreConfig, words) -> tuple[np.ndarray, np.ndarray]:
    """Weight-memory words -> ((rows, N) int64 weights, (rows, N) bool mask)."""
    p = cfg.lanes
    words = [int(word) for word in words]
    w = np.array([[(word >> (8 * lane)) & 0xFF for lane in range(p)] for word in words], dtype=np.int64)
    mask = np.array([[(word >> (8 * p + lane)) & 1 for lane in range(p)] for word in words], dtype=bool)
    w = np.where(w >= 128, w - 256, w)
    return w.reshape(-1, cfg.n_neurons), mask.reshape(-1, cfg.n_neurons)


_NEURON_PARAM_FIELDS = (("theta", NeuronField.THETA), ("v_reset", NeuronField.V_RESET),
                        ("v_rest", NeuronField.V_REST), ("bias", NeuronField.BIAS), ("d_v", NeuronField.D_V),
                        ("d_i", NeuronField.D_I), ("t_ref", NeuronField.T_REF))


def neuron_field_values(cfg: NeuroCoreConfig, params: NeuronParams) -> dict[NeuronField, np.ndarray]:
    """Per-neuron parameter registers (two's complement, masked to the field width) of broadcast ``params``."""
    p = params.broadcast(cfg.n_neurons)
    return {f: np.asarray(getattr(p, name), dtype=np.int64) & ((1 << cfg.field_width(f)[0]) - 1)
            for name, f in _NEURON_PARAM_FIELDS}


def global_values(stdp: StdpParams, synapses: SynapseParams, reset_mode: ResetMode, learn: bool) -> dict:
    """Every :class:`GlobalReg` register value (unsigned encoding)."""
    return {GlobalReg.W_EXP: synapses.w_exp, GlobalReg.D_X: stdp.d_x, GlobalReg.D_Y: stdp.d_y,
            GlobalReg.A_PRE: stdp.a_pre, GlobalReg.A_POST: stdp.a_post, GlobalReg.A_PLUS: stdp.a_plus,
            GlobalReg.A_MINUS: stdp.a_minus, GlobalReg.S_PLUS: stdp.s_plus, GlobalReg.S_MINUS: stdp.s_minus,
            GlobalReg.W_MIN: stdp.w_min & 0xFF, GlobalReg.W_MAX: stdp.w_max & 0xFF,
            GlobalReg.TRACE_MODE: int(stdp.trace_mode), GlobalReg.RESET_MODE: int(reset_mode),
            GlobalReg.LEARN: int(learn), GlobalReg.X_TAR: stdp.x_tar, GlobalReg.W_DECAY: stdp.w_decay,
            GlobalReg.THETA_PLUS: stdp.theta_plus, GlobalReg.D_THETA: stdp.d_theta,
            GlobalReg.THETA_PERIOD: stdp.theta_period}


# -- the core --------------------------------------------------------------------------------------------------------


class NakError(ProtocolError):
    """The core refused a command (``status`` is a :class:`rtl.neurocore.protocol.Status`)."""

    def __init__(self, op: int, status: int):
        self.op, self.status = op, status
        try:
            name = Status(status).name
        except ValueError:
            name = f"status {status}"
        super().__init__(f"command {op:#04x} NAKed: {name}")


class NeuroCoreHost:
    """The UART-attached core with :class:`~models.snn.golden.GoldenCore`'s host API.

    On construction it asks the core for its shape (``ID``). The host keeps copies of what only it writes
    (neuron and learning parameters, the plasticity mask); weights and state are always read from the core.

    Parameters
    ----------
    transport : ByteTransport
    timeout : float
        Seconds to wait for a response (a run allows ``timeout`` per ``steps_per_timeout`` steps more).
    """

    steps_per_timeout = 100

    def __init__(self, transport: ByteTransport, *, timeout: float = 1.0):
        if not isinstance(transport, ByteTransport):
            raise TypeError(f"transport must be a ByteTransport, not {transport!r}")
        self.transport = transport
        self.timeout = timeout
        ident = self.command(Op.ID)
        if len(ident) != ID_BYTES:
            raise ProtocolError(f"ID response of {len(ident)} bytes, expected {ID_BYTES}")
        self.version = ident[0]
        if self.version != VERSION:
            raise RampartError(f"the core speaks protocol version {self.version}, this host version {VERSION}: "
                               "rebuild the bitstream or the host")
        n, m = int.from_bytes(ident[1:3], "little"), int.from_bytes(ident[3:5], "little")
        self.config = NeuroCoreConfig(n, m, ident[5], ident[6])
        self.max_payload = int.from_bytes(ident[7:9], "little")
        self._neurons = NeuronParams().broadcast(n)
        self._synapses = SynapseParams()
        self._stdp = StdpParams()
        self._learn = False
        self._mask = np.zeros((self.config.n_sources, n), dtype=bool)

    # -- protocol ------------------------------------------------------------------------------------------------

    def command(self, op: Op, payload: bytes = b"", *, timeout: float | None = None) -> bytes:
        """Send one frame, wait for its response; returns the ACK payload or raises :class:`NakError`."""
        timeout = self.timeout if timeout is None else timeout
        self.transport.write(encode_frame(op, payload))
        head = self.transport.read(RSP_HEADER_BYTES, timeout)
        if len(head) < RSP_HEADER_BYTES:
            raise ProtocolError(f"no response to command {op:#04x} ({len(head)} bytes)")
        if head[0] != SYNC_RSP or head[1] != (int(op) | 0x80):
            raise ProtocolError(f"unexpected response header {head.hex()} to command {op:#04x}")
        length = int.from_bytes(head[3:5], "little")
        rest = self.transport.read(length + 2, timeout)
        if len(rest) < length + 2:
            raise ProtocolError(f"response to {op:#04x} truncated: {len(rest)} of {length + 2} bytes")
        if crc16(head[1:] + rest) != 0:
            raise ProtocolError(f"bad checksum in the response to {op:#04x}")
        if head[2] != Status.ACK:
            raise NakError(op, head[2])
        return rest[:length]

    def _write(self, op: Op, region: Region, start: int, values) -> None:
        """Write consecutive words, split into frames of at most ``max_payload`` bytes."""
        wb = word_bytes(self.config, region)
        values = [int(v) for v in values]
        per = (self.max_payload - 2) // wb
        for i in range(0, len(values), per):
            chunk = values[i:i + per]
            payload = (start + i).to_bytes(2, "little") + b"".join(v.to_bytes(wb, "little") for v in chunk)
            self.command(op, payload)

    def _read(self, op: Op, region: Region, start: int, count: int) -> list[int]:
        wb = word_bytes(self.config, region)
        per = 0xFFFF // wb
        out = []
        for i in range(0, count, per):
            n = min(per, count - i)
            data = self.command(op, (start + i).to_bytes(2, "little") + n.to_bytes(2, "little"))
            out += [int.from_bytes(data[j * wb:(j + 1) * wb], "little") for j in range(n)]
        return out

    def _neuron_index(self, field: NeuronField, neuron: int) -> int:
        return int(field) << self.config.neuron_bits | int(neuron)

    def write_globals(self, values: dict) -> None:
        for reg, value in sorted(values.items()):
            self._write(Op.WR_GLOBAL, Region.GLOBAL, int(reg), [value])

    def read_neuron_field(self, field: NeuronField, neurons=None) -> np.ndarray:
        """One neuron field (signed fields sign-extended) of all or of chosen neurons (one gather command)."""
        c = self.config
        bits, is_signed = c.field_width(NeuronField(field))
        if neurons is None:
            raw = self._read(Op.RD_NEURON, Region.NEURON, self._neuron_index(field, 0), c.n_neurons)
        else:
            idx = [int(i) for i in np.atleast_1d(neurons)]
            if any(not 0 <= i < c.n_neurons for i in idx):
                raise ValueError(f"neurons must be in 0..{c.n_neurons - 1}, not {idx!r}")
            raw = []
            per = self.max_payload // 2
            for i in range(0, len(idx), per):
                payload = b"".join(self._neuron_index(field, j).to_bytes(2, "little") for j in idx[i:i + per])
                data = self.command(Op.GATHER_NEURON, payload)
                raw += [int.from_bytes(data[4 * j:4 * j + 4], "little") for j in range(len(data) // 4)]
        arr = np.array(raw, dtype=np.int64) & ((1 << bits) - 1)
        return signed(arr, bits) if is_signed else arr

    # -- configuration (GoldenCore API) ---------------------------------------------------------------------------

    def set_weights(self, w, src0: int = 0) -> None:
        """Write rows ``src0 ..`` (all N columns) of int8 weights (the plasticity mask is kept)."""
        c = self.config
        block = np.asarray(w)
        if block.ndim != 2 or block.shape[1] != c.n_neurons:
            raise ValueError(f"weights must have shape (rows, {c.n_neurons}), not {block.shape}")
        if np.issubdtype(block.dtype, np.floating) or block.dtype == bool:
            raise TypeError(f"weights must be integers, not {block.dtype}")
        if block.size and (block.min() < -128 or block.max() > 127):
            raise ValueError(f"weights must be in -128..127, got {int(block.min())}..{int(block.max())}")
        if not 0 <= src0 <= c.n_sources - block.shape[0]:
            raise ValueError(f"weight rows {src0}..{src0 + block.shape[0] - 1} exceed the {c.n_sources} sources")
        mask = self._mask[src0:src0 + block.shape[0]]
        self._write(Op.WR_WEIGHT, Region.WEIGHT, src0 * c.groups, weight_words(c, block, mask))

    def set_plastic(self, mask, src0: int = 0) -> None:
        """Write rows of the plasticity mask (read-modify-write of the weight words: weights are kept)."""
        c = self.config
        block = np.asarray(mask)
        if block.ndim != 2 or block.shape[1] != c.n_neurons:
            raise ValueError(f"mask must have shape (rows, {c.n_neurons}), not {block.shape}")
        if block.dtype != bool and not np.all((block == 0) | (block == 1)):
            raise ValueError("mask must be boolean or 0/1")
        rows = block.shape[0]
        words = self._read(Op.RD_WEIGHT, Region.WEIGHT, src0 * c.groups, rows * c.groups)
        w, _ = decode_words(c, words)
        self._mask[src0:src0 + rows] = block.astype(bool)
        self._write(Op.WR_WEIGHT, Region.WEIGHT, src0 * c.groups, weight_words(c, w, self._mask[src0:src0 + rows]))

    def plastic(self) -> np.ndarray:
        return self._mask.copy()

    def set_neuron_params(self, params: NeuronParams | None = None, **fields) -> None:
        """Write the neuron registers (scalars broadcast); keywords change single fields, as in GoldenCore."""
        base = params if params is not None else self._neurons
        if fields:
            base = base.replace(**fields)
        new = base.broadcast(self.config.n_neurons)
        for f, values in neuron_field_values(self.config, new).items():
            self._write(Op.WR_NEURON, Region.NEURON, self._neuron_index(f, 0), values)
        self.write_globals({GlobalReg.RESET_MODE: int(new.reset_mode)})
        self._neurons = new

    def neuron_params(self) -> NeuronParams:
        return self._neurons

    def set_synapse_params(self, params: SynapseParams) -> None:
        self.write_globals({GlobalReg.W_EXP: params.w_exp})
        self._synapses = params

    def synapse_params(self) -> SynapseParams:
        return self._synapses

    def set_stdp_params(self, params: StdpParams) -> None:
        params.check_trace_bits(self.config.trace_bits)
        regs = global_values(params, self._synapses, self._neurons.reset_mode, self._learn)
        for first, last in ((GlobalReg.D_X, GlobalReg.TRACE_MODE), (GlobalReg.X_TAR, GlobalReg.THETA_PERIOD)):
            self._write(Op.WR_GLOBAL, Region.GLOBAL, int(first), [regs[GlobalReg(r)] for r in range(first, last + 1)])
        self._stdp = params

    def stdp_params(self) -> StdpParams:
        return self._stdp

    def enable_stdp(self, params: StdpParams | None = None, mask=None) -> None:
        """Turn learning on (optionally writing the STDP registers and the whole mask first); raises as GoldenCore
        does if nothing could be learned (all-zero mask, both gains zero)."""
        if params is not None:
            self.set_stdp_params(params)
        if mask is not None:
            self.set_plastic(mask)
        check_learnable(self._mask, self._stdp)
        self.command(Op.LEARN, b"\x01")
        self._learn = True

    def disable_stdp(self) -> None:
        self.command(Op.LEARN, b"\x00")
        self._learn = False

    @property
    def learning(self) -> bool:
        return self._learn

    def reset_state(self) -> None:
        """Soft reset: v <- v_rest; current, refractory, traces, pending spikes, counters, status <- 0 (the weights,
        the adaptive thresholds and the tick are learned state and survive, as in GoldenCore)."""
        self.command(Op.SOFT_RESET)

    # -- readback ------------------------------------------------------------------------------------------------

    def weights(self) -> np.ndarray:
        c = self.config
        w, mask = decode_words(c, self._read(Op.RD_WEIGHT, Region.WEIGHT, 0, c.n_sources * c.groups))
        self._mask = mask
        return w.astype(np.int8)

    def membrane(self, neurons=None) -> np.ndarray:
        return self.read_neuron_field(NeuronField.V, neurons)

    def current(self, neurons=None) -> np.ndarray:
        return self.read_neuron_field(NeuronField.I_SYN, neurons)

    def counts(self) -> np.ndarray:
        return self.read_neuron_field(NeuronField.COUNT)

    def adaptation(self, neurons=None) -> np.ndarray:
        """Adaptive threshold ``a`` per neuron (the effective threshold is ``theta + a``)."""
        return self.read_neuron_field(NeuronField.A, neurons)

    @property
    def tick(self) -> int:
        """Learning steps modulo ``2^theta_period`` (``a`` decays in the steps that start with ``tick == 0``)."""
        return self._read(Op.RD_GLOBAL, Region.GLOBAL, int(GlobalReg.TICK), 1)[0]

    def traces(self) -> tuple[np.ndarray, np.ndarray]:
        """(pre traces per source, post traces per neuron)."""
        c = self.config
        x = np.array(self._read(Op.RD_TRACE, Region.TRACE_X, 0, c.n_sources), dtype=np.int64)
        return x, self.read_neuron_field(NeuronField.Y)

    def status(self) -> tuple[int, int, int]:
        """(status bits: 0 OVF_I, 1 OVF_V, 8 busy; step counter; cycles of the last step)."""
        data = self.command(Op.STATUS)
        return tuple(int.from_bytes(data[4 * i:4 * i + 4], "little") for i in range(3))

    # -- running ---------------------------------------------------------------------------------------------------

    def run(self, steps: int, input_spikes=None) -> np.ndarray:
        """Run ``steps`` steps (``input_spikes[t, k]``: input k spikes in step t); returns the (steps, N) raster."""
        c = self.config
        steps = int(steps)
        if steps < 0:
            raise ValueError(f"steps must be >= 0, not {steps!r}")
        if input_spikes is None:
            inputs = None
        else:
            inputs = np.asarray(input_spikes)
            if inputs.shape != (steps, c.n_inputs):
                raise ValueError(f"input_spikes must have shape ({steps}, {c.n_inputs}), not {inputs.shape}")
            if inputs.dtype != bool and not np.all((inputs == 0) | (inputs == 1)):
                raise ValueError("input_spikes must be boolean or 0/1")
            inputs = np.packbits(inputs.astype(bool), axis=1, bitorder="little")
        in_bytes, ras_bytes = -(-c.n_inputs // 8), -(-c.n_neurons // 8)
        per = min((self.max_payload - 2) // in_bytes if inputs is not None else 0xFFFF, 0xFFFF // ras_bytes)
        raster = np.zeros((steps, c.n_neurons), dtype=bool)
        for t0 in range(0, steps, per):
            n = min(per, steps - t0)
            payload = n.to_bytes(2, "little")
            if inputs is not None:
                payload += inputs[t0:t0 + n].tobytes()
            data = self.command(Op.RUN, payload, timeout=self.timeout * (1 + n / self.steps_per_timeout))
            bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8).reshape(n, ras_bytes), axis=1,
                                 bitorder="little")
            raster[t0:t0 + n] = bits[:, :c.n_neurons].astype(bool)
        return raster
