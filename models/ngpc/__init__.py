"""NGPC models: tiny-cuda-nn's multi-resolution grid encodings as a float reference (:mod:`.reference`) and the
engine's fixed-point golden model (:mod:`.golden`); geometry and formats in :mod:`.params`. numpy only."""
