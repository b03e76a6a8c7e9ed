"""Synthetic business cards with known ground truth, for the OCR tests and bench/.

A card is drawn with Pillow in Debian's DejaVu or Liberation fonts at 300 dpi
(1050 x 600 px).  `photo=True` then treats it like a phone picture: the card lies
on a table, seen at a slant and rotated, smaller in the frame, slightly out of
focus, with sensor noise, uneven light and JPEG compression.  Every address is under
example.com/.org/.net.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy
import phonenumbers
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/truetype/liberation2"),
    Path("/usr/share/fonts/truetype/liberation"),
)
FONT_PAIRS = (  # (regular, bold)
    ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"),
    ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"),
    ("LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf"),
)

GIVEN = tuple(
    [
        "Jürgen",
        "Björn",
        "Sören",
        "Anna",
        "Lukas",
        "Sophie",
        "Martin",
        "Claire",
        "Henrik",
        "Günther",
        "Jörg",
        "Maria",
        "Felix",
        "Lena",
        "Tobias",
        "Käthe",
        "Oliver",
        "Hannah",
    ]
)
FAMILY = tuple(
    [
        "Müller",
        "Schröder",
        "Becker",
        "Fischer",
        "Krämer",
        "Wagner",
        "Hoffmann",
        "Schäfer",
        "Koch",
        "Richter",
        "Neumann",
        "Schwarz",
        "Zimmermann",
        "Braun",
        "Hartmann",
        "Lange",
    ]
)
TITLES = (
    "Geschäftsführer",
    "Senior Software Engineer",
    "Head of Sales",
    "Projektleiterin",
    "Marketing Manager",
    "Vertriebsleiter",
    "Chief Technology Officer",
    "Beraterin",
    "Product Designer",
    "Entwickler",
)
STEMS = (
    "Nordlicht Software",
    "Krämer Bau",
    "Blue Harbor Consulting",
    "Alpenblick Systeme",
    "Rheinwerk Data",
    "Lindgrün Energie",
    "Hafenkante Logistik",
    "Brightside Labs",
)
SUFFIXES = ("GmbH", "AG", "KG", "SE", "GmbH & Co. KG", "Ltd", "Inc.", "UG")
STREETS = (
    "Hauptstraße 12, 10115 Berlin",
    "Am Hafen 3, 20457 Hamburg",
    "Lindenallee 48, 50667 Köln",
    "Marienplatz 7, 80331 München",
)


@dataclass(frozen=True, slots=True)
class CardTruth:
    name: str
    title: str
    company: str
    email: str
    phone: str  # E.164
    mobile: str  # E.164
    website: str


def find_fonts() -> list[tuple[Path, Path]]:
    """(regular, bold) font files present on this machine; empty when none is installed."""
    found = []
    for regular, bold in FONT_PAIRS:
        for folder in FONT_DIRS:
            if (folder / regular).is_file() and (folder / bold).is_file():
                found.append((folder / regular, folder / bold))
                break
    return found


def _ascii(text: str) -> str:
    for umlaut, plain in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(umlaut, plain)
    return text


def _german_number(rng: random.Random, prefix: str, digits: int) -> str:
    while True:
        national = prefix + "".join(rng.choice("0123456789") for _ in range(digits))
        number = phonenumbers.parse(national, "DE")
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def random_truth(rng: random.Random) -> CardTruth:
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    stem = rng.choice(STEMS)
    slug = _ascii(stem.split()[0].lower())
    domain = f"{slug}.example.{rng.choice(('com', 'org', 'net'))}"
    first, last = _ascii(given.lower()), _ascii(family.lower())
    local = rng.choice((f"{first}.{last}", f"{first[0]}.{last}", f"{first}{last}", last))
    return CardTruth(
        name=f"{given} {family}",
        title=rng.choice(TITLES),
        company=f"{stem} {rng.choice(SUFFIXES)}",
        email=f"{local}@{domain}",
        phone=_german_number(rng, rng.choice(("030", "040", "089", "0221")), 7),
        mobile=_german_number(rng, rng.choice(("0151", "0160", "0171")), 8),
        website=f"www.{domain}",
    )


def _printed(e164: str, rng: random.Random) -> str:
    number = phonenumbers.parse(e164)
    if rng.random() < 0.5:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def render(truth: CardTruth, fonts: tuple[Path, Path], rng: random.Random) -> Image.Image:
    """A clean 1050 x 600 card: name, title and company on the left, contact block below."""
    regular, bold = fonts
    paper = tuple(rng.randint(235, 255) for _ in range(3))
    ink = tuple(rng.randint(0, 60) for _ in range(3))
    card = Image.new("RGB", (1050, 600), paper)
    draw = ImageDraw.Draw(card)
    big, mid, small = (
        ImageFont.truetype(str(bold), rng.randint(50, 60)),
        ImageFont.truetype(str(regular), rng.randint(30, 34)),
        ImageFont.truetype(str(regular), rng.randint(27, 30)),
    )
    if rng.random() < 0.5:  # name first
        draw.text((60, 50), truth.name, font=big, fill=ink)
        draw.text((60, 125), truth.title, font=mid, fill=ink)
        draw.text((60, 185), truth.company, font=mid, fill=ink)
    else:  # company first, as a letterhead
        draw.text((60, 40), truth.company, font=mid, fill=ink)
        draw.text((60, 105), truth.name, font=big, fill=ink)
        draw.text((60, 180), truth.title, font=mid, fill=ink)
    phone_label, mobile_label = rng.choice((("Tel.", "Mobil"), ("T:", "M:"), ("Phone", "Mobile")))
    mail_label = rng.choice(("", "E-Mail: ", "E: "))
    contact_lines = [
        f"{phone_label} {_printed(truth.phone, rng)}",
        f"{mobile_label} {_printed(truth.mobile, rng)}",
        f"{mail_label}{truth.email}",
        truth.website,
        rng.choice(STREETS),
    ]
    for i, text in enumerate(contact_lines):
        draw.text((60, 300 + i * 52), text, font=small, fill=ink)
    return card


def _perspective(image: Image.Image, rng: random.Random, tilt: float) -> Image.Image:
    """The image seen at a slant: each corner moved by up to `tilt` of the size."""
    w, h = image.size
    corners = [(0, 0), (w, 0), (w, h), (0, h)]
    seen = [
        (x + rng.uniform(-tilt, tilt) * w, y + rng.uniform(-tilt, tilt) * h) for x, y in corners
    ]
    # PERSPECTIVE maps output (x, y) to input ((ax+by+c)/(gx+hy+1), (dx+ey+f)/(gx+hy+1))
    rows, rhs = [], []
    for (x, y), (u, v) in zip(seen, corners, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    coeffs = numpy.linalg.solve(numpy.array(rows, float), numpy.array(rhs, float))
    return image.transform(image.size, Image.PERSPECTIVE, tuple(coeffs), Image.BICUBIC)


def photograph(card: Image.Image, rng: random.Random) -> Image.Image:
    """The card as a phone photo: on a table at a slant and an angle, at a distance, soft
    focus, sensor noise, light falloff (then saved as JPEG)."""
    table = Image.new("RGB", (1400, 1000), tuple(rng.randint(60, 140) for _ in range(3)))
    scale = rng.uniform(0.65, 0.95)
    card = card.resize((round(card.width * scale), round(card.height * scale)))
    card = _perspective(card.convert("RGBA"), rng, 0.04)
    rotated = card.rotate(rng.uniform(-12, 12), expand=True, resample=Image.BICUBIC)
    x = rng.randint(10, 1400 - rotated.width - 10)
    y = rng.randint(10, max(11, 1000 - rotated.height - 10))
    table.paste(rotated, (x, y), rotated)
    table = table.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 1.6)))
    noise = Image.effect_noise(table.size, rng.uniform(8, 16)).convert("RGB")
    table = Image.blend(table, noise, 0.12)
    light = Image.linear_gradient("L").resize(table.size).rotate(rng.choice((0, 90, 180, 270)))
    return Image.composite(table, table.point(lambda v: int(v * 0.75)), light)


def make_cards(
    directory: Path, count: int, *, photo: bool, seed: int = 7
) -> list[tuple[Path, CardTruth]]:
    """Write `count` cards as PNG (clean) or JPEG (photo) files; return them with their truth."""
    fonts = find_fonts()
    if not fonts:
        raise FileNotFoundError(
            "no DejaVu or Liberation font found (apt-get install fonts-dejavu-core)"
        )
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    cards = []
    for i in range(count):
        truth = random_truth(rng)
        image = render(truth, fonts[i % len(fonts)], rng)
        if photo:
            path = directory / f"photo-{i:03d}.jpg"
            photograph(image, rng).save(path, quality=rng.randint(65, 85))
        else:
            path = directory / f"card-{i:03d}.png"
            image.save(path)
        cards.append((path, truth))
    return cards
