"""Where the cards are on a page: a flatbed scan of several cards, a phone photo of a
few cards on a table, or one card filling the image.

OpenCV does the geometry: the page is reduced to a small grey image, everything
that differs from the background (the colour of the page's border) or draws an
edge becomes a mask, each outer contour of that mask is a candidate, and a
candidate is a card when its minimum-area rectangle is big enough, has a card's
proportions (ISO 7810 is 85.6 x 54 mm; square and long cards exist) and is mostly
filled.  Each card is then cut out of the full-size page and straightened with a
perspective transform from its four corners, so a slanted photo or a card laid a
little crooked on the glass becomes an upright rectangle.  A page where fewer
than two cards are found is one card, read whole as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy
    from PIL import Image

DETECT_SIDE = 1000  # px on the long side of the image the cards are searched on
MIN_AREA = 0.012  # of the page: a card on an A3 flatbed is still 2 %
MAX_AREA = 0.6  # of the page: more is one card filling the image
# long side / short side: ISO 7810 cards are 1.59, US 1.75, square and slim cards exist
MIN_RATIO, MAX_RATIO = 1.0, 2.4
MIN_FILL = 0.8  # contour area / its rectangle's area: a card is a filled rectangle
MAX_CARDS = 30  # an A3 page of the smallest cards; more is texture, not cards
MIN_PRINT = 0.03  # of a card's pixels on an edge (its text); a bare patch has almost none


@dataclass(frozen=True, slots=True)
class Quad:
    """A card's four corners on the page (x, y in page pixels), clockwise from top-left."""

    corners: tuple[tuple[float, float], ...]

    @property
    def center(self) -> tuple[float, float]:
        return (
            sum(x for x, _ in self.corners) / 4,
            sum(y for _, y in self.corners) / 4,
        )

    def scaled(self, factor: float) -> Quad:
        return Quad(tuple((x * factor, y * factor) for x, y in self.corners))


def find_cards(image: Image.Image) -> list[Quad]:
    """The cards on the page in reading order (rows top to bottom, left to right);
    an empty list when the page is one card (or nothing card-shaped is found).
    Cards unlike the background (a dark lid, a table) are found by colour; white cards
    on a white lid by their edges and shadows, with the text inside gathered to them."""
    import cv2
    import numpy as np

    scale = DETECT_SIDE / max(image.size)
    small = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    rgb = np.asarray(small.convert("RGB"))
    page_area = rgb.shape[0] * rgb.shape[1]
    edges = _edges(rgb)
    quads: list[list[tuple[float, float]]] = []
    for mask in (_unlike_background(rgb), edges):
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        quads = [
            q
            for g in _gathered(contours, page_area)
            if (q := _card_quad(g, page_area)) and _whole_with_print(q, edges)
        ]
        if len(quads) >= 2:
            break
    if not 2 <= len(quads) <= MAX_CARDS:
        return []
    return _reading_order([Quad(tuple((x / scale, y / scale) for x, y in q)) for q in quads])


def _unlike_background(rgb: numpy.ndarray) -> numpy.ndarray:
    """Pixels whose colour is far from the page border's (Otsu's threshold on the distance)."""
    import cv2
    import numpy as np

    lab = cv2.cvtColor(cv2.GaussianBlur(rgb, (7, 7), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
    border = np.concatenate([lab[:4].reshape(-1, 3), lab[-4:].reshape(-1, 3),
                             lab[:, :4].reshape(-1, 3), lab[:, -4:].reshape(-1, 3)])  # fmt: skip
    distance = np.linalg.norm(lab - np.median(border, axis=0), axis=2)
    distance = np.clip(distance * 4, 0, 255).astype(np.uint8)
    _, unlike = cv2.threshold(distance, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
    return cv2.morphologyEx(unlike, cv2.MORPH_OPEN, kernel)


def _edges(rgb: numpy.ndarray) -> numpy.ndarray:
    """Edges (card outlines, shadows, text), thickened so that letters join into lines."""
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (3, 3), 0), 20, 60)
    return cv2.dilate(edges, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5)))


