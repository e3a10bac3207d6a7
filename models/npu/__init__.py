"""NPU workloads: int8 .tflite builder, LiteRT reference runner, Vela raw compile, command-stream decoder.

See SPEC.md for what the hardware must implement to execute the streams Vela emits.
"""
