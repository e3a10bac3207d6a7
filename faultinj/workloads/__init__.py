"""Built-in fault-injection workloads, one module per design; each design's descriptor names its own."""
