"""Golden model of the NPU's TANH and SIGMOID activation functions (ACTIVATION function 3 / 4; int16 only): Vela 5.2
emits them for int16 TANH / LOGISTIC (a 1x1 AVERAGE POOL) and on the int16 LSTM's gate ADDs / MULs, with an OFM scale
that brings the value to units of 1 / 0x3000 (1 / (3 * 4096): Vela's ``generate_ofm_scaling_for_pooling`` /
``generate_scaling_for_elementwise``).

The function: a 256-entry table of ``sigmoid(i / 24)`` in unsigned 0.16 fixed point, linearly interpolated on the
value's magnitude and mirrored for negative values, tanh as ``2 * sigmoid(2x) - 1`` (the next index step is half as
wide); the output is Q0.15. This is the arithmetic of LiteRT's int16 reference kernels (``reference_integer_ops``
Tanh / Logistic with their ``sigmoid_table_uint16``), which Vela's scaling mirrors; :data:`SIGMOID_TABLE_U16` holds
that table's published values (source: TFLite's ``sigmoid_table_uint16``; they are not ``round(65536 * sigmoid(i /
24))`` everywhere: e.g. entries 4 and 8 are one higher). The hardware is :class:`rtl.npu.sigmoid_tanh.SigmoidTanhUnit`.
"""
__all__ = ["ACT_TANH", "ACT_SIGMOID", "SIGMOID_TABLE_U16", "sigmoid_tanh16"]

#: ACTIVATION[11:0] function codes (Vela ``ethos_u55_regs.activation``).
ACT_TANH, ACT_SIGMOID = 3, 4

#: sigmoid(i / 24) in unsigned 0.16 fixed point, i = 0..255.
SIGMOID_TABLE_U16 = (
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535,
)


def sigmoid_tanh16(v: int, tanh: bool) -> int:
    """The int16 Q0.15 result for ``v`` in units of 1 / 0x3000 (TANH if ``tanh``, else SIGMOID)."""
    frac_bits = 8 if tanh else 9
    a = abs(v)
    seg = a >> frac_bits
    if seg >= 255:
        r = 0xFFFF << 8 if tanh else 0x7FFF << 10
    else:
        lo, hi = SIGMOID_TABLE_U16[seg], SIGMOID_TABLE_U16[seg + 1]
        r = (lo << frac_bits) + (a & ((1 << frac_bits) - 1)) * (hi - lo)
    if tanh:
        r = r - (1 << 23) + (1 << 7) if v >= 0 else -r + (1 << 23) + (1 << 7) - 1
        return r >> 8
    r = r + (1 << 9) if v >= 0 else (1 << 25) - r + (1 << 9) - 1
    return r >> 10
