"""SimPy system model: the SoC around the accelerators (host CPU, shared external memory / AXI, accelerators as
timed resources), calibrated against RTL cycle counts and far faster than the RTL simulation.

* :mod:`models.system.soc`: the processes (``SharedMemory``, ``Accelerator``, ``Host``);
* :mod:`models.system.npu_ops` / :mod:`models.system.npu_cost` / :mod:`models.system.npu`: the NPU: its ops read
  from a Vela command stream, the fitted per-op cost model (coefficients in ``npu_costs.json``, refit with
  ``python benchmarks/system_model.py``), the accelerator and ``predict_npu`` / ``sweep_npu``;
* :mod:`models.system.neurocore`: the NeuroCore's exact cycles per step and its UART link;
* :mod:`models.system.ngpc`: the NGPC cluster beside a GPU (RTL-calibrated throughput and latency, the paper's
  application-time breakdown) and the 8-64 scaling study (``rampart ngpc scaling``).

A new accelerator plugs in as an ``Accelerator`` subclass named by its design descriptor's ``system_model``.
"""
