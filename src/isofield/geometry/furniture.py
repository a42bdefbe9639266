"""Procedural furniture: parametric chairs and tables built as CSG trees of the analytic shapes.

A family is a dataclass of parameters (continuous ranges plus a few discrete style switches)
with ``sample(rng)`` and ``shape()``; :func:`family_shape` gives shape ``index`` of a family,
deterministic per ``(seed, index)``, so that shape ``i`` is the same whatever the number made.
This gives tests and demos a smooth shape space (like ShapeNet's chairs) without downloads.

Parameters are in metres, in a frame with the floor at ``y = 0``, ``y`` up, the furniture
centred on the ``y`` axis and (for chairs) facing ``+z``. :meth:`shape` maps that frame to model
units by a fixed per-family scale and floor height (``CHAIR_FRAME``, ``TABLE_FRAME``), so every
piece fits roughly in ``[-1, 1]^3`` (ShapeNet's convention: ``y`` up, front ``+z``). Every part
is at least ~2.5% of the piece's size thick, and parts overlap where they join, so a mesh at
resolution 128 is one watertight connected component. Sampled floats are rounded to 0.1 mm, so
the parameters as written to JSON rebuild exactly the same shape (``ChairParameters(**d)``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar, Sequence

import numpy as np

from isofield.errors import InputError
from isofield.geometry.shapes import Box, Capsule, Complement, Intersection, Shape, Sphere, Union

LEG_STYLES = ("square", "round")
CHAIR_BASES = ("legs", "swivel")
BACK_STYLES = ("solid", "slats", "rails")
TABLE_TOPS = ("rectangle", "round")
TABLE_BASES = ("legs", "pedestal")

# Smallest gap left between slats or rails of a chair back (metres): narrower gaps would close up
# in a mesh at resolution 128.
_MIN_GAP = 0.03
# Curvature (1/m) below which a chair back counts as flat (its arc gets this curvature).
_MIN_CURVATURE = 0.02
# How far parts reach below the floor before the floor plane cuts them flat (metres).
_BELOW_FLOOR = 0.05

Point = tuple[float, float, float]


@dataclass(frozen=True)
class Frame:
    """Maps metres (floor at ``y = 0``) to model units: ``x_model = scale * x + (0, floor, 0)``."""

    scale: float
    floor: float

    def point(self, x: float, y: float, z: float) -> Point:
        """A point in model units."""
        return (x * self.scale, self.floor + y * self.scale, z * self.scale)

    def box(self, lo: Sequence[float], hi: Sequence[float], rounding: float = 0.0) -> Box:
        """Axis-aligned box between corners ``lo`` and ``hi`` (metres), edges rounded by ``rounding``."""
        lo_, hi_ = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        half = tuple(((hi_ - lo_) / 2 * self.scale).tolist())
        return Box(half, self.point(*((lo_ + hi_) / 2)), rounding * self.scale)

    def capsule(self, a: Sequence[float], b: Sequence[float], radius: float) -> Capsule:
        """Points within ``radius`` of the segment ``a``-``b`` (metres)."""
        return Capsule(self.point(*a), self.point(*b), radius * self.scale)

    def sphere(self, center: Sequence[float], radius: float) -> Sphere:
        return Sphere(radius * self.scale, self.point(*center))

    def cylinder(self, center_x: float, center_z: float, y_range: tuple[float, float], radius: float) -> Intersection:
        """Vertical cylinder (flat ends) of ``radius`` around ``(center_x, center_z)`` over ``y_range``."""
        bottom, top = y_range
        axis = self.capsule((center_x, bottom - radius, center_z), (center_x, top + radius, center_z), radius)
        slab = self.box((center_x - radius, bottom, center_z - radius), (center_x + radius, top, center_z + radius))
        return Intersection((axis, slab), name="cylinder")

    def standing(self, parts: Sequence[Shape], name: str) -> Intersection:
        """Union of ``parts`` cut flat at the floor (parts may reach below it)."""
        body = Union(tuple(parts), name=f"{name}_parts")
        lo, hi = body.bounds
        margin = 0.1
        above_floor = Box(
            ((hi[0] - lo[0]) / 2 + margin, (hi[1] - self.floor) / 2 + margin, (hi[2] - lo[2]) / 2 + margin),
            ((lo[0] + hi[0]) / 2, (hi[1] + self.floor) / 2 + margin, (lo[2] + hi[2]) / 2),
        )
        return Intersection((body, above_floor), name=name)


CHAIR_FRAME = Frame(scale=1.8, floor=-0.95)
TABLE_FRAME = Frame(scale=1.2, floor=-0.47)


# ------------------------------------------------------------------------------------- chairs


@dataclass(frozen=True)
class ChairParameters:
    """A chair (metres, floor at y = 0, facing +z).

    Attributes:
        seat_width, seat_depth: seat extent along x and z.
        seat_height: height of the seat's top face.
        seat_thickness: seat slab thickness.
        seat_rounding: rounding of the seat's edges, as a fraction of half its thickness.
        base: "legs" (four legs) or "swivel" (a column on a five-spoke star with casters).
        leg_style: "square" (boxes) or "round" (rods; may splay outward).
        leg_thickness: leg side or diameter (also sets the swivel column).
        leg_inset: how far legs sit inside the seat's edges.
        leg_splay: outward offset of each round leg's foot along x and along z (0 for square legs).
        stretchers: H-shaped stretchers between the legs (never on a swivel base).
        stretcher_height: height of the stretchers' axis.
        back_style: "solid" panel, vertical "slats" or horizontal "rails" between two posts.
        back_bars: number of slats or rails (fitted so that gaps stay >= 3 cm).
        back_height: height of the back above the seat.
        back_width: back width as a fraction of the seat width.
        back_thickness: panel / slat / post thickness.
        back_bar_width: width of posts, slats and rails.
        back_recline: mean backward tilt of the back from vertical (degrees).
        back_curvature: curvature (1/m) of the back's arc in the y-z plane, hollow towards the front.
        back_corner: radius of the back's top corners (metres).
        arms: armrests (bars into the back, each on a front post).
        arm_height: height of the armrests' top above the seat.
        arm_width, arm_thickness: armrest extent along x and along y.
    """

    seat_width: float
    seat_depth: float
    seat_height: float
    seat_thickness: float
    seat_rounding: float
    base: str
    leg_style: str
    leg_thickness: float
    leg_inset: float
    leg_splay: float
    stretchers: bool
    stretcher_height: float
    back_style: str
    back_bars: int
    back_height: float
    back_width: float
    back_thickness: float
    back_bar_width: float
    back_recline: float
    back_curvature: float
    back_corner: float
    arms: bool
    arm_height: float
    arm_width: float
    arm_thickness: float
    frame: ClassVar[Frame] = CHAIR_FRAME

    @classmethod
    def sample(cls, rng: np.random.Generator) -> ChairParameters:
        """Draw a chair: continuous parameters uniform in their ranges, styles by fixed odds."""
        draw = _Draw(rng)
        seat_width, seat_depth = draw.uniform(0.40, 0.56), draw.uniform(0.38, 0.52)
        seat_height = draw.uniform(0.40, 0.50)
        base = draw.choice(CHAIR_BASES, (0.85, 0.15))
        leg_style = draw.choice(LEG_STYLES, (0.5, 0.5))
        splay = draw.uniform(0.0, 0.05)
        stretchers = draw.chance(0.4)
        back_style = draw.choice(BACK_STYLES, (0.45, 0.35, 0.20))
        back_height = draw.uniform(0.30, 0.55)
        back_width = draw.uniform(0.85, 1.0)
        bar_width = draw.uniform(0.035, 0.06)
        bars = draw.integer(2, 5)
        return cls(
            seat_width=seat_width,
            seat_depth=seat_depth,
            seat_height=seat_height,
            seat_thickness=draw.uniform(0.03, 0.08),
            seat_rounding=draw.uniform(0.0, 0.8),
            base=base,
            leg_style=leg_style,
            leg_thickness=draw.uniform(0.03, 0.06),
            leg_inset=draw.uniform(0.0, 0.04),
            leg_splay=splay if leg_style == "round" else 0.0,
            stretchers=stretchers and base == "legs",
            stretcher_height=draw.uniform(0.10, 0.22),
            back_style=back_style,
            back_bars=_fitting_bars(back_style, bars, back_width * seat_width, back_height, bar_width),
            back_height=back_height,
            back_width=back_width,
            back_thickness=draw.uniform(0.028, 0.05),
            back_bar_width=bar_width,
            back_recline=draw.uniform(0.0, 18.0),
            back_curvature=draw.uniform(0.0, 1.2),
            back_corner=draw.uniform(0.0, 0.08),
            arms=draw.chance(0.3),
            arm_height=draw.uniform(0.16, 0.26),
            arm_width=draw.uniform(0.04, 0.07),
            arm_thickness=draw.uniform(0.03, 0.05),
        )

    def to_dict(self) -> dict:
        """JSON-able parameters (``ChairParameters(**d)`` rebuilds the chair)."""
        return asdict(self)

    def shape(self) -> Shape:
        """The chair as one CSG solid in model units (see :data:`CHAIR_FRAME`)."""
        frame = self.frame
        parts = [self._seat(frame), self._back(frame)]
        parts += self._legs(frame) if self.base == "legs" else self._swivel_base(frame)
        if self.arms:
            parts += self._arms(frame)
        return frame.standing(parts, name="chair")

    # -- parts

    def _seat(self, frame: Frame) -> Box:
        half_width, half_depth = self.seat_width / 2, self.seat_depth / 2
        bottom = self.seat_height - self.seat_thickness
        return frame.box((-half_width, bottom, -half_depth), (half_width, self.seat_height, half_depth),
                         self.seat_rounding * self.seat_thickness / 2)

    def _legs(self, frame: Frame) -> list[Shape]:
        layout = _LegLayout(
            corner_x=self.seat_width / 2 - self.leg_inset - self.leg_thickness / 2,
            corner_z=self.seat_depth / 2 - self.leg_inset - self.leg_thickness / 2,
            top=self.seat_height - self.seat_thickness / 2,
            style=self.leg_style,
            thickness=self.leg_thickness,
            splay=self.leg_splay,
        )
        parts = layout.legs(frame)
        if self.stretchers:
            parts += layout.stretchers(frame, self.stretcher_height, max(0.6 * self.leg_thickness, 0.028))
        return parts

    def _swivel_base(self, frame: Frame) -> list[Shape]:
        """A column from a hub up into a plate under the seat, five spokes (one pointing forward),
        a caster on each."""
        hub_height, spread = 0.09, 0.45 * math.hypot(self.seat_width, self.seat_depth)
        column_radius = max(self.leg_thickness / 2 + 0.01, 0.025)
        seat_bottom = self.seat_height - self.seat_thickness
        plate = frame.box((-0.09, seat_bottom - 0.05, -0.09), (0.09, seat_bottom + 0.01, 0.09), 0.01)
        # The column's rounded end stays inside the plate and the seat (radius <= 0.04 < 0.02 + 0.03).
        column = frame.capsule((0, hub_height, 0), (0, seat_bottom - 0.02, 0), column_radius)
        parts: list[Shape] = [plate, column]
        for angle in np.linspace(0.0, 2 * math.pi, 5, endpoint=False):
            x, z = spread * math.sin(angle), spread * math.cos(angle)
            parts.append(frame.capsule((0, hub_height, 0), (x, 0.065, z), 0.02))
            parts.append(frame.sphere((x, 0.025, z), 0.03))  # cut flat by the floor
        return parts

    def _back_arc(self) -> tuple[float, float, float]:
        """Centre ``(y, z)`` and radius of the arc (y-z plane) that the back's mid-surface follows.

        The arc passes through the point at seat height half the back's thickness in front of the
        seat's rear edge (so the back's rear face is flush with the seat's) and through the point
        ``back_height`` higher and ``back_height * tan(back_recline)`` further back; its centre
        lies in front of the back (the back is hollow towards the sitter).
        """
        y0, z0 = self.seat_height, -self.seat_depth / 2 + self.back_thickness / 2
        y1, z1 = y0 + self.back_height, z0 - self.back_height * math.tan(math.radians(self.back_recline))
        chord = math.hypot(y1 - y0, z1 - z0)
        radius = max(1.0 / max(self.back_curvature, _MIN_CURVATURE), chord)
        along_y, along_z = (y1 - y0) / chord, (z1 - z0) / chord
        offset = math.sqrt(radius**2 - chord**2 / 4)
        return (y0 + y1) / 2 - along_z * offset, (z0 + z1) / 2 + along_y * offset, radius

    def _back_z(self, y: float) -> float:
        """z (metres) of the back's mid-surface at height ``y``."""
        center_y, center_z, radius = self._back_arc()
        return center_z - math.sqrt(radius**2 - (y - center_y) ** 2)

    def _back(self, frame: Frame) -> Intersection:
        """The curved shell of the back's arc, cut to the outline of the back's style."""
        center_y, center_z, radius = self._back_arc()
        half_length = self.seat_width  # the arc's axis (along x) reaches past the back on both sides
        axis = ((-half_length, center_y, center_z), (half_length, center_y, center_z))
        outer = frame.capsule(*axis, radius + self.back_thickness / 2)
        inner = frame.capsule(*axis, radius - self.back_thickness / 2)
        return Intersection((outer, Complement(inner), self._back_outline(frame)), name="back")

    def _back_outline(self, frame: Frame) -> Shape:
        """Union of prisms (long along z) whose x-y outline is the back's: panel, or posts and bars."""
        half_width = self.back_width * self.seat_width / 2
        bottom, top = self.seat_height - self.seat_thickness / 2, self.seat_height + self.back_height
        z_near, z_far = -self.seat_depth / 2 + 0.15, self._back_z(top) - 0.15
        bar = self.back_bar_width
        corner = min(self.back_corner, 0.45 * bar)

        def prism(x0: float, x1: float, y0: float, y1: float, rounding: float = 0.0) -> Box:
            return frame.box((x0, y0, z_far), (x1, y1, z_near), rounding)

        middle = (bottom + top) / 2
        if self.back_style == "solid":
            panel_corner = min(self.back_corner, 0.45 * (top - middle))
            return Union((prism(-half_width, half_width, bottom, middle + panel_corner),
                          prism(-half_width, half_width, middle, top, panel_corner)), name="back_outline")
        posts = [prism(-half_width, -half_width + bar, bottom, top - corner),
                 prism(half_width - bar, half_width, bottom, top - corner)]
        top_rail = prism(-half_width, half_width, top - 1.5 * bar, top, corner)
        if self.back_style == "slats":
            inner_left, inner_right = -half_width + bar, half_width - bar
            centers = _spaced(inner_left, inner_right, self.back_bars, bar)
            bars = [prism(c - bar / 2, c + bar / 2, bottom, top - bar) for c in centers]
        else:
            centers = _spaced(self.seat_height, top - 1.5 * bar, self.back_bars, bar)
            bars = [prism(-half_width + bar / 2, half_width - bar / 2, c - bar / 2, c + bar / 2) for c in centers]
        return Union(tuple(posts + [top_rail] + bars), name="back_outline")

    def _arms(self, frame: Frame) -> list[Shape]:
        """Two armrests from inside the back to the seat's front, each on a post down into the seat."""
        half_width = self.back_width * self.seat_width / 2
        top = self.seat_height + self.arm_height
        bottom = top - self.arm_thickness
        rear = self._back_z((top + bottom) / 2)
        front = self.seat_depth / 2
        post_front = front - 0.01
        parts: list[Shape] = []
        for side in (-1.0, 1.0):
            outer, inner = side * half_width, side * (half_width - self.arm_width)
            x0, x1 = min(outer, inner), max(outer, inner)
            rounding = 0.3 * min(self.arm_thickness, self.arm_width) / 2
            parts.append(frame.box((x0, bottom, rear), (x1, top, front), rounding))
            parts.append(frame.box((x0, self.seat_height - 0.02, post_front - self.arm_width),
                                   (x1, bottom + 0.01, post_front)))
        return parts


