"""Synthetic business cards with known ground truth, for the OCR tests and bench/.

A card is drawn with Pillow in Debian's DejaVu or Liberation fonts at 300 dpi
(1050 x 600 px).  `photo=True` then treats it like a phone picture: the card lies
on a table, seen at a slant and rotated, smaller in the frame, slightly out of
focus, with sensor noise, uneven light and JPEG compression.  Every address is under
example.com/.org/.net.
"""

from __future__ import annotations

import random
import unicodedata
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
    return image.transform(
        image.size, Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.BICUBIC
    )


def photograph(card: Image.Image, rng: random.Random, zoom: float = 1.0) -> Image.Image:
    """The card as a phone photo: on a table at a slant and an angle, at a distance, soft
    focus, sensor noise, light falloff (then saved as JPEG).  The frame is 1400 x 1000 px
    times `zoom`; the blur stays a pixel or two, as a sharper sensor's does."""
    table = Image.new(
        "RGB",
        (round(1400 * zoom), round(1000 * zoom)),
        tuple(rng.randint(60, 140) for _ in range(3)),
    )
    scale = rng.uniform(0.65, 0.95) * zoom
    card = card.resize((round(card.width * scale), round(card.height * scale)))
    card = _perspective(card.convert("RGBA"), rng, 0.04)
    rotated = card.rotate(rng.uniform(-12, 12), expand=True, resample=Image.Resampling.BICUBIC)
    x = rng.randint(10, table.width - rotated.width - 10)
    y = rng.randint(10, max(11, table.height - rotated.height - 10))
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


# ------------------------------------------------------------------ the held-out set
#
# Cards unlike ../shared/cards and unlike the ones above: other countries, many layouts
# and name styles (capitals, lower case, honorifics, suffixes, bilingual forms,
# names that are also words, company lines that look like names), some with a QR code.
# Names are drawn from lists chosen for this set, not from the extractor's dictionary.

CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")

HELD_GIVEN = ("Emily", "Daniel", "Olivia", "Mateo", "Lucía", "Beatriz", "Rafael", "Aisha",
              "Priya", "Arjun", "Chloé", "Lars", "Ingrid", "Tomasz", "Zofia", "Kwame",
              "Fatima", "Nikolai", "Elena", "Marco")  # fmt: skip
HELD_FAMILY = ("Garcia", "Okafor", "Kowalski", "Nakamura", "Silva", "Rossi", "Novak", "Haddad",
               "O'Brien", "Sharma", "Lindqvist", "Moreau", "Petrov", "Mensah", "Costa",
               "Fernández", "Jansen", "Dubois")  # fmt: skip
WORD_GIVEN = ("Rose", "Mark", "Bill", "Hope", "Summer", "Grace", "Joy", "Will", "Faith", "Jack")
WORD_FAMILY = ("Baker", "Hill", "Young", "Rich", "Fox", "Stone", "Field", "Banks", "Church")
BILINGUAL = (("김민준", "Minjun Kim"), ("이서연", "Seoyeon Lee"), ("田中 花子", "Hanako Tanaka"),
             ("佐藤 健", "Ken Sato"), ("王伟", "Wei Wang"), ("陈静", "Jing Chen"),
             ("박지훈", "Jihoon Park"))  # fmt: skip
HONORIFICS = ("Dr.", "Prof.", "Prof. Dr.", "Dipl.-Ing.", "Mag.", "TS.")
NAME_SUFFIXES = ("Jr.", "III", "MBA", "PhD")
HELD_TITLES = ("Account Manager", "Research Scientist", "Sales Director", "Founder & CEO",
               "Software Engineer", "Operations Manager", "Consultant", "Head of Marketing",
               "Diretora Comercial", "Chargé d'affaires")  # fmt: skip
# Company lines: some look like a person's name or like plain words, without a legal form.
HELD_COMPANIES = ("Bay Tech", "Stone & Field Partners", "Harbor Light Studio", "Mensah Design",
                  "Northwind Traders Ltd", "Pixel Forge Inc.", "Verde Agro S.A.",
                  "Sakura Robotics Co., Ltd.", "Blue Fern Labs", "Golden Gate Analytics LLC",
                  "Atlas Freight GmbH", "Orchid Health Pvt. Ltd.")  # fmt: skip
