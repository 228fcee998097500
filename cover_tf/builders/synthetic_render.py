"""Procedural clips and images of the `cover_synthetic` benchmark, rendered with numpy.

An object is a (shape, texture, colour) triple drawn on a cluttered background: a smooth random
colour field, a few static distractor blobs and per-pixel noise. Three tasks:

  appearance  video; the class is WHAT the object is (APPEARANCE_OBJECTS); it moves at random.
  motion      video; the class is HOW it moves (MOTION_CLASSES); the object is random, and
              every single frame has the same distribution whatever the class (a torus scene,
              uniform position, angle and log-scale): only time tells the class.
              Horizontal flipping swaps left_to_right <-> right_to_left and clockwise <->
              anticlockwise: train it with flipping disabled.
  images      still images of IMAGE_OBJECTS, which include every appearance object (same
              rendering), so image co-training can help the few-shot appearance task.

Every sample is a pure function of its seed (`numpy.random.default_rng(seed)`), so the same seed
gives the same pixels. Shapes: clips uint8 [T, S, S, 3], images uint8 [S, S, 3].
"""

import dataclasses

import numpy as np

SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond", "ell", "tee", "bar")
TEXTURES = ("solid", "stripes", "checker", "dots")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 80, 230),
    "yellow": (230, 210, 40),
    "magenta": (210, 50, 200),
    "cyan": (40, 200, 210),
    "orange": (240, 130, 30),
    "white": (235, 235, 235),
}

# Appearance classes: each shape, texture and colour occurs in several classes, so a class is
# told apart only by the combination.
APPEARANCE_OBJECTS = (
    ("circle", "solid", "red"),
    ("circle", "stripes", "blue"),
    ("square", "checker", "red"),
    ("square", "solid", "green"),
    ("triangle", "stripes", "yellow"),
    ("triangle", "dots", "blue"),
    ("cross", "solid", "yellow"),
    ("cross", "checker", "magenta"),
    ("ring", "dots", "green"),
    ("ring", "solid", "magenta"),
    ("diamond", "stripes", "red"),
    ("diamond", "checker", "cyan"),
)
EXTRA_IMAGE_OBJECTS = (
    ("circle", "checker", "green"),
    ("square", "stripes", "cyan"),
    ("triangle", "solid", "orange"),
    ("cross", "dots", "white"),
    ("ring", "stripes", "orange"),
    ("diamond", "solid", "white"),
    ("ell", "solid", "blue"),
    ("ell", "stripes", "magenta"),
    ("tee", "checker", "yellow"),
    ("tee", "solid", "cyan"),
    ("bar", "dots", "red"),
    ("bar", "checker", "orange"),
)
IMAGE_OBJECTS = APPEARANCE_OBJECTS + EXTRA_IMAGE_OBJECTS
MOTION_CLASSES = (
    "left_to_right",
    "right_to_left",
    "moving_up",
    "moving_down",
    "approaching",
    "receding",
    "rotating_clockwise",
    "rotating_anticlockwise",
)
# The motion label a horizontally flipped clip shows (the reason motion data is never flipped).
MOTION_FLIP = {
    "left_to_right": "right_to_left",
    "right_to_left": "left_to_right",
    "rotating_clockwise": "rotating_anticlockwise",
    "rotating_anticlockwise": "rotating_clockwise",
}
# Motion objects avoid rotation-symmetric shapes so that rotation is visible.
_MOTION_SHAPES = ("square", "triangle", "cross", "diamond", "ell", "tee", "bar")
# Motion objects' scale range (fraction of the frame side), the same for every class.
_MOTION_SCALE = (0.13, 0.3)
# Per-frame rates of change of motion clips (16 frames), the same ranges for every class:
# translation in pixels per frame at a 40 px frame, the log-scale phase per frame (fraction of
# the _MOTION_SCALE range), rotation in radians per frame. Version 2.1.0 doubled 2.0.0's: at the
# demo's stride 2 and 8 px patches, 2.0.0's ~2 px per sampled frame took a tiny TimeSformer
# trained from scratch most of its steps to notice.
_MOTION_SPEED = (1.8, 2.6)
_MOTION_SCALE_RATE = (0.07, 0.1)
_MOTION_TURN_RATE = (0.3, 0.5)


@dataclasses.dataclass(frozen=True)
class Look:
    """How shapes and textures are drawn, in object coordinates (the object inside [-1, 1]^2).

    Args:
      diamond: the diamond's half-diagonals along u and along v. Equal ones make it a square
        turned by 45 degrees, which objects drawn at a random angle cannot tell from the square
        (cover_synthetic before 2.3.0: red_checker_square and red_stripes_diamond differed by
        texture only, and a trained model confused them half of the time).
      stripes: stripe frequency; stripes are bright where sin(stripes * pi * u) > 0.
      checker: checker cells per unit of u and of v.
    """

    diamond: tuple[float, float] = (0.95, 0.55)
    stripes: float = 2.0
    checker: float = 1.5


