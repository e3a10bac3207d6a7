"""Our own renderers over a neural field given as ``query(x) -> outputs`` (positions (N, D) in [0, 1)): pixel
lookup (2-D), sphere tracing with shading (SDF) and an emission-absorption ray marcher (density + colour).

The same function renders the analytic scene, the float network, the fixed-point golden model and the RTL; every
step after the queries is deterministic numpy, so equal query outputs give identical images. Images are float64
(size, size, 3) in [0, 1].
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["Query", "camera_rays", "box_interval", "pixel_centres", "ray_march", "render_pixels", "sphere_trace",
           "psnr"]

Query = Callable[[np.ndarray], np.ndarray]

#: Largest position a query may take (positions are quantised to 16-bit fractions of the unit cube).
_TOP = 1 - 2.0 ** -16


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, peak]; ``inf`` when identical."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


def pixel_centres(size: int) -> np.ndarray:
    """(size*size, 2) positions of the pixel centres, row-major, x[:, 0] the column and x[:, 1] the row."""
    c = (np.arange(size) + 0.5) / size
    col, row = np.meshgrid(c, c)
    return np.stack([col.ravel(), row.ravel()], axis=1)


def render_pixels(query: Query, size: int) -> np.ndarray:
    """2-D field of RGB: the first three outputs at every pixel centre, clipped to [0, 1]."""
    return np.clip(query(pixel_centres(size))[:, :3], 0, 1).reshape(size, size, 3)


def camera_rays(size: int, azimuth: float = 0.6, elevation: float = 0.45, distance: float = 1.9,
                fov_deg: float = 38.0) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole camera looking at the cube's centre: ray origins and unit directions, (size*size, 3) each, with
    dimension 1 up; image row 0 at the top."""
    centre = np.full(3, 0.5)
    eye = centre + distance * np.array([np.sin(azimuth) * np.cos(elevation), np.sin(elevation),
                                        np.cos(azimuth) * np.cos(elevation)])
    forward = (centre - eye) / np.linalg.norm(centre - eye)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    half = np.tan(np.radians(fov_deg) / 2)
    s = ((np.arange(size) + 0.5) / size * 2 - 1) * half
    sx, sy = np.meshgrid(s, -s)
    d = forward + sx.ravel()[:, None] * right + sy.ravel()[:, None] * up
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.broadcast_to(eye, d.shape).copy(), d


def box_interval(origin: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit distances of each ray through the unit cube (entry >= exit: the ray misses)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / direction
        a, b = (0.0 - origin) * inv, (1.0 - origin) * inv
    t0 = np.maximum(np.max(np.minimum(a, b), axis=1), 0.0)
    t1 = np.min(np.maximum(a, b), axis=1)
    return t0, t1


def _inside(p: np.ndarray) -> np.ndarray:
    return np.clip(p, 0.0, _TOP)


def _background(size: int) -> np.ndarray:
    rows = np.linspace(1.0, 0.8, size)[:, None, None]
    return np.broadcast_to(rows * np.array([0.93, 0.95, 1.0]), (size, size, 3)).reshape(-1, 3).copy()


def sphere_trace(sdf: Query, size: int, steps: int = 64, eps: float = 1e-3, step_factor: float = 0.9,
                 normal_h: float = 1 / 128, **camera) -> np.ndarray:
    """Sphere-trace the SDF (output 0) from the camera (every active ray's step is one batch of queries), shade hits
    by their normal (central differences of the same SDF: one batch of 6 queries per hit) under one light."""
    origin, direction = camera_rays(size, **camera)
    t, t_exit = box_interval(origin, direction)
    active = t < t_exit
    hit = np.zeros(len(t), bool)
    for _ in range(steps):
        idx = np.flatnonzero(active)
        if not idx.size:
            break
        s = sdf(_inside(origin[idx] + t[idx, None] * direction[idx]))[:, 0]
        done = s < eps
        hit[idx[done]] = True
        t[idx[~done]] += step_factor * s[~done]
        active[idx[done | (t[idx] >= t_exit[idx])]] = False
    image = _background(size)
    idx = np.flatnonzero(hit)
    if idx.size:
        p = origin[idx] + t[idx, None] * direction[idx]
        offsets = np.concatenate([np.eye(3), -np.eye(3)]) * normal_h
        values = sdf(_inside((p[None, :, :] + offsets[:, None, :]).reshape(-1, 3)))[:, 0].reshape(6, -1)
        normal = (values[:3] - values[3:]).T
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
        light = np.array([0.5, 0.8, 0.6]) / np.linalg.norm([0.5, 0.8, 0.6])
        diffuse = np.clip(normal @ light, 0, 1)[:, None]
        albedo = 0.55 + 0.4 * normal
        image[idx] = np.clip(albedo * (0.25 + 0.75 * diffuse), 0, 1)
    return image.reshape(size, size, 3)


def ray_march(field: Query, size: int, samples: int = 48, density_scale: float = 1.0, **camera) -> np.ndarray:
    """Emission-absorption volume rendering: ``samples`` midpoints per ray through the unit cube (all rays in one
    batch), density ``density_scale * max(output 0, 0)``, colour outputs 1..3 clipped to [0, 1], over the background."""
    origin, direction = camera_rays(size, **camera)
    t0, t1 = box_interval(origin, direction)
    image = _background(size)
    idx = np.flatnonzero(t0 < t1)
    if idx.size:
        length = t1[idx] - t0[idx]
        ts = t0[idx, None] + length[:, None] * (np.arange(samples) + 0.5) / samples
        p = origin[idx, None, :] + ts[..., None] * direction[idx, None, :]
        out = field(_inside(p.reshape(-1, 3))).reshape(len(idx), samples, -1)
        sigma = density_scale * np.maximum(out[..., 0], 0)
        rgb = np.clip(out[..., 1:4], 0, 1)
        alpha = 1 - np.exp(-sigma * (length / samples)[:, None])
        trans = np.cumprod(np.concatenate([np.ones((len(idx), 1)), 1 - alpha[:, :-1]], axis=1), axis=1)
        w = trans * alpha
        image[idx] = np.sum(w[..., None] * rgb, axis=1) + (1 - np.sum(w, axis=1))[:, None] * image[idx]
    return np.clip(image, 0, 1).reshape(size, size, 3)