def _fitting_bars(style: str, wanted: int, width: float, height: float, bar: float) -> int:
    """How many of ``wanted`` slats (across ``width``) or rails (up ``height``) fit with gaps >= 3 cm."""
    if style == "slats":
        room = width - 2 * bar  # between the posts
    elif style == "rails":
        room = height - 1.5 * bar  # below the top rail
    else:
        return wanted
    return int(max(1, min(wanted, math.floor((room - _MIN_GAP) / (bar + _MIN_GAP)))))


def _spaced(start: float, stop: float, count: int, width: float) -> list[float]:
    """Centres of ``count`` bars of ``width`` with equal gaps between ``start``, the bars and ``stop``."""
    gap = (stop - start - count * width) / (count + 1)
    return [start + gap * (i + 1) + width * (i + 0.5) for i in range(count)]


# --------------------------------------------------------------------------------- four legs


@dataclass(frozen=True)
class _LegLayout:
    """Four legs at ``(±corner_x, ±corner_z)`` from the floor up to ``top`` (metres)."""

    corner_x: float
    corner_z: float
    top: float
    style: str
    thickness: float
    splay: float

    def axis_at(self, sign_x: float, sign_z: float, y: float) -> tuple[float, float]:
        """(x, z) of the leg's axis at height ``y``: round legs splay outward towards the floor."""
        outward = self.splay * (1.0 - y / self.top)
        return sign_x * (self.corner_x + outward), sign_z * (self.corner_z + outward)

    def legs(self, frame: Frame) -> list[Shape]:
        """Square legs: four boxes. Round legs: four rods, cut flat at ``top`` together."""
        half = self.thickness / 2
        corners = [(sign_x, sign_z) for sign_x in (-1.0, 1.0) for sign_z in (-1.0, 1.0)]
        if self.style == "square":
            heads = [self.axis_at(sign_x, sign_z, self.top) for sign_x, sign_z in corners]
            return [frame.box((x - half, -_BELOW_FLOOR, z - half), (x + half, self.top, z + half), 0.2 * half)
                    for x, z in heads]
        rods = []
        for sign_x, sign_z in corners:
            foot, head = self.axis_at(sign_x, sign_z, -_BELOW_FLOOR), self.axis_at(sign_x, sign_z, self.top + half)
            rods.append(frame.capsule((foot[0], -_BELOW_FLOOR, foot[1]), (head[0], self.top + half, head[1]), half))
        reach_x, reach_z = self.corner_x + self.splay + self.thickness, self.corner_z + self.splay + self.thickness
        below_top = frame.box((-reach_x, -_BELOW_FLOOR, -reach_z), (reach_x, self.top, reach_z))
        return [Intersection((Union(tuple(rods)), below_top), name="legs")]

    def stretchers(self, frame: Frame, height: float, thickness: float) -> list[Shape]:
        """H-shaped stretchers: one along z on each side, one along x between their middles."""
        back_left, front_left = self.axis_at(-1, -1, height), self.axis_at(-1, 1, height)
        back_right, front_right = self.axis_at(1, -1, height), self.axis_at(1, 1, height)
        rails = [(back_left, front_left), (back_right, front_right), ((back_left[0], 0.0), (back_right[0], 0.0))]
        half = thickness / 2
        parts: list[Shape] = []
        for (x0, z0), (x1, z1) in rails:
            if self.style == "square":
                parts.append(frame.box((min(x0, x1) - half, height - half, min(z0, z1) - half),
                                       (max(x0, x1) + half, height + half, max(z0, z1) + half)))
            else:
                parts.append(frame.capsule((x0, height, z0), (x1, height, z1), half))
        return parts