# (region, address line naming the country, how local numbers are printed)
HELD_PLACES = (
    ("US", "500 Market St, San Francisco, CA 94105, USA"),
    ("GB", "10 Downing Lane, Leeds LS1 4AP, United Kingdom"),
    ("IN", "12 MG Road, Bengaluru 560001, India"),
    ("BR", "Av. Paulista 1000, São Paulo - SP, Brasil"),
    ("FR", "8 rue de Rivoli, 75004 Paris, France"),
    ("DE", "Lindenallee 48, 50667 Köln, Deutschland"),
    ("VN", "25 Lý Thường Kiệt, Hà Nội, Vietnam"),
    ("JP", "1-2-3 Shibuya, Tokyo 150-0002, Japan"),
)
NAME_STYLES = ("plain", "capitals", "lower", "honorific", "suffix", "bilingual", "word-names",
               "company-looking")  # fmt: skip
LAYOUTS = ("left", "centered", "right", "name-last", "two-column", "logo")
QR_KINDS = ("", "", "vcard", "mecard", "mailto", "url")


@dataclass(frozen=True, slots=True)
class HeldOutTruth:
    name: str  # what the contact's name must be: mixed case, Latin, no honorific
    honorific: str
    printed_name: str  # as on the card
    title: str
    company: str
    email: str  # the address the contact must get
    printed_email: str  # "" when only the QR code has it
    phones: tuple[str, ...]  # E.164
    website: str
    region: str
    address: str
    style: str
    layout: str
    qr: str  # "", "vcard", "mecard", "mailto" or "url"
    qr_damage: str  # "", "rotated" or "covered"


def _number(rng: random.Random, region: str, mobile: bool) -> str:
    kind = (
        phonenumbers.PhoneNumberType.MOBILE if mobile else phonenumbers.PhoneNumberType.FIXED_LINE
    )
    example = phonenumbers.example_number_for_type(region, kind)
    assert example is not None
    digits = str(example.national_number)
    for _ in range(200):  # vary the subscriber part, keep the number valid
        tail = "".join(rng.choice("0123456789") for _ in range(4))
        candidate = phonenumbers.parse(f"+{example.country_code}{digits[:-4]}{tail}", None)
        if phonenumbers.is_valid_number(candidate):
            return phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def held_out_truth(rng: random.Random, style: str, layout: str, qr: str) -> HeldOutTruth:
    given, family = rng.choice(HELD_GIVEN), rng.choice(HELD_FAMILY)
    honorific, native = "", ""
    if style == "word-names":
        given, family = rng.choice(WORD_GIVEN), rng.choice(WORD_FAMILY)
    if style == "bilingual":
        native, latin = rng.choice(BILINGUAL)
        given, family = latin.split()
    name = f"{given} {family}"
    printed = name
    if style == "capitals":
        printed = name.upper()
    elif style == "lower":
        printed = name.lower()
    elif style == "honorific":
        honorific = rng.choice(HONORIFICS)
        printed = f"{honorific} {name}"
    elif style == "suffix":
        suffix = rng.choice(NAME_SUFFIXES)
        name = (
            f"{name}, {suffix}"
            if suffix in ("MBA", "PhD") and rng.random() < 0.5
            else (f"{name} {suffix}")
        )
        printed = name
    elif style == "bilingual":
        printed = f"{native} ({name})" if rng.random() < 0.6 else f"{name} {native}"
    company = rng.choice(HELD_COMPANIES)
    if style == "company-looking":
        company = rng.choice(("Bay Tech", "Stone & Field", "Harbor Light", "Rose Garden Café"))
    region, address = rng.choice(HELD_PLACES)
    slug = _ascii("".join(ch for ch in company.split()[0].lower() if ch.isalpha())) or "firm"
    domain = f"{slug}.example.{rng.choice(('com', 'org', 'net'))}"
    first, last = (_ascii(p.lower().replace("'", "")) for p in (given, family))
    first, last = (
        "".join(c for c in unicodedata.normalize("NFKD", p) if c.isascii()) for p in (first, last)
    )
    local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", first, f"{last}.{first[0]}"))
    email = f"{local}@{domain}"
    phones = (_number(rng, region, False), _number(rng, region, True))
    printed_email = email if qr not in ("vcard", "mecard", "mailto") or rng.random() < 0.6 else ""
    return HeldOutTruth(
        name=name, honorific=honorific, printed_name=printed,
        title=rng.choice(HELD_TITLES), company=company, email=email,
        printed_email=printed_email, phones=phones, website=f"www.{domain}", region=region,
        address=address, style=style, layout=layout, qr=qr,
        qr_damage=rng.choice(("", "rotated", "covered")) if qr else "",
    )  # fmt: skip


