"""Host drivers: code that drives a simulated or real device, written once against a transport.

* :mod:`drivers.transport`: how a host reaches a device (a simulated device's ports and memories; a byte stream to
  a simulated UART or a real serial port);
* :mod:`drivers.npu`: the NPU's external-memory layout, load / start / wait / read back, ``run_on_npu``;
* :mod:`drivers.neurocore`: :class:`~drivers.neurocore.NeuroCoreHost`, the NeuroCore host API over its UART;
* :mod:`drivers.snn_demos`: the SNN application demos, on the golden model or on the RTL through the host API;
* :mod:`drivers.pynn`: a PyNN backend for the NeuroCore (golden, RTL or board) and the Brian2 comparison.

The layer sits above ``sim`` and below ``faultinj``: it may import ``base``, ``models``, ``rtl`` and ``sim``.
"""
