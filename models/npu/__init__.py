"""NPU workloads: int8 .tflite builder, LiteRT reference runner, Vela raw compile, command-stream decoder, graph
analysis (useful MACs per layer, kicks grouped into Vela's layers).

See SPEC.md for what the hardware must implement to execute the streams Vela emits. Running a model on the NPU is
the driver's job (:mod:`drivers.npu`).
"""
