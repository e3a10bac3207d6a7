"""NGPC models: tiny-cuda-nn's multi-resolution grid encodings as a float reference (:mod:`.reference`) and the
engine's fixed-point golden model (:mod:`.golden`); geometry and formats in :mod:`.params`; the MLP (:mod:`.mlp`).
Applications: CPU training with Adam (:mod:`.train`), the GIA / NSDF / NeRF-lite scenes (:mod:`.scenes`; GIA's image
comes from scikit-learn, resized with Pillow), renderers (:mod:`.render`) and quantisation to the NFP's formats
(:mod:`.quantize`). numpy otherwise."""