def qr_payload(truth: HeldOutTruth) -> str:
    given, _, family = truth.name.partition(" ")
    phone = truth.phones[1]
    if truth.qr == "vcard":
        return (
            "BEGIN:VCARD\r\nVERSION:3.0\r\n"
            f"N:{family};{given};;{truth.honorific};\r\nFN:{truth.name}\r\n"
            f"ORG:{truth.company}\r\nTITLE:{truth.title}\r\nEMAIL;TYPE=work:{truth.email}\r\n"
            f"TEL;TYPE=cell:{phone}\r\nURL:https://{truth.website}\r\nEND:VCARD\r\n"
        )
    if truth.qr == "mecard":

        def esc(text: str) -> str:
            return "".join("\\" + ch if ch in "\\;,:" else ch for ch in text)

        return (
            f"MECARD:N:{esc(family)},{esc(given)};TEL:{phone};EMAIL:{esc(truth.email)};"
            f"URL:{esc('https://' + truth.website)};ORG:{esc(truth.company)};;"
        )
    if truth.qr == "mailto":
        return f"mailto:{truth.email}"
    return f"https://{truth.website}/contact"


def qr_image(payload: str, size: int, rng: random.Random, damage: str) -> Image.Image:
    """A QR code (segno) of about `size` px, rotated or partly covered."""
    import io

    import segno

    # printers use level M; a code that is partly covered needs H to survive
    code = segno.make(payload, error="h" if damage == "covered" else "m", micro=False)
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=max(2, size // (code.symbol_size()[0])), border=2)
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB")
    if damage == "covered":  # a thumb or a sticker over a corner of the data area
        draw = ImageDraw.Draw(image)
        w, h = image.size
        draw.rectangle((int(w * 0.62), int(h * 0.62), int(w * 0.85), int(h * 0.85)), fill="black")
    if damage == "rotated":
        image = image.rotate(rng.uniform(20, 70), expand=True, fillcolor="white")
    return image


def _fit(
    draw: ImageDraw.ImageDraw, text: str, path: Path, size: int, width: int
) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(str(path), size)
    while size > 14 and draw.textlength(text, font=font) > width:
        size -= 2
        font = ImageFont.truetype(str(path), size)
    return font


def render_held_out(
    truth: HeldOutTruth, fonts: tuple[Path, Path], rng: random.Random
) -> Image.Image:
    regular, bold = fonts
    paper = tuple(rng.randint(232, 255) for _ in range(3))
    ink = tuple(rng.randint(0, 70) for _ in range(3))
    card = Image.new("RGB", (1050, 600), paper)
    draw = ImageDraw.Draw(card)
    name_font_path = CJK_FONT if truth.style == "bilingual" else bold
    has_qr = bool(truth.qr)
    text_width = 640 if has_qr else 930
    mobile = phonenumbers.parse(truth.phones[1])
    fixed = phonenumbers.parse(truth.phones[0])
    fmt = phonenumbers.PhoneNumberFormat
    labels = rng.choice((("Tel.", "Mob."), ("T", "M"), ("Office", "Cell"), ("P:", "M:")))
    contact = [
        f"{labels[0]} {phonenumbers.format_number(fixed, fmt.INTERNATIONAL)}",
        f"{labels[1]} {phonenumbers.format_number(mobile, fmt.NATIONAL)}",
        *([truth.printed_email] if truth.printed_email else []),
        truth.website,
        truth.address,
    ]
    head = [(truth.printed_name, name_font_path, rng.randint(46, 58)),
            (truth.title, regular, rng.randint(28, 32)),
            (truth.company, regular, rng.randint(30, 34))]  # fmt: skip
    if truth.layout == "logo":  # the company big on top, as a logo
        head = [(truth.company.upper(), bold, 64), head[0], head[1]]
    if truth.layout == "name-last":
        head = [head[2], head[1], head[0]]

    def place(text: str, font: ImageFont.FreeTypeFont, y: int, column: tuple[int, int]) -> None:
        left, width = column
        length = draw.textlength(text, font=font)
        if truth.layout == "centered":
            x = left + (width - length) / 2
        elif truth.layout == "right":
            x = left + width - length
        else:
            x = left
        draw.text((x, y), text, font=font, fill=ink)

    if truth.layout == "two-column":
        y = 60
        for text, path, size in head:
            font = _fit(draw, text, path, size, 460)
            place(text, font, y, (50, 460))
            y += size + 30
        y = 60
        for text in contact:
            font = _fit(draw, text, regular, 24, 440 if not has_qr else 300)
            place(text, font, y, (560, 440))
            y += 48
    else:
        y = 40
        for text, path, size in head:
            font = _fit(draw, text, path, size, text_width)
            place(text, font, y, (50, text_width))
            y += size + 22
        y = max(y + 20, 290)
        for text in contact:
            font = _fit(draw, text, regular, 26, text_width)
            place(text, font, y, (50, text_width))
            y += 46
    if has_qr:
        code = qr_image(qr_payload(truth), 300, rng, truth.qr_damage)
        code.thumbnail((330, 330))
        card.paste(code, (1050 - code.width - 30, 600 - code.height - 30))
    return card


def make_held_out(
    directory: Path, count: int, *, seed: int = 2026, photo_share: float = 0.5
) -> list[tuple[Path, HeldOutTruth]]:
    """`count` held-out cards cycling through every name style and layout; about
    `photo_share` of them photographed.  Bilingual cards need the WenQuanYi font."""
    fonts = find_fonts()
    if not fonts:
        raise FileNotFoundError("no DejaVu or Liberation font found")
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    styles = [s for s in NAME_STYLES if s != "bilingual" or CJK_FONT.is_file()]
    cards = []
    for i in range(count):
        truth = held_out_truth(
            rng, styles[i % len(styles)], LAYOUTS[i % len(LAYOUTS)], QR_KINDS[i % len(QR_KINDS)]
        )
        image = render_held_out(truth, fonts[i % len(fonts)], rng)
        if rng.random() < photo_share:
            # 2100 x 1500 px: a phone photo has the resolution a dense vCard code needs
            path = directory / f"held-{i:03d}.jpg"
            photograph(image, rng, zoom=1.5).save(path, quality=rng.randint(70, 88))
        else:
            path = directory / f"held-{i:03d}.png"
            image.save(path)
        cards.append((path, truth))
    return cards


# ------------------------------------------------------------- pages of several cards
#
# What people feed a card reader after a conference: a flatbed page of several cards
# (white or black lid, 200-600 dpi, each card a little crooked), a phone photo of a
# few cards on a table, and a duplex PDF from a sheet-fed scanner (front, back, ...).
# Cards are 1050 x 600 px at 300 dpi (89 x 51 mm); gaps are about a centimetre.

BACKGROUNDS = ("light", "dark")


@dataclass(frozen=True, slots=True)
class PageSpec:
    cards: int
    background: str = "light"  # "light" (white lid), "dark" (black or open lid)
    dpi: int = 300
    columns: int = 2
    tilt: float = 2.5  # degrees each card may lie crooked


def _mm(mm: float, dpi: int) -> int:
    return round(mm / 25.4 * dpi)


def flatbed_page(
    cards: list[Image.Image], spec: PageSpec, rng: random.Random, *, a4: bool = True
) -> Image.Image:
    """The cards in a grid (row by row, as they are read back) on a scanner's glass
    (at least A4), or (`a4=False`) on just enough of a table."""
    scale = spec.dpi / 300
    rows = -(-len(cards) // spec.columns)
    cell_w, cell_h = round(1050 * scale) + _mm(12, spec.dpi), round(600 * scale) + _mm(12, spec.dpi)
    margin = _mm(15 if a4 else 35, spec.dpi)
    least = (_mm(210, spec.dpi), _mm(297, spec.dpi)) if a4 else (0, 0)
    size = (max(2 * margin + spec.columns * cell_w, least[0]),
            max(2 * margin + rows * cell_h, least[1]))  # fmt: skip
    light = spec.background == "light"
    lid = tuple(rng.randint(238, 252) for _ in range(3)) if light else (
        tuple(rng.randint(8, 35) for _ in range(3)))  # fmt: skip
    page = Image.new("RGB", size, lid)
    for i, card in enumerate(cards):
        small = card.resize((round(card.width * scale), round(card.height * scale)),
                            Image.Resampling.LANCZOS).convert("RGBA")  # fmt: skip
        turned = small.rotate(rng.uniform(-spec.tilt, spec.tilt), expand=True,
                              resample=Image.Resampling.BICUBIC)  # fmt: skip
        x = margin + (i % spec.columns) * cell_w + rng.randint(0, _mm(4, spec.dpi))
        y = margin + (i // spec.columns) * cell_h + rng.randint(0, _mm(4, spec.dpi))
        if light:  # the card's edge casts a thin shadow on a white lid
            shadow = Image.new("RGBA", turned.size, (90, 90, 90, 0))
            shadow.putalpha(turned.getchannel("A").filter(ImageFilter.GaussianBlur(3 * scale)))
            page.paste(shadow, (x + 2, y + 2), shadow)
        page.paste(turned, (x, y), turned)
    noise = Image.effect_noise(page.size, 6).convert("RGB")
    return Image.blend(page, noise, 0.04)


def table_photo(cards: list[Image.Image], rng: random.Random) -> Image.Image:
    """A phone photo of the cards on a table: seen at a slant, uneven light, noise."""
    columns = 2 if len(cards) > 2 else len(cards)
    spec = PageSpec(len(cards), "dark", 300, columns, tilt=8)
    table = flatbed_page(cards, spec, rng, a4=False)
    wood = Image.new("RGB", table.size, (rng.randint(110, 150), rng.randint(70, 95), 45))
    grain = Image.effect_noise(table.size, 30).convert("RGB").filter(ImageFilter.BoxBlur(2))
    mask = table.convert("L").point(lambda v: 255 if v > 60 else 0)
    scene = Image.composite(table, Image.blend(wood, grain, 0.2), mask)
    scene = _perspective(scene, rng, 0.05).convert("RGB")
    w, h = scene.size  # the corners the slant left empty are outside the frame
    scene = scene.crop((round(w * 0.06), round(h * 0.06), round(w * 0.94), round(h * 0.94)))
    scene.thumbnail((2400, 2400))
    scene = scene.filter(ImageFilter.GaussianBlur(1.0))
    light = Image.linear_gradient("L").resize(scene.size).rotate(rng.choice((0, 90, 180, 270)))
    return Image.composite(scene, scene.point(lambda v: int(v * 0.7)), light)


def back_side(truth: HeldOutTruth, kind: str, fonts: tuple[Path, Path]) -> Image.Image:
    """A card's back: "blank", "logo" (the company and a slogan) or "translated" (the
    same person in another language: the name as printed, a translated title, the
    same numbers, no e-mail)."""
    regular, bold = fonts
    card = Image.new("RGB", (1050, 600), (248, 248, 246))
    draw = ImageDraw.Draw(card)
    if kind == "logo":
        font = _fit(draw, truth.company.upper(), bold, 70, 900)
        draw.text((80, 220), truth.company.upper(), font=font, fill=(30, 60, 120))
        draw.text((80, 330), "Ideas that travel well", font=ImageFont.truetype(str(regular), 32),
                  fill=(60, 60, 60))  # fmt: skip
    elif kind == "translated":
        fmt = phonenumbers.PhoneNumberFormat
        big, small = ImageFont.truetype(str(bold), 54), ImageFont.truetype(str(regular), 28)
        draw.text((60, 60), truth.printed_name, font=big, fill=(20, 20, 20))
        draw.text((60, 140), "Directeur des ventes", font=small, fill=(20, 20, 20))
        for i, number in enumerate(truth.phones):
            printed = phonenumbers.format_number(phonenumbers.parse(number), fmt.INTERNATIONAL)
            draw.text((60, 320 + 50 * i), f"Tél. {printed}", font=small, fill=(20, 20, 20))
    return card


def held_out_cards(count: int, seed: int) -> list[tuple[Image.Image, HeldOutTruth]]:
    """`count` clean held-out cards without QR codes (a code on a small crop is another
    test's business) and without the bilingual style (it needs the CJK font)."""
    fonts = find_fonts()
    rng = random.Random(seed)
    styles = [s for s in NAME_STYLES if s != "bilingual"]
    out = []
    for i in range(count):
        truth = held_out_truth(rng, styles[i % len(styles)], LAYOUTS[i % len(LAYOUTS)], "")
        out.append((render_held_out(truth, fonts[i % len(fonts)], rng), truth))
    return out


def make_page(path: Path, spec: PageSpec, seed: int, *, photo: bool = False) -> list[HeldOutTruth]:
    """A page (PNG, or JPEG for a photo) of `spec.cards` held-out cards; their truth in
    reading order."""
    cards = held_out_cards(spec.cards, seed)
    rng = random.Random(seed)
    images = [image for image, _ in cards]
    page = table_photo(images, rng) if photo else flatbed_page(images, spec, rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pdf":
        page.save(path, resolution=spec.dpi)
    else:
        page.save(path, **({"quality": 85} if photo else {}))
    return [truth for _, truth in cards]


def make_duplex(path: Path, count: int, seed: int) -> list[tuple[HeldOutTruth, str]]:
    """A sheet-fed scanner's PDF: front, back, front, back ...; (truth, back kind) each."""
    fonts = find_fonts()
    cards = held_out_cards(count, seed)
    kinds = ("blank", "logo", "translated")
    pages, out = [], []
    for i, (front, truth) in enumerate(cards):
        kind = kinds[i % len(kinds)]
        pages += [front, back_side(truth, kind, fonts[i % len(fonts)])]
        out.append((truth, kind))
    path.parent.mkdir(parents=True, exist_ok=True)
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=300)
    return out
