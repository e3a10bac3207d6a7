"""NeuroCoreX-like spiking core: all-to-all LIF neurons, current-based synapses, on-chip STDP.

The semantics (fixed-point formats, update order) are specified by models/snn/params.py. :data:`DESCRIPTOR` is the
engine behind its host bus (``neurocore``: what fault injection and the golden model check); its fixture
``neurocore_uart`` is the same engine behind the framed UART protocol, the top that goes on a board.
"""
from rtl.designs import Design, Kind
from rtl.neurocore.config import PRESETS, NeuroCoreConfig
from rtl.neurocore.core import BLOCK_MAP, NeuroCore
from rtl.neurocore.uart_top import BLOCK_MAP as UART_BLOCK_MAP
from rtl.neurocore.uart_top import PRESETS as UART_PRESETS
from rtl.neurocore.uart_top import NeuroCoreUart, NeuroCoreUartConfig

__all__ = ["DESCRIPTOR", "NeuroCore", "NeuroCoreConfig", "NeuroCoreUart", "NeuroCoreUartConfig", "PRESETS"]

UART_TOP = Design(
    name="neurocore_uart",
    summary="NeuroCore engine behind a framed, CRC-checked 8N1 UART command protocol (ACK/NAK, streamed rasters)",
    kind=Kind.ACCELERATOR,
    config_type=NeuroCoreUartConfig,
    presets=UART_PRESETS,
    default="16x16",
    make=NeuroCoreUart,
    blocks=UART_BLOCK_MAP,
    board_adapter="rtl.neurocore.board:uart_adapter",
    golden="models.snn.golden:GoldenCore",
    driver="drivers.neurocore:NeuroCoreHost",
    system_model="models.system.neurocore:NeuroCoreAccelerator",
)

DESCRIPTOR = Design(
    name="neurocore",
    summary="NeuroCoreX-like SNN core engine: LIF neurons, int8 all-to-all weights, trace STDP, P lanes (host bus)",
    config_type=NeuroCoreConfig,
    presets=PRESETS,
    default="16x16",
    make=NeuroCore,
    blocks=BLOCK_MAP,
    workloads={"snn_pattern": "faultinj.workloads.neurocore:snn_pattern"},
    golden="models.snn.golden:GoldenCore",
    driver="drivers.neurocore:NeuroCoreHost",
    fixtures=(UART_TOP,),
)