# ------------------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class TableParameters:
    """A table (metres, floor at y = 0, top centred on the y axis).

    Thicknesses are drawn as fractions of the table's size (its largest extent), so that thin
    parts stay >= ~2.5% of it whatever the table's size.

    Attributes:
        top_shape: "rectangle" (rounded slab) or "round" (disc).
        top_length, top_width: extent along x and z (a round top's diameter, twice).
        top_height: height of the top's upper face.
        top_thickness: top slab thickness.
        top_rounding: rounding of a rectangular top's edges, fraction of half its thickness.
        base: "legs" (four legs) or "pedestal" (round top: a column on a foot; rectangle: two
            trestles joined by a stretcher).
        leg_style: "square" or "round" legs; for a pedestal, a cross of feet or a disc foot.
        leg_thickness: leg side or diameter (a pedestal column's radius).
        leg_inset: how far legs sit inside the top's edge.
        leg_splay: outward offset of each round leg's foot along x and along z (0 for square).
        apron: a skirt under the top joining the legs.
        apron_height: its height.
        stretchers: H-shaped stretchers between the legs.
        stretcher_height: height of the stretchers' axis.
        foot_spread: a pedestal's foot size as a fraction of the top's smaller half extent.
    """

    top_shape: str
    top_length: float
    top_width: float
    top_height: float
    top_thickness: float
    top_rounding: float
    base: str
    leg_style: str
    leg_thickness: float
    leg_inset: float
    leg_splay: float
    apron: bool
    apron_height: float
    stretchers: bool
    stretcher_height: float
    foot_spread: float
    frame: ClassVar[Frame] = TABLE_FRAME

    @classmethod
    def sample(cls, rng: np.random.Generator) -> TableParameters:
        """Draw a table: continuous parameters uniform in their ranges, styles by fixed odds."""
        draw = _Draw(rng)
        top_shape = draw.choice(TABLE_TOPS, (0.7, 0.3))
        length = draw.uniform(0.8, 1.6) if top_shape == "rectangle" else draw.uniform(0.6, 1.2)
        width = length * draw.uniform(0.5, 1.0) if top_shape == "rectangle" else length
        height = draw.uniform(0.45, 0.78)
        size = max(length, height)
        base = draw.choice(TABLE_BASES, (0.8, 0.2) if top_shape == "rectangle" else (0.6, 0.4))
        leg_style = draw.choice(LEG_STYLES, (0.5, 0.5))
        splay = draw.uniform(0.0, 0.06)
        return cls(
            top_shape=top_shape,
            top_length=length,
            top_width=draw.round(width),
            top_height=height,
            top_thickness=draw.round(size * draw.uniform(0.025, 0.045)),
            top_rounding=draw.uniform(0.0, 0.8),
            base=base,
            leg_style=leg_style,
            leg_thickness=draw.round(size * draw.uniform(0.035, 0.06)),
            leg_inset=draw.uniform(0.02, 0.10),
            leg_splay=splay if leg_style == "round" and base == "legs" else 0.0,
            apron=draw.chance(0.5) and base == "legs",
            apron_height=draw.uniform(0.05, 0.12),
            stretchers=draw.chance(0.35) and base == "legs",
            stretcher_height=draw.uniform(0.10, 0.25),
            foot_spread=draw.uniform(0.5, 0.8),
        )

    def to_dict(self) -> dict:
        """JSON-able parameters (``TableParameters(**d)`` rebuilds the table)."""
        return asdict(self)

    def shape(self) -> Shape:
        """The table as one CSG solid in model units (see :data:`TABLE_FRAME`)."""
        frame = self.frame
        parts = [self._top(frame)]
        if self.base == "legs":
            parts += self._legs(frame)
        elif self.top_shape == "round":
            parts += self._pedestal(frame)
        else:
            parts += self._trestles(frame)
        return frame.standing(parts, name="table")

    @property
    def _under_top(self) -> float:
        return self.top_height - self.top_thickness

    def _top(self, frame: Frame) -> Shape:
        if self.top_shape == "round":
            return frame.cylinder(0.0, 0.0, (self._under_top, self.top_height), self.top_length / 2)
        half_x, half_z = self.top_length / 2, self.top_width / 2
        return frame.box((-half_x, self._under_top, -half_z), (half_x, self.top_height, half_z),
                         self.top_rounding * self.top_thickness / 2)

    def _legs(self, frame: Frame) -> list[Shape]:
        """Four legs (at the corners, or at 45 degrees under a round top), apron, stretchers."""
        reach_x = self.top_length / 2 - self.leg_inset - self.leg_thickness / 2
        reach_z = self.top_width / 2 - self.leg_inset - self.leg_thickness / 2
        if self.top_shape == "round":
            reach_x = reach_z = reach_x / math.sqrt(2)
        layout = _LegLayout(reach_x, reach_z, self.top_height - self.top_thickness / 2, self.leg_style,
                            self.leg_thickness, self.leg_splay)
        parts = layout.legs(frame)
        if self.apron:
            parts.append(self._apron(frame, reach_x, reach_z))
        if self.stretchers:
            parts += layout.stretchers(frame, self.stretcher_height, 0.75 * self.leg_thickness)
        return parts

    def _apron(self, frame: Frame, reach_x: float, reach_z: float) -> Shape:
        """A skirt through the legs' tops: a ring under a round top, four boards under a rectangle."""
        thickness = 0.75 * self.leg_thickness
        y_range = (self._under_top - self.apron_height, self._under_top + 0.01)
        if self.top_shape == "round":
            radius = math.sqrt(2) * reach_x
            ring = frame.cylinder(0.0, 0.0, y_range, radius + thickness / 2)
            hole = frame.cylinder(0.0, 0.0, (y_range[0] - 0.01, y_range[1] + 0.01), radius - thickness / 2)
            return Intersection((ring, Complement(hole)), name="apron")
        outer_x, outer_z = reach_x + self.leg_thickness / 2, reach_z + self.leg_thickness / 2
        inner_x, inner_z = outer_x - thickness, outer_z - thickness
        boards = [frame.box((-reach_x, y_range[0], inner_z), (reach_x, y_range[1], outer_z)),
                  frame.box((-reach_x, y_range[0], -outer_z), (reach_x, y_range[1], -inner_z)),
                  frame.box((inner_x, y_range[0], -reach_z), (outer_x, y_range[1], reach_z)),
                  frame.box((-outer_x, y_range[0], -reach_z), (-inner_x, y_range[1], reach_z))]
        return Union(tuple(boards), name="apron")

    def _pedestal(self, frame: Frame) -> list[Shape]:
        """A column under a round top on a disc foot (round style) or a cross of four feet (square).

        The feet reach ``foot_spread`` x the top's radius; a disc, three quarters of that."""
        reach = self.foot_spread * self.top_length / 2
        column = frame.cylinder(0.0, 0.0, (0.0, self._under_top + 0.01), self.leg_thickness)
        foot_height = 0.03 + 0.3 * self.leg_thickness
        if self.leg_style == "round":
            return [column, frame.cylinder(0.0, 0.0, (-_BELOW_FLOOR, foot_height), 0.75 * reach)]
        half = self.leg_thickness / 2
        feet = [frame.box((-reach, -_BELOW_FLOOR, -half), (reach, foot_height, half), 0.4 * half),
                frame.box((-half, -_BELOW_FLOOR, -reach), (half, foot_height, reach), 0.4 * half)]
        return [column] + feet

    def _trestles(self, frame: Frame) -> list[Shape]:
        """Two end frames (post, foot bar, bearer under the top) joined by a stretcher along x."""
        reach = self.foot_spread * self.top_width / 2
        x_post = self.top_length / 2 - self.leg_inset - 0.1 * self.top_length
        half = self.leg_thickness / 2
        post_depth = min(2.5 * self.leg_thickness, 0.8 * reach)
        foot_height, bearer = 0.03 + 0.6 * self.leg_thickness, 0.6 * self.leg_thickness
        parts: list[Shape] = []
        for x in (-x_post, x_post):
            parts.append(frame.box((x - half, -_BELOW_FLOOR, -post_depth / 2), (x + half, self.top_height - 0.01,
                                                                                 post_depth / 2)))
            parts.append(frame.box((x - 1.3 * half, -_BELOW_FLOOR, -reach), (x + 1.3 * half, foot_height, reach),
                                   0.5 * half))
            parts.append(frame.box((x - half, self._under_top - bearer, -reach), (x + half, self._under_top + 0.01,
                                                                                  reach)))
        stretcher_half = 0.75 * self.leg_thickness
        parts.append(frame.box((-x_post, self.stretcher_height - stretcher_half, -half),
                               (x_post, self.stretcher_height + stretcher_half, half)))
        return parts


