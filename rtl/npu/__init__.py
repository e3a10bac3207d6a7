"""Ethos-U55-class NPU that executes the register command streams Arm's Vela compiler emits (see models/npu/SPEC.md)."""
