"""Procedural golf-course scenes with exact dense metric depth and labels (CPU, numpy).

No real dense depth exists for golf courses, so depth is trained and judged here: every
pixel's depth and label come from the same analytic scene the RGB is shaded from.

Scene: a smooth height-field terrain (sinusoids + mounds, carved ponds and bunkers) with
analytic ground regions (fairway bands, greens, a curving cart path, ponds, bunkers), a
distant tree line (a vertical "wall" 60-80 m away with a crown profile), a sky, and
analytic primitives (boxes, vertical cylinders, ellipsoids) for carts, people, flags, poles
and trees; opt-in "near scenery" (near=True, `meco data synth --near`) adds bushes, trees,
buildings, parked carts and people 3-30 m beside the path (scene.place_near). Per pixel:
rays are marched against the height field at 1/4 resolution to bracket the first hit,
refined at full resolution by bisection + secant, then primitives are z-buffered inside
their projected bounding rectangles and everything is shaded at once.

Conventions:
- world: x, y horizontal, z up, metres; camera at x = y = 0, OpenCV camera frame
  (x right, y down, z forward). Rays are scaled so their camera-z component is 1, hence a
  hit at ray parameter t has depth t = z along the optical axis.
- depth_m: z-depth in metres, capped at 80 m; sky has depth 0 (= no data) and label 0.
- labels (golf set): 0 background (sky, tree line, rough, trees - see TREE_LABEL),
  1 fairway (incl. greens), 2 hazard (water, sand), 3 road (cart path), 4 obstacle.
- frame (seed, index, split) is rendered from its own RNG, so it is identical on every run
  and independent of how many frames are generated.

The renderer in stages, one module each: common (ids, constants, textures), course
(layout), terrain (height field, tree line), camera, scene (obstacle primitives), raycast,
render (shading), lidar (sensor and lidar), frame (one frame), dataset (many frames).
"""
from meco_core.defaults import MAX_DEPTH_M  # noqa: F401

from .common import (  # noqa: F401
    BACKGROUND, CLASS_NAMES, DEFAULT_HFOV_DEG, FAIRWAY, GRID_HALF, GRID_RES, GROUND_LABEL, G_CUT, G_FAIRWAY,
    G_GREEN, G_ROAD, G_ROUGH, G_SAND, G_WATER, HAZARD, K_GROUND, K_PRIM, K_SKY, K_TREELINE,
    LIDAR_AZIMUTH_STEPS, LIDAR_ELEVATION_DEG, LOWRES, MARCH_STEPS, OBSTACLE, P_BOX, P_CYL, P_ELL,
    ROAD, TREE_LABEL, T_FAR, T_NEAR, frame_rng,
)
from .course import Band, Blob, Course, ground_material, make_course  # noqa: F401
from .terrain import Terrain, TreeLine, build_terrain, make_treeline  # noqa: F401
from .camera import Camera, camera_rays, make_camera, project  # noqa: F401
from .scene import (  # noqa: F401
    BUSH_COLORS, CART_COLORS, FACADES, NEAR_KINDS, PANTS, ROOFS, Prim, SHIRTS, Scene, add_building, add_bush,
    add_cart, add_flag, add_person, add_pole, add_tree, building_size, place_near, place_obstacles,
)
from .raycast import trace_prims, trace_terrain  # noqa: F401
from .render import Env, make_env, shade, sky_color  # noqa: F401
from .lidar import lidar_sparse, sensor  # noqa: F401
from .frame import SynthFrame, render_frame  # noqa: F401
from .dataset import contact_sheet, generate, main_from_args  # noqa: F401
