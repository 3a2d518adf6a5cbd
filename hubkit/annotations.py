"""Polygon annotations: read them, rasterise them into masks, and turn masks back into polygons.

Reads the competition's glomerulus and anatomical-structure JSON (lists of GeoJSON Features with
Polygon or MultiPolygon geometry, holes included), GeoJSON FeatureCollections (QuPath exports,
hubkit's own output) and LabelMe JSON. Vertices are ``[x, y]`` = ``[col, row]`` in full-resolution
pixels, with pixel ``(row, col)`` covering the square ``[col, col + 1) x [row, row + 1)`` (QuPath's
convention). Arrays and windows use ``(row, col)`` / ``(height, width)`` as everywhere in hubkit.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
from affine import Affine

from hubkit._io import atomic_write, read_json
from hubkit.errors import AnnotationError
from hubkit.formats import rle
from hubkit.slides.base import scaled_size
from hubkit.window import Window, as_window

__all__ = ["CLASS_COLOURS", "Feature", "load_features", "rasterize", "features_to_rle", "mask_to_features", "to_geojson",
           "save_geojson"]


@dataclass
class Feature:
    """One annotated object.

    Attributes:
        geometry: GeoJSON ``Polygon`` or ``MultiPolygon`` dict, coordinates ``[x, y]`` (col, row).
        label: its class name (``"glomerulus"``, ``"Cortex"``, ...).
        properties: any other properties it carried (measurements, confidence, ...).
    """

    geometry: dict
    label: str = "glomerulus"
    properties: dict = field(default_factory=dict)


#: Coordinates beyond this many pixels cannot be placed by GDAL's rasteriser (32-bit pixel indices).
_MAX_COORD = 2**31 - 1


def _label_of(props: dict, default: str) -> str:
    cls = props.get("classification")
    if isinstance(cls, dict) and cls.get("name"):
        return str(cls["name"])
    for key in ("name", "label"):
        if props.get(key):
            return str(props[key])
    return default


def _check_rings(geometry: dict, where: str) -> dict:
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind not in ("Polygon", "MultiPolygon"):
        raise AnnotationError(f"{where}: geometry type {kind!r} is not supported; expected Polygon or MultiPolygon")
    polys = [geometry.get("coordinates")] if kind == "Polygon" else geometry.get("coordinates")
    try:
        rings = [np.asarray(ring, dtype=float) for poly in polys for ring in poly]
    except (TypeError, ValueError) as err:
        raise AnnotationError(f"{where}: malformed {kind} coordinates ({err})") from None
    for arr in rings:
        if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 3:
            raise AnnotationError(f"{where}: malformed {kind} coordinates (a ring needs at least 3 [x, y] vertices)")
        if not np.isfinite(arr).all():
            raise AnnotationError(f"{where}: malformed {kind} coordinates (non-finite coordinates)")
        if np.abs(arr).max() > _MAX_COORD:
            raise AnnotationError(f"{where}: a vertex lies {np.abs(arr).max():.0f} px out, beyond the "
                                  f"{_MAX_COORD} px a rasteriser can place (a unit or scale mistake?)")
    return geometry


def _from_labelme(doc: dict, name: str) -> list[Feature]:
    shapes = doc.get("shapes")
    if not isinstance(shapes, list):
        raise AnnotationError(f"{name}: LabelMe 'shapes' must be a list, got {type(shapes).__name__}")
    out = []
    for i, shape in enumerate(shapes):
        where = f"{name}: LabelMe shape {i}"
        if not isinstance(shape, dict):
            raise AnnotationError(f"{where} is not an object")
        kind, pts = shape.get("shape_type", "polygon"), shape.get("points", [])
        if kind not in ("polygon", "rectangle"):
            raise AnnotationError(f"{where} is a {kind!r}; only polygons and rectangles are supported")
        try:
            ring = [[float(x), float(y)] for x, y in pts]
        except (TypeError, ValueError):
            raise AnnotationError(f"{where}: 'points' must be a list of [x, y] numbers") from None
        if kind == "rectangle":
            if len(ring) != 2:
                raise AnnotationError(f"{where}: a rectangle has 2 points, got {len(ring)}")
            (x0, y0), (x1, y1) = ring
            ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
        if ring and ring[0] != ring[-1]:
            ring.append(ring[0])
        geometry = _check_rings({"type": "Polygon", "coordinates": [ring]}, where)
        out.append(Feature(geometry, str(shape.get("label", "glomerulus")), {}))
    return out


def _from_geojson(items, name: str, default_label: str) -> list[Feature]:
    if not isinstance(items, list):
        raise AnnotationError(f"{name}: 'features' must be a list, got {type(items).__name__}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "geometry" not in item:
            raise AnnotationError(f"{name}: item {i} is not a GeoJSON Feature")
        props = item.get("properties")
        if not isinstance(props, (dict, type(None))):
            raise AnnotationError(f"{name}: feature {i}: 'properties' must be an object or null, "
                                  f"got {type(props).__name__}")
        props = dict(props or {})
        geometry = _check_rings(item["geometry"], f"{name}: feature {i}")
        out.append(Feature(geometry, _label_of(props, default_label), props))
    return out


def load_features(path, default_label: str = "glomerulus") -> list[Feature]:
    """Read every polygon of an annotation file.

    Args:
        path: competition JSON (a list of Features), a GeoJSON FeatureCollection, or LabelMe JSON.
        default_label: label for features that carry none.

    Raises:
        AnnotationError: unreadable JSON, an unknown layout or malformed geometry; names the file.
    """
    path = Path(path)
    doc = read_json(path, AnnotationError, "annotation file", missing="no such file")
    name = str(path)
    if isinstance(doc, list):
        return _from_geojson(doc, name, default_label)
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        return _from_geojson(doc.get("features", []), name, default_label)
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        return _from_geojson([doc], name, default_label)
    if isinstance(doc, dict) and "shapes" in doc:
        return _from_labelme(doc, name)
    raise AnnotationError(f"{name}: not a list of Features, a FeatureCollection or LabelMe JSON")


def rasterize(
    features: Iterable[Feature],
    shape: tuple[int, int],
    window=None,
    scale: float = 1.0,
    labels: Optional[Iterable[str]] = None,
) -> np.ndarray:
    """Burn polygons into a mask.

    A pixel is inside when its centre is (holes excluded).

    Args:
        features: from `load_features` or `mask_to_features`.
        shape: ``(height, width)`` of the whole image, full resolution.
        window: ``(row, col, height, width)`` to rasterise; the whole image when None.
        scale: downscale factor; the mask is ``scaled_size(height, scale)`` x
            ``scaled_size(width, scale)``, the same grid `BaseSlide.read` returns.
        labels: keep only features with these labels (case-insensitive; a QuPath derived class such
            as ``Glomerulus: Sclerotic`` also counts as its base class ``Glomerulus``); all when None.

    Returns:
        ``(h, w)`` uint8 mask of 0 and 1.
    """
    win = Window(0, 0, int(shape[0]), int(shape[1])) if window is None else as_window(window)
    out_shape = (scaled_size(win.height, scale), scaled_size(win.width, scale))
    keep = None if labels is None else {str(x).lower() for x in labels}
    geoms = [f.geometry for f in features
             if keep is None or f.label.lower() in keep or f.label.split(":")[0].strip().lower() in keep]
    if not geoms:
        return np.zeros(out_shape, np.uint8)
    transform = Affine(win.width / out_shape[1], 0, win.col, 0, win.height / out_shape[0], win.row)
    from rasterio import features as rio_features  # GDAL loads where polygons are drawn, not on import

    return rio_features.rasterize(
        ((g, 1) for g in geoms), out_shape=out_shape, transform=transform, fill=0, dtype=np.uint8
    )


def features_to_rle(features: Iterable[Feature], shape: tuple[int, int], labels: Optional[Iterable[str]] = None,
                    strip_width: int = 2048) -> str:
    """The competition RLE of rasterised polygons, built in full-height column strips (bounded memory)."""
    features = list(features)
    encoder = rle.StripEncoder(int(shape[0]), int(shape[1]))
    for col in range(0, int(shape[1]), strip_width):
        width = min(strip_width, int(shape[1]) - col)
        encoder.add(rasterize(features, shape, window=(0, col, int(shape[0]), width), labels=labels))
    return encoder.finish()


def mask_to_features(
    mask: np.ndarray,
    offset: tuple[int, int] = (0, 0),
    scale: float = 1.0,
    label: str = "glomerulus",
    connectivity: int = 8,
) -> list[Feature]:
    """Polygons of a mask's foreground: one feature per connected component, holes as inner rings.

    Args:
        mask: ``(h, w)`` array, non-zero = foreground.
        offset: full-resolution ``(row, col)`` of the mask's top-left pixel.
        scale: downscale factor of the mask relative to full resolution.
        label: the label of every feature.
        connectivity: 4 or 8, which neighbours join a component.

    Returns:
        Features in full-resolution coordinates, so that ``rasterize(..., window, scale)`` with
        the same grid gives the mask back.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise AnnotationError(f"mask must be 2-D (height, width), got shape {mask.shape}")
    binary = (mask != 0).astype(np.uint8)
    from rasterio import features as rio_features  # GDAL loads where masks are traced, not on import

    transform = Affine(scale, 0, offset[1], 0, scale, offset[0])
    out = []
    for geometry, value in rio_features.shapes(binary, mask=binary.astype(bool), connectivity=connectivity, transform=transform):
        if value:
            out.append(Feature(dict(geometry), label, {}))
    return out