def object_name(obj: tuple[str, str, str]) -> str:
    """Class name of an object: "<colour>_<texture>_<shape>"."""
    shape, texture, colour = obj
    return f"{colour}_{texture}_{shape}"


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray, look: Look) -> np.ndarray:
    """Boolean mask of `shape` in object coordinates (u, v), the object inside [-1, 1]^2."""
    au, av = np.abs(u), np.abs(v)
    if shape == "circle":
        return u * u + v * v < 0.9
    if shape == "square":
        return np.maximum(au, av) < 0.75
    if shape == "triangle":
        return (v < 0.7) & (v > 1.6 * au - 0.9)
    if shape == "cross":
        return ((au < 0.3) & (av < 0.95)) | ((av < 0.3) & (au < 0.95))
    if shape == "ring":
        r2 = u * u + v * v
        return (r2 < 0.95) & (r2 > 0.3)
    if shape == "diamond":
        along_u, along_v = look.diamond
        return au + av * (along_u / along_v) < along_u
    if shape == "ell":
        return ((u > -0.8) & (u < -0.2) & (av < 0.9)) | ((v > 0.3) & (v < 0.9) & (au < 0.8))
    if shape == "tee":
        return ((v > -0.9) & (v < -0.35) & (au < 0.9)) | ((au < 0.3) & (v < 0.9) & (v > -0.9))
    if shape == "bar":
        return (au < 0.95) & (av < 0.35)
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def _texture(texture: str, u: np.ndarray, v: np.ndarray, look: Look) -> np.ndarray:
    """Brightness factor in [0.35, 1] of `texture` at object coordinates (u, v)."""
    if texture == "solid":
        pattern = np.ones_like(u, dtype=bool)
    elif texture == "stripes":
        pattern = np.sin(u * look.stripes * np.pi) > 0
    elif texture == "checker":
        pattern = (np.floor(u * look.checker) + np.floor(v * look.checker)) % 2 == 0
    elif texture == "dots":
        du, dv = (u * 2.5) % 1.0 - 0.5, (v * 2.5) % 1.0 - 0.5
        pattern = du * du + dv * dv > 0.06
    else:
        raise ValueError(f"unknown texture {texture!r}; expected one of {TEXTURES}")
    return np.where(pattern, 1.0, 0.35)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Float [S, S, 3] clutter: smooth random colour field plus static distractor blobs."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    field = np.zeros((size, size, 3), np.float32)
    for _ in range(3):
        fx, fy = rng.uniform(0.5, 2.5, 2)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * (fx * x + fy * y) + phase)
        field += wave[..., None] * rng.uniform(15, 45, 3)
    field += rng.uniform(60, 140, 3)
    for _ in range(rng.integers(2, 5)):  # distractors: small blobs of random colour
        cx, cy = rng.uniform(0, size, 2)
        radius = rng.uniform(1.5, 3.5)
        blob = (x * size - cx) ** 2 + (y * size - cy) ** 2 < radius**2
        field[blob] = rng.uniform(30, 230, 3)
    return field


def _draw(
    frames: np.ndarray,
    obj: tuple[str, str, str],
    cx: np.ndarray,
    cy: np.ndarray,
    scale: np.ndarray,
    angle: np.ndarray,
    look: Look,
    wrap: bool = False,
) -> None:
    """Draws `obj` into float frames [T, S, S, 3] in place; per-frame centre, scale, angle [T].

    With `wrap`, the frame is a torus: what leaves one edge enters at the opposite one.
    """
    shape, texture, colour = obj
    size = frames.shape[1]
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    dx = x[None] - cx[:, None, None]
    dy = y[None] - cy[:, None, None]
    if wrap:
        dx = (dx + size / 2) % size - size / 2
        dy = (dy + size / 2) % size - size / 2
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    s = scale[:, None, None]
    u = (dx * cos + dy * sin) / s
    v = (-dx * sin + dy * cos) / s
    mask = _shape_mask(shape, u, v, look)
    shade = _texture(texture, u, v, look)[..., None] * np.asarray(COLOURS[colour], np.float32)
    np.copyto(frames, shade, where=mask[..., None])


