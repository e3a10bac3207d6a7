"""The three scenes rendered through the NGPC: what each network is trained on and how it is rendered.

* ``gia`` (gigapixel-image-style 2-D fit): scikit-learn's bundled ``china.jpg`` (no network access needed), its
  central 427 x 427 square resized to 256 x 256; the target at a position is the bilinear interpolation of that
  image; outputs RGB (3 of the MLP's 16). Rendered by looking up every pixel centre.
* ``nsdf``: the signed distance to a torus (axis tilted 50 degrees towards the camera) united with a rounded box,
  in the unit cube; output the SDF (1 of 16). Rendered by sphere tracing with normal shading
  (:func:`models.ngpc.render.sphere_trace`).
* ``nerf`` (NeRF-lite / NVR: a density + colour volume fitted directly, rendered by our own ray marcher): three
  soft spheres with striped colours; outputs occupancy - 0.05 (density = 40 * max(output, 0)) and RGB (4 of 16).
  Rendered by :func:`models.ngpc.render.ray_march`.

Each :class:`Scene` gives its sampler (training positions and targets), the analytic field (``truth``) and
``render(query, size)``; the ground-truth image is ``render(truth, size)``.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache

import numpy as np

from models.ngpc.render import Query, ray_march, render_pixels, sphere_trace

__all__ = ["SCENES", "Scene", "trained_field"]


@dataclass(frozen=True)
class Scene(ABC):
    """A training target: ground truth at points in the unit cube and a renderer for a trained field."""

    name: str
    dims: int
    outputs: int
    preset: str                      #: default ``ngpc_nfp`` preset
    steps: int                       #: default training steps
    batch: int
    summary: str
    version: int = 1                 #: bumped when the scene changes (part of the training cache key)

    @abstractmethod
    def truth(self, x: np.ndarray) -> np.ndarray:
        """Target values (n, outputs) at points x (n, dims) in [0, 1)."""

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.random((n, self.dims))
        return x, self.truth(x)

    @abstractmethod
    def render(self, query: Query, size: int) -> np.ndarray:
        """A size x size image of the field answered by ``query``."""


@cache
def _china(side: int = 256) -> np.ndarray:
    from PIL import Image
    from sklearn.datasets import load_sample_image

    image = load_sample_image("china.jpg")
    h, w, _ = image.shape
    top, left = (h - min(h, w)) // 2, (w - min(h, w)) // 2
    square = Image.fromarray(image[top:top + min(h, w), left:left + min(h, w)])
    return np.asarray(square.resize((side, side), Image.LANCZOS), dtype=np.float64) / 255


class Gia(Scene):
    def truth(self, x):
        image = _china()
        side = image.shape[0]
        col, row = (np.asarray(x, np.float64) * side - 0.5).T
        c0, r0 = np.floor(col), np.floor(row)
        fc, fr = (col - c0)[:, None], (row - r0)[:, None]
        c0, r0 = c0.astype(int), r0.astype(int)

        def at(r, c):
            return image[np.clip(r, 0, side - 1), np.clip(c, 0, side - 1)]

        return ((1 - fr) * ((1 - fc) * at(r0, c0) + fc * at(r0, c0 + 1))
                + fr * ((1 - fc) * at(r0 + 1, c0) + fc * at(r0 + 1, c0 + 1)))

    def render(self, query, size):
        return render_pixels(query, size)


def _torus_box(p: np.ndarray) -> np.ndarray:
    q = np.asarray(p, np.float64) - 0.5
    c, s = np.cos(np.radians(50)), np.sin(np.radians(50))
    x, y, z = q[:, 0], c * q[:, 1] + s * q[:, 2], c * q[:, 2] - s * q[:, 1]      # axis (0, cos 50, sin 50)
    torus = np.hypot(np.hypot(x, z) - 0.27, y) - 0.075
    d = np.abs(q - np.array([0.0, 0.02, 0.0])) - 0.11
    box = np.linalg.norm(np.maximum(d, 0), axis=1) + np.minimum(np.max(d, axis=1), 0) - 0.02
    return np.minimum(torus, box)


class Nsdf(Scene):
    def truth(self, x):
        return _torus_box(x)[:, None]

    def sample(self, rng, n):
        """Half uniform in the cube, half within 0.04 of the surface (rejection sampling)."""
        uniform = rng.random((n - n // 2, 3))
        near = np.empty((0, 3))
        while len(near) < n // 2:
            c = rng.random((4 * n, 3))
            near = np.concatenate([near, c[np.abs(_torus_box(c)) < 0.04]])
        x = np.concatenate([uniform, near[:n // 2]])
        return x, self.truth(x)

    def render(self, query, size):
        return sphere_trace(query, size)


_BLOBS = (((0.36, 0.42, 0.52), 0.17, (0.92, 0.35, 0.22)),
          ((0.66, 0.44, 0.42), 0.14, (0.20, 0.55, 0.92)),
          ((0.50, 0.70, 0.62), 0.12, (0.30, 0.85, 0.35)))
_DENSITY_SCALE = 40.0
_EMPTY = 0.05


def _volume(p: np.ndarray) -> np.ndarray:
    """(occupancy - 0.05, r, g, b): soft spheres (occupancy in [0, 1], edge width 0.01), colour of the nearest
    sphere, striped. Density is ``40 * max(output 0, 0)``: empty space sits 0.05 below zero, so the network's small
    errors there give no density (no haze)."""
    p = np.asarray(p, np.float64)
    gaps = np.stack([np.linalg.norm(p - c, axis=1) - r for c, r, _ in _BLOBS], axis=1)
    density = np.sum(1 / (1 + np.exp(np.clip(gaps / 0.01, -50, 50))), axis=1)
    colour = np.array([rgb for _, _, rgb in _BLOBS])[np.argmin(gaps, axis=1)]
    stripes = 0.8 + 0.2 * np.sin(2 * np.pi * 6 * (p[:, 0] + p[:, 1] + p[:, 2]))
    return np.concatenate([np.minimum(density, 1)[:, None] - _EMPTY, colour * stripes[:, None]], axis=1)


class NerfLite(Scene):
    def truth(self, x):
        return _volume(x)

    def sample(self, rng, n):
        """Half uniform in the cube, half in the spheres' shells (up to 1.3 radii from a centre)."""
        uniform = rng.random((n - n // 2, 3))
        which = rng.integers(0, len(_BLOBS), n // 2)
        centres = np.array([c for c, _, _ in _BLOBS])[which]
        radii = np.array([r for _, r, _ in _BLOBS])[which]
        direction = rng.normal(size=(n // 2, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        near = np.clip(centres + direction * (1.3 * radii * rng.random(n // 2))[:, None], 0, 1 - 2.0 ** -16)
        x = np.concatenate([uniform, near])
        return x, self.truth(x)

    def render(self, query, size):
        return ray_march(query, size, density_scale=_DENSITY_SCALE)


SCENES: dict[str, Scene] = {
    "gia": Gia("gia", 2, 3, "gia2d-w64", 400, 1 << 13,
               "scikit-learn's china.jpg (central square, 256 x 256) fitted by a 2-D hash grid + MLP"),
    "nsdf": Nsdf("nsdf", 3, 1, "scene3d-w32", 400, 1 << 13,
                 "signed distance of a tilted torus united with a rounded box, sphere-traced", version=2),
    "nerf": NerfLite("nerf", 3, 4, "scene3d-w32", 600, 1 << 13,
                     "density + colour volume of three striped soft spheres, ray-marched (NeRF-lite / NVR)"),
}


#: Bump when training changes in a way that invalidates cached parameters.
TRAIN_VERSION = 2


def trained_field(scene: Scene, config, steps: int | None = None, seed: int = 0, log=None):
    """The float network of ``scene`` for the NFP ``config`` (an :class:`rtl.ngpc.nfp.NfpConfig`), trained with
    :func:`models.ngpc.train.fit` or loaded from the cache (``<cache>/ngpc/<scene>-<key>.npz``, keyed by everything
    the training depends on). Returns ``(network, losses, cpu_seconds, cached)``."""
    import hashlib

    from base import cache_root
    from models.ngpc.train import NeuralField, fit, init_field

    enc, mlp = config.encoder, config.mlp
    if enc.dims != scene.dims:
        raise ValueError(f"scene {scene.name} is {scene.dims}-D, the NFP's encoder {enc.dims}-D")
    if mlp.outputs < scene.outputs:
        raise ValueError(f"scene {scene.name} needs {scene.outputs} outputs, the MLP has {mlp.outputs}")
    steps = scene.steps if steps is None else steps
    grid = enc.grid_config
    key = repr((TRAIN_VERSION, scene, grid, mlp.width, mlp.hidden_layers, steps, seed))
    path = cache_root() / "ngpc" / f"{scene.name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"
    if path.exists():
        data = np.load(path)
        tables = [data[f"table_{i}"] for i in range(enc.levels)]
        weights = [data[f"weight_{k}"] for k in range(mlp.hidden_layers + 1)]
        return NeuralField(grid, tables, weights), list(data["losses"]), float(data["seconds"]), True
    rng = np.random.default_rng(seed)
    net = init_field(grid, mlp.width, mlp.hidden_layers, scene.outputs, rng)
    result = fit(net, scene.sample, steps, scene.batch, rng, log=log)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    arrays = {f"table_{i}": t for i, t in enumerate(net.tables)} | {f"weight_{k}": w for k, w in enumerate(net.weights)}
    np.savez(tmp, losses=np.array(result.losses), seconds=result.seconds, **arrays)
    os.replace(tmp, path)
    return net, result.losses, result.seconds, False