#: QuPath class colours (RGB) by label; any other label is drawn in blue.
CLASS_COLOURS = {"glomerulus": (255, 0, 0), "Glomerulus: Non-sclerotic": (0, 170, 0),
                 "Glomerulus: Sclerotic": (170, 0, 170)}


def _qupath_properties(feature: Feature) -> dict:
    props = {k: v for k, v in feature.properties.items() if k not in ("classification", "objectType")}
    props["objectType"] = "annotation"
    props["classification"] = {"name": feature.label, "color": list(CLASS_COLOURS.get(feature.label, (0, 128, 255)))}
    return props


def to_geojson(features: Iterable[Feature]) -> dict:
    """A GeoJSON FeatureCollection that QuPath imports (File > Import objects)."""
    items = []
    for f in features:
        geometry = {"type": f.geometry["type"], "coordinates": _as_lists(f.geometry["coordinates"])}
        items.append({"type": "Feature", "geometry": geometry, "properties": _qupath_properties(f)})
    return {"type": "FeatureCollection", "features": items}


def _as_lists(coords):
    """Tuples to lists, and whole-valued floats to ints, for compact JSON."""
    if isinstance(coords, (list, tuple)) and coords and isinstance(coords[0], (int, float)):
        return [int(v) if float(v).is_integer() and math.isfinite(v) else float(v) for v in coords]
    return [_as_lists(c) for c in coords]


def save_geojson(path, features: Iterable[Feature]) -> Path:
    """Write `to_geojson` to ``path``; returns the path."""
    path = Path(path)
    with atomic_write(path) as f:
        f.write(json.dumps(to_geojson(features)))
    return path
