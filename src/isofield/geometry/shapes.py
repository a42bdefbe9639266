"""Analytic shapes with exact signed distance functions: known answers for tests, demos, benchmarks.

Every shape is a small frozen object with

- ``sdf(points)``: points (N, D) float -> (N,) float32 signed distance, negative inside
  (D = 3, or 2 for the planar shapes ``circle`` and ``Polygon``);
- ``gradient(points)``: (N, D) float32, the analytic gradient where it is easy (every shape
  here), otherwise central differences; on the medial axis, where the gradient is undefined,
  the analytic forms return one of the one-sided gradients or the zero vector;
- ``bounds``: (lo, hi), two (D,) float64 arrays of a box that contains the solid;
- ``name``; and calling the shape is the same as ``sdf``, so a shape is a field.

Distances are computed in float64 and returned as float32.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable, ClassVar, Sequence

import numpy as np

from isofield.errors import InputError

_CENTRAL_DIFFERENCE_STEP = 1e-5


class Shape(abc.ABC):
    """A solid given by its signed distance function (negative inside)."""

    name: str

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Number of coordinates of a point (2 or 3)."""

    @property
    @abc.abstractmethod
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi), each (dim,) float64: a box containing the solid."""

    @abc.abstractmethod
    def _distance(self, points: np.ndarray) -> np.ndarray:
        """Signed distance: points (N, dim) float64 -> (N,) float64."""

    def _gradient(self, points: np.ndarray) -> np.ndarray:
        """Gradient (N, dim) float64 of :meth:`_distance` by central differences (step 1e-5).

        Shapes with an analytic gradient override this.
        """
        steps = np.eye(self.dim) * _CENTRAL_DIFFERENCE_STEP
        differences = [self._distance(points + step) - self._distance(points - step) for step in steps]
        return np.stack(differences, axis=1) / (2 * _CENTRAL_DIFFERENCE_STEP)

    def sdf(self, points: np.ndarray) -> np.ndarray:
        """Signed distance (N,) float32 at points (N, dim)."""
        return self._distance(self._as_points(points)).astype(np.float32)

    def gradient(self, points: np.ndarray) -> np.ndarray:
        """Gradient of the signed distance, (N, dim) float32, at points (N, dim)."""
        return self._gradient(self._as_points(points)).astype(np.float32)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        return self.sdf(points)

    def _as_points(self, points: np.ndarray) -> np.ndarray:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != self.dim:
            raise InputError(f"shape {self.name!r} expects points of shape (N, {self.dim}), got {pts.shape}")
        return pts


# ----------------------------------------------------------------------------------- primitives


@dataclass(frozen=True)
class Sphere(Shape):
    """Ball of ``radius`` around ``center`` (3 coordinates; 2 coordinates make a disc)."""

    radius: float = 0.5
    center: tuple[float, ...] = (0.0, 0.0, 0.0)
    name: str = "sphere"

    def __post_init__(self) -> None:
        _require_positive(self.name, radius=self.radius)
        object.__setattr__(self, "center", _coordinates(self.name, "center", self.center))

    @property
    def dim(self) -> int:
        return len(self.center)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.center) - self.radius, np.asarray(self.center) + self.radius

    def _distance(self, points: np.ndarray) -> np.ndarray:
        return np.linalg.norm(points - self.center, axis=1) - self.radius

    def _gradient(self, points: np.ndarray) -> np.ndarray:
        return _unit(points - self.center)


@dataclass(frozen=True)
class Box(Shape):
    """Axis-aligned box of half edge lengths ``half_size``; edges rounded with ``rounding``.

    The rounded box is the set of points within ``rounding`` of the box shrunk by ``rounding``,
    so its outer size stays ``2 * half_size`` and its SDF stays exact.
    """

    half_size: tuple[float, ...] = (0.5, 0.5, 0.5)
    center: tuple[float, ...] = (0.0, 0.0, 0.0)
    rounding: float = 0.0
    name: str = "box"

    def __post_init__(self) -> None:
        half = _coordinates(self.name, "half_size", self.half_size)
        center = _coordinates(self.name, "center", self.center)
        if min(half) <= 0 or len(half) != len(center):
            raise InputError(f"{self.name}: half_size must be {len(center)} positive numbers, got {self.half_size!r}")
        if not 0 <= self.rounding < min(half):
            raise InputError(f"{self.name}: rounding must be in [0, smallest half size), got {self.rounding!r}")
        object.__setattr__(self, "half_size", half)
        object.__setattr__(self, "center", center)

    @property
    def dim(self) -> int:
        return len(self.center)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.center) - self.half_size, np.asarray(self.center) + self.half_size

    def _excess(self, points: np.ndarray) -> np.ndarray:
        """(N, dim): how far each |coordinate| lies beyond the shrunk (core) box's face."""
        return np.abs(points - self.center) - (np.asarray(self.half_size) - self.rounding)

    def _distance(self, points: np.ndarray) -> np.ndarray:
        excess = self._excess(points)
        outside = np.linalg.norm(np.maximum(excess, 0.0), axis=1)
        inside = np.minimum(excess.max(axis=1), 0.0)
        return outside + inside - self.rounding

    def _gradient(self, points: np.ndarray) -> np.ndarray:
        excess = self._excess(points)
        toward_nearest_face = np.eye(self.dim)[excess.argmax(axis=1)]
        outside = (excess.max(axis=1) > 0)[:, None]
        direction = np.where(outside, _unit(np.maximum(excess, 0.0)), toward_nearest_face)
        return direction * np.where(points >= self.center, 1.0, -1.0)


