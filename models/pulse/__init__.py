"""PulseDL-II front end and workload (numpy only): detector pulses through a DDS + ADC model, the Cramer-Rao bound,
classical estimators (least-squares template fit, digital CFD) and the 1-D CNN (numpy training, int8 / 16x8 TFLite
export) that the SoC runs.

* :mod:`models.pulse.frontend`: CR-RC^4 pulse shape, ADC, noise, baseline, seeded datasets;
* :mod:`models.pulse.crlb`: Fisher information of (t0, A, baseline) and the bound;
* :mod:`models.pulse.estimators`: least-squares template fit and digital CFD;
* :mod:`models.pulse.cnn`: the float CNN (forward, backward, Adam);
* :mod:`models.pulse.export`: TFLite quantisation (int8 or 16x8) and .tflite writing;
* :mod:`models.pulse.resolution`: time / energy resolution of every estimator vs SNR.
"""