def _gathered(contours: Sequence[numpy.ndarray], page_area: int) -> list[numpy.ndarray]:
    """The contours' points, grouped: largest first, each shape joins the group whose
    rectangle holds its centre (the text inside a card whose outline is only partly
    visible joins that outline)."""
    import cv2
    import numpy as np

    shapes = sorted(
        (c for c in contours if cv2.contourArea(c) >= 2e-4 * page_area),
        key=lambda c: -float(np.prod(cv2.minAreaRect(c)[1])),
    )
    groups: list[numpy.ndarray] = []
    for shape in shapes:
        (cx, cy), _, _ = cv2.minAreaRect(shape)
        for i, group in enumerate(groups):
            box = cv2.boxPoints(cv2.minAreaRect(group)).reshape(-1, 1, 2)
            if cv2.pointPolygonTest(box, (cx, cy), False) >= 0:
                groups[i] = np.concatenate([group, shape])
                break
        else:
            groups.append(shape)
    return groups


def _card_quad(points: numpy.ndarray, page_area: int) -> list[tuple[float, float]] | None:
    """The four corners of a group of points with a card's size and proportions: the
    corners of its outline when that is a quadrilateral (a card seen at a slant), else
    of its minimum-area rectangle."""
    import cv2

    rect = cv2.minAreaRect(points)
    (_, _), (w, h), _ = rect
    if not MIN_AREA * page_area <= w * h <= MAX_AREA * page_area:
        return None
    if min(w, h) < 1 or not MIN_RATIO <= max(w, h) / min(w, h) <= MAX_RATIO:
        return None
    hull = cv2.convexHull(points)
    approx = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True)
    solid = len(approx) == 4 and cv2.contourArea(approx) >= MIN_FILL * w * h
    corners = approx.reshape(-1, 2) if solid else cv2.boxPoints(rect)
    return _clockwise([(float(x), float(y)) for x, y in corners])


def _whole_with_print(quad: list[tuple[float, float]], edges: numpy.ndarray) -> bool:
    """Inside the frame (a card cut off by the photo's edge is not one to read) and with
    print on it (a patch of light on the table has no edges inside)."""
    import cv2
    import numpy as np

    height, width = edges.shape
    margin = 0.01 * max(height, width)
    if any(not (margin <= x <= width - margin and margin <= y <= height - margin)
           for x, y in quad):  # fmt: skip
        return False
    inside = np.zeros_like(edges)
    cv2.fillConvexPoly(inside, np.array(quad, dtype=np.int32), 255)
    area = max(int(np.count_nonzero(inside)), 1)
    return bool(np.count_nonzero(cv2.bitwise_and(edges, inside)) / area >= MIN_PRINT)


def _clockwise(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Top-left, top-right, bottom-right, bottom-left (image y grows downwards)."""
    by_sum = sorted(points, key=lambda p: p[0] + p[1])
    by_diff = sorted(points, key=lambda p: p[0] - p[1])
    return [by_sum[0], by_diff[-1], by_sum[-1], by_diff[0]]


def _reading_order(quads: list[Quad]) -> list[Quad]:
    """Rows (cards whose centres are within half a card's height) top to bottom, each
    left to right."""
    import math

    def height(q: Quad) -> float:
        (x0, y0), _, _, (x3, y3) = q.corners
        return math.dist((x0, y0), (x3, y3))

    rows: list[list[Quad]] = []
    for quad in sorted(quads, key=lambda q: q.center[1]):
        if rows and abs(quad.center[1] - rows[-1][0].center[1]) < height(rows[-1][0]) / 2:
            rows[-1].append(quad)
        else:
            rows.append([quad])
    return [q for row in rows for q in sorted(row, key=lambda q: q.center[0])]


def crop(image: Image.Image, quad: Quad) -> Image.Image:
    """The card cut out of the page and straightened into an upright rectangle."""
    import math

    import cv2
    import numpy as np
    from PIL import Image

    tl, tr, br, bl = quad.corners
    width = round(max(math.dist(tl, tr), math.dist(bl, br)))
    height = round(max(math.dist(tl, bl), math.dist(tr, br)))
    source = np.array(quad.corners, dtype=np.float32)
    target = np.array([(0, 0), (width - 1, 0), (width - 1, height - 1), (0, height - 1)],
                      dtype=np.float32)  # fmt: skip
    matrix = cv2.getPerspectiveTransform(source, target)
    warped = cv2.warpPerspective(
        np.asarray(image.convert("RGB")), matrix, (width, height), flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    return Image.fromarray(warped)