@dataclass(frozen=True)
class Torus(Shape):
    """Ring torus around the z axis through ``center``.

    The solid is the tube of ``minor_radius`` around the circle of ``major_radius`` in the xy plane.
    """

    major_radius: float = 0.6
    minor_radius: float = 0.25
    center: tuple[float, ...] = (0.0, 0.0, 0.0)
    name: str = "torus"

    def __post_init__(self) -> None:
        _require_positive(self.name, major_radius=self.major_radius, minor_radius=self.minor_radius)
        if self.minor_radius >= self.major_radius:
            raise InputError(f"{self.name}: minor_radius must be smaller than major_radius (a ring torus)")
        object.__setattr__(self, "center", _coordinates(self.name, "center", self.center, dim=3))

    @property
    def dim(self) -> int:
        return 3

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        outer = self.major_radius + self.minor_radius
        half = np.array([outer, outer, self.minor_radius])
        return np.asarray(self.center) - half, np.asarray(self.center) + half

    def _tube_offset(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit radial direction in the xy plane (N, 2) and offset from the core circle (N, 2) = (radial, z)."""
        local = points - self.center
        radial = np.linalg.norm(local[:, :2], axis=1)
        return _unit(local[:, :2]), np.stack([radial - self.major_radius, local[:, 2]], axis=1)

    def _distance(self, points: np.ndarray) -> np.ndarray:
        return np.linalg.norm(self._tube_offset(points)[1], axis=1) - self.minor_radius

    def _gradient(self, points: np.ndarray) -> np.ndarray:
        radial_direction, offset = self._tube_offset(points)
        along = _unit(offset)
        return np.column_stack([along[:, :1] * radial_direction, along[:, 1]])


@dataclass(frozen=True)
class Capsule(Shape):
    """Points within ``radius`` of the segment from ``a`` to ``b`` (2 or 3 coordinates)."""

    a: tuple[float, ...] = (-0.5, 0.0, 0.0)
    b: tuple[float, ...] = (0.5, 0.0, 0.0)
    radius: float = 0.25
    name: str = "capsule"

    def __post_init__(self) -> None:
        _require_positive(self.name, radius=self.radius)
        a = _coordinates(self.name, "a", self.a)
        b = _coordinates(self.name, "b", self.b, dim=len(a))
        if a == b:
            raise InputError(f"{self.name}: the segment ends a and b must differ (use a Sphere)")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)

    @property
    def dim(self) -> int:
        return len(self.a)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        ends = np.array([self.a, self.b])
        return ends.min(axis=0) - self.radius, ends.max(axis=0) + self.radius

    def _offset_from_segment(self, points: np.ndarray) -> np.ndarray:
        """(N, dim): point minus its closest point on the segment."""
        a, axis = np.asarray(self.a), np.subtract(self.b, self.a)
        t = np.clip((points - a) @ axis / (axis @ axis), 0.0, 1.0)
        return points - (a + t[:, None] * axis)

    def _distance(self, points: np.ndarray) -> np.ndarray:
        return np.linalg.norm(self._offset_from_segment(points), axis=1) - self.radius

    def _gradient(self, points: np.ndarray) -> np.ndarray:
        return _unit(self._offset_from_segment(points))


@dataclass(frozen=True)
class Polygon(Shape):
    """Planar simple polygon (vertices in order, either orientation); exact 2-D SDF (N, 2) -> (N,)."""

    vertices: tuple[tuple[float, float], ...]
    name: str = "polygon"

    def __post_init__(self) -> None:
        corners = np.asarray(self.vertices, dtype=np.float64)
        if corners.ndim != 2 or corners.shape[1] != 2 or len(corners) < 3 or not np.all(np.isfinite(corners)):
            raise InputError(f"{self.name}: vertices must be at least 3 finite (x, y) pairs")
        object.__setattr__(self, "vertices", tuple(map(tuple, corners.tolist())))

    @property
    def dim(self) -> int:
        return 2

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        corners = np.asarray(self.vertices)
        return corners.min(axis=0), corners.max(axis=0)

    def _edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Edge starts (E, 2) and edge vectors (E, 2), closing the loop."""
        starts = np.asarray(self.vertices)
        return starts, np.roll(starts, -1, axis=0) - starts

    def _offset_from_boundary(self, points: np.ndarray) -> np.ndarray:
        """(N, 2): point minus its closest boundary point."""
        starts, edges = self._edges()
        relative = points[:, None, :] - starts  # (N, E, 2)
        t = np.clip(np.einsum("nek,ek->ne", relative, edges) / np.einsum("ek,ek->e", edges, edges), 0.0, 1.0)
        offsets = relative - t[..., None] * edges
        nearest = np.einsum("nek,nek->ne", offsets, offsets).argmin(axis=1)
        return offsets[np.arange(len(points)), nearest]

    def _inside(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool by the even-odd rule: a ray towards +x crosses the boundary an odd number of times."""
        starts, edges = self._edges()
        y = points[:, 1:2]
        spans = (starts[:, 1] > y) != (starts[:, 1] + edges[:, 1] > y)  # (N, E), never horizontal edges
        t = np.divide(y - starts[:, 1], edges[:, 1], out=np.zeros(spans.shape), where=spans)
        crossings = spans & (starts[:, 0] + t * edges[:, 0] > points[:, :1])
        return crossings.sum(axis=1) % 2 == 1

    def _distance(self, points: np.ndarray) -> np.ndarray:
        distance = np.linalg.norm(self._offset_from_boundary(points), axis=1)
        return np.where(self._inside(points), -distance, distance)

    def _gradient(self, points: np.ndarray) -> np.ndarray:
        direction = _unit(self._offset_from_boundary(points))
        return np.where(self._inside(points)[:, None], -direction, direction)


# ------------------------------------------------------------------------------------------ CSG


@dataclass(frozen=True)
class _Combination(Shape):
    """Pointwise min (union) or max (intersection) of the children's signed distances."""

    children: tuple[Shape, ...]
    name: str = "combination"
    _choose: ClassVar[Callable[..., np.ndarray]]

    def __post_init__(self) -> None:
        children = tuple(self.children)
        if not children or any(child.dim != children[0].dim for child in children):
            raise InputError(f"{self.name}: needs at least one child shape, all of the same dimension")
        object.__setattr__(self, "children", children)

    @property
    def dim(self) -> int:
        return self.children[0].dim

    def _chosen(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Children's distances (K, N) and, per point, the index (N,) of the chosen child."""
        distances = np.stack([child._distance(points) for child in self.children])
        return distances, type(self)._choose(distances, axis=0)

    def _distance(self, points: np.ndarray) -> np.ndarray:
        distances, chosen = self._chosen(points)
        return distances[chosen, np.arange(len(points))]

    def _gradient(self, points: np.ndarray) -> np.ndarray:
        _, chosen = self._chosen(points)
        gradients = np.stack([child._gradient(points) for child in self.children])
        return gradients[chosen, np.arange(len(points))]


@dataclass(frozen=True)
class Union(_Combination):
    """Union, ``min`` of the children: exact outside; inside only a bound (|value| <= true distance)."""

    name: str = "union"
    _choose = staticmethod(np.argmin)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        los, his = zip(*(child.bounds for child in self.children))
        return np.min(los, axis=0), np.max(his, axis=0)


@dataclass(frozen=True)
class Intersection(_Combination):
    """Intersection, ``max`` of the children: exact inside; outside only a bound (|value| <= true distance)."""

    name: str = "intersection"
    _choose = staticmethod(np.argmax)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        los, his = zip(*(child.bounds for child in self.children))
        lo, hi = np.max(los, axis=0), np.min(his, axis=0)
        if np.any(lo > hi):
            raise InputError(f"{self.name}: the children's bounds do not overlap, the intersection is empty")
        return lo, hi


@dataclass(frozen=True)
class Complement(Shape):
    """Everything outside ``shape`` (SDF negated); unbounded, so meant for :func:`difference`."""

    shape: Shape
    name: str = "complement"

    @property
    def dim(self) -> int:
        return self.shape.dim

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.full(self.dim, -np.inf), np.full(self.dim, np.inf)

    def _distance(self, points: np.ndarray) -> np.ndarray:
        return -self.shape._distance(points)

    def _gradient(self, points: np.ndarray) -> np.ndarray:
        return -self.shape._gradient(points)


def difference(base: Shape, cut: Shape, name: str = "difference") -> Intersection:
    """``base`` minus ``cut``: ``max(base, -cut)``, exact inside, a bound outside.

    All CSG results stay 1-Lipschitz, so the "distance" criterion of sparse extraction is safe.
    """
    return Intersection((base, Complement(cut)), name=name)


# ----------------------------------------------------------------------------- named examples


def l_shape() -> Polygon:
    """The L-shape: the square [-0.5, 0.5]^2 without its upper-right quarter [0, 0.5]^2."""
    corners = ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.0), (0.0, 0.0), (0.0, 0.5), (-0.5, 0.5))
    return Polygon(corners, name="l_shape")


def csg_demo() -> Intersection:
    """The classic CSG picture: (rounded cube ∩ sphere) minus three axis-aligned cylinders."""
    body = Intersection((Box((0.55, 0.55, 0.55), rounding=0.08), Sphere(0.72)))
    drills = Union(
        tuple(Capsule(tuple(-1.2 * axis), tuple(1.2 * axis), 0.3) for axis in np.eye(3)),
        name="drills",
    )
    return difference(body, drills, name="csg")


_SHAPES: dict[str, Callable[[], Shape]] = {
    "sphere": lambda: Sphere(0.5),
    "box": lambda: Box((0.6, 0.4, 0.3)),
    "rounded_box": lambda: Box((0.6, 0.4, 0.3), rounding=0.1, name="rounded_box"),
    "torus": lambda: Torus(0.6, 0.25),
    "capsule": lambda: Capsule((-0.5, -0.2, -0.1), (0.5, 0.2, 0.1), 0.3),
    "csg": csg_demo,
    "circle": lambda: Sphere(0.5, center=(0.0, 0.0), name="circle"),
    "l_shape": l_shape,
}


def shape_names() -> list[str]:
    """Names accepted by :func:`get_shape`, sorted."""
    return sorted(_SHAPES)


def get_shape(name: str) -> Shape:
    """The named example shape (3-D ones fit in [-1, 1]^3; "circle" and "l_shape" are 2-D)."""
    if name not in _SHAPES:
        raise InputError(f"unknown shape {name!r}; known shapes: {', '.join(shape_names())}")
    return _SHAPES[name]()


def padded_bounds(shape: Shape, padding: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """A cube (lo, hi), each (dim,) float64, around ``shape.bounds``, ``padding`` x its longest side wider.

    Extract meshes on this rather than on ``shape.bounds``: there the surface touches the
    outermost samples (whether the mesh closes depends on the rounding of the SDF there) and
    the cells are stretched unless the bounds are a cube.
    """
    lo, hi = shape.bounds
    half = (0.5 + padding) * float(np.max(hi - lo))
    center = (lo + hi) / 2
    return center - half, center + half


# -------------------------------------------------------------------------------------- helpers


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows (N, D) scaled to unit length; zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def _coordinates(
    shape: str, argument: str, values: Sequence[float], dim: int | None = None
) -> tuple[float, ...]:
    """Validate a point-like argument (2 or 3 finite numbers, or exactly ``dim``) as floats."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.empty(0)
    allowed = (dim,) if dim else (2, 3)
    if array.ndim != 1 or len(array) not in allowed or not np.all(np.isfinite(array)):
        wanted = " or ".join(map(str, allowed))
        raise InputError(f"{shape}: {argument} must be {wanted} finite numbers, got {values!r}")
    return tuple(array.tolist())


def _require_positive(shape: str, **values: float) -> None:
    for argument, value in values.items():
        if not (np.isfinite(value) and value > 0):
            raise InputError(f"{shape}: {argument} must be a positive number, got {value!r}")