# ------------------------------------------------------------------------------------ families

FAMILIES: dict[str, type[ChairParameters] | type[TableParameters]] = {
    "chairs": ChairParameters,
    "tables": TableParameters,
}


def family_shape(kind: str, index: int, seed: int = 0) -> tuple[Shape, dict]:
    """Shape ``index`` of the family ``kind`` ("chairs" or "tables") and its parameters (a JSON-able dict).

    Deterministic per ``(seed, index)``: the parameters come from
    ``np.random.default_rng([seed, index])``, so shape ``i`` does not depend on how many are made.
    """
    parameters = family_parameters(kind, index, seed)
    return parameters.shape(), parameters.to_dict()


def family_parameters(kind: str, index: int, seed: int = 0) -> ChairParameters | TableParameters:
    """The parameters of shape ``index`` of family ``kind`` (see :func:`family_shape`)."""
    if kind not in FAMILIES:
        raise InputError(f"unknown furniture family {kind!r}; known families: {', '.join(sorted(FAMILIES))}")
    _require_non_negative_integer("index", index)
    _require_non_negative_integer("seed", seed)
    return FAMILIES[kind].sample(np.random.default_rng([seed, index]))


def _require_non_negative_integer(argument: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InputError(f"{argument} must be a non-negative integer, got {value!r}")


class _Draw:
    """Random draws rounded for exact JSON round trips: floats to 0.1 mm, styles as ``str``."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng

    @staticmethod
    def round(value: float) -> float:
        return round(float(value), 4)

    def uniform(self, low: float, high: float) -> float:
        return self.round(self._rng.uniform(low, high))

    def integer(self, low: int, high: int) -> int:
        """Uniform integer in ``[low, high]`` (both included)."""
        return int(self._rng.integers(low, high + 1))

    def chance(self, probability: float) -> bool:
        return bool(self._rng.random() < probability)

    def choice(self, options: Sequence[str], odds: Sequence[float]) -> str:
        return str(options[int(self._rng.choice(len(options), p=odds))])