def _finish(frames: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    if noise > 0:
        frames = frames + rng.normal(0.0, noise, frames.shape).astype(np.float32)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def render_appearance_clip(
    seed,
    obj_index: int,
    *,
    num_frames: int = 16,
    size: int = 40,
    noise: float = 12.0,
    look: Look = Look(),
) -> np.ndarray:
    """uint8 [T, S, S, 3]: APPEARANCE_OBJECTS[obj_index] moving on a random path."""
    rng = np.random.default_rng(seed)
    frames = np.broadcast_to(_background(rng, size), (num_frames, size, size, 3)).copy()
    t = np.arange(num_frames, dtype=np.float32)
    margin = 0.3 * size
    start = rng.uniform(margin, size - margin, 2)
    speed = rng.uniform(0.0, 1.2)
    heading = rng.uniform(0, 2 * np.pi)
    wobble = rng.uniform(0, 1.0) * np.sin(t * rng.uniform(0.3, 1.0) + rng.uniform(0, 6.3))
    cx = np.clip(start[0] + speed * np.cos(heading) * t + wobble, 6, size - 6)
    cy = np.clip(start[1] + speed * np.sin(heading) * t - wobble, 6, size - 6)
    scale = np.full(num_frames, rng.uniform(0.17, 0.26) * size, np.float32)
    angle = rng.uniform(0, 2 * np.pi) + rng.uniform(-0.08, 0.08) * t
    _draw(frames, APPEARANCE_OBJECTS[obj_index], cx, cy, scale, angle, look)
    return _finish(frames, rng, noise)


def motion_trajectory(rng: np.random.Generator, motion: str, num_frames: int, size: int):
    """Per-frame object state of a motion clip: centre x, centre y, scale, angle, each float [T].

    The centre lives on a torus of side `size` (take it modulo `size`); at every frame index the
    centre, the angle (modulo 2 pi) and log-scale are uniform whatever `motion`: only their
    change from frame to frame tells the class.
    """
    t = np.arange(num_frames, dtype=np.float32)
    jitter = rng.normal(0, 0.25, (2, num_frames)).astype(np.float32)
    cx = rng.uniform(0, size) + jitter[0]
    cy = rng.uniform(0, size) + jitter[1]
    # Log-scale phase in [0, 1): scale = low * (high / low) ** phase, low, high = _MOTION_SCALE.
    phase = np.full(num_frames, rng.uniform(0, 1), np.float32)
    angle = np.full(num_frames, rng.uniform(0, 2 * np.pi), np.float32)
    speed = rng.uniform(*_MOTION_SPEED) * size / 40  # pixels per frame
    if motion in ("left_to_right", "right_to_left"):
        cx = cx + (1.0 if motion == "left_to_right" else -1.0) * speed * t
    elif motion in ("moving_up", "moving_down"):
        cy = cy + (-1.0 if motion == "moving_up" else 1.0) * speed * t  # rows grow downwards
    elif motion in ("approaching", "receding"):
        rate = rng.uniform(*_MOTION_SCALE_RATE)  # of the log-scale range per frame
        phase = (phase + (1.0 if motion == "approaching" else -1.0) * rate * t) % 1.0
    elif motion in ("rotating_clockwise", "rotating_anticlockwise"):
        # In image coordinates (y down) a growing angle turns clockwise on screen.
        sign = 1.0 if motion == "rotating_clockwise" else -1.0
        angle = angle + sign * rng.uniform(*_MOTION_TURN_RATE) * t
    else:
        raise ValueError(f"unknown motion {motion!r}; expected one of {MOTION_CLASSES}")
    low, high = _MOTION_SCALE
    scale = low * (high / low) ** phase * size
    return tuple(
        np.broadcast_to(value, t.shape).astype(np.float32) for value in (cx, cy, scale, angle)
    )


def render_motion_clip(
    seed,
    motion: str,
    *,
    num_frames: int = 16,
    size: int = 40,
    noise: float = 12.0,
    look: Look = Look(),
) -> np.ndarray:
    """uint8 [T, S, S, 3]: a random object moving as MOTION_CLASSES names it.

    No single frame tells the class: the scene is a torus (an object leaving one edge comes
    back at the other), the position, angle and log-scale of every frame are uniform whatever
    the class (a start drawn uniformly, a constant-rate change, wrapped), and the object's
    shape, texture and colour are drawn independently of the class. Only how frames change
    from one to the next does.
    """
    rng = np.random.default_rng(seed)
    frames = np.broadcast_to(_background(rng, size), (num_frames, size, size, 3)).copy()
    obj = (
        _MOTION_SHAPES[rng.integers(len(_MOTION_SHAPES))],
        TEXTURES[rng.integers(len(TEXTURES))],
        list(COLOURS)[rng.integers(len(COLOURS))],
    )
    cx, cy, scale, angle = motion_trajectory(rng, motion, num_frames, size)
    _draw(frames, obj, cx, cy, scale, angle, look, wrap=True)
    return _finish(frames, rng, noise)


def render_image(
    seed, obj_index: int, *, size: int = 40, noise: float = 12.0, look: Look = Look()
) -> np.ndarray:
    """uint8 [S, S, 3]: IMAGE_OBJECTS[obj_index] at a random place, size and angle."""
    rng = np.random.default_rng(seed)
    frames = _background(rng, size)[None].copy()
    margin = 0.3 * size
    cx, cy = rng.uniform(margin, size - margin, 2)
    scale = rng.uniform(0.17, 0.26) * size
    angle = rng.uniform(0, 2 * np.pi)
    _draw(
        frames,
        IMAGE_OBJECTS[obj_index],
        np.array([cx], np.float32),
        np.array([cy], np.float32),
        np.array([scale], np.float32),
        np.array([angle], np.float32),
        look,
    )
    return _finish(frames, rng, noise)[0]
