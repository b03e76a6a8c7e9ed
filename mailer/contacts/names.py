"""Is this card line a person's name, and which parts does it have?

Knowledge that holds on any card, not weights fitted to one photo:

- given names: gender-guesser's dictionary (about 48,000 first names from
  many countries, Jörg Michael's nam_dict), matched case-insensitively;
- person versus company: probablepeople's CRF tagger ("BAY TECH" is a
  corporation, "Diana Monica Rios" a person);
- honorifics and academic titles: nameparser's list of titles plus the
  Vietnamese academic abbreviations (TS., ThS., PGS., GS.); they go into their
  own field, never into the name;
- suffixes (Jr., III, MBA, PhD): nameparser's lists; they stay in the name;
- a bilingual line ("황선규 (Sunkyoo Hwang)"): the Latin part is the name, the
  one a salutation can use;
- capitals or lower case ("MASASHI ARAI", "carol soh") are a printing style:
  the name is given in mixed case;
- romanised East-Asian family names (the most common Korean, Chinese, Japanese
  and Vietnamese ones, which cover most people of those countries): evidence of
  a person where the given-name dictionary knows no "Sunkyoo"; a Vietnamese
  name is printed family first ("Đỗ Chí Phi": family Đỗ, given Phi);
- one word that the dictionary knows as a given name ("Vijay") can be a name.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gender_guesser.detector import Detector


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Academic and honorific abbreviations that nameparser's (mostly English) list lacks.
_EXTRA_HONORIFICS = _wordset(
    "ts ths pgs gs ks kts bs dr.-ing dipl.-kfm dipl.-inf dipl.-wirt.-ing dipl.-psych mag ing "
    "univ.-prof mr mrs ms mx dott dott.ssa sra srta eng arq lic"
)
# Words of a job title that nameparser counts as titles: never taken for an honorific.
_JOB_WORDS = _wordset(
    "manager director chief engineer head president officer executive consultant editor "
    "partner founder chairman secretary treasurer principal architect designer"
)
_PARTICLES = _wordset("von van der den de da do dos das di du del della la le zu ter ten")
# Suffixes that are words and never a given or family name.
_WORD_SUFFIXES = _wordset("jr jr. sr sr. jnr snr ii iii iv junior júnior esq esq.")
# The most common romanised family names: Korean (Revised and McCune-Reischauer spellings
# people use), Chinese (pinyin and older spellings), Japanese, Vietnamese (without marks).
_KOREAN = _wordset(
    "kim lee yi rhee park pak bak choi choe jung jeong chung kang kwon gwon cho jo yoon yun jang "
    "chang lim im han oh shin sin seo suh kwak hwang ahn an song jeon jun hong yoo yu ryu ko go "
    "moon mun yang son sohn bae baek paik heo huh nam noh roh ha jin"
)
_CHINESE = _wordset(
    "wang li zhang liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he gao lin luo zheng "
    "liang xie song tang han feng deng cao peng zeng xiao tian dong yuan pan jiang cai yu du ye "
    "cheng wei su lu ding shen ren yao jiang chan cheung chow wong leung lau ng tsang kwok tan "
    "lim lai yip"
)
_JAPANESE = _wordset(
    "sato suzuki takahashi tanaka watanabe ito yamamoto nakamura kobayashi kato yoshida "
    "yamada sasaki yamaguchi matsumoto inoue kimura hayashi shimizu yamazaki mori abe ikeda "
    "hashimoto yamashita ishikawa nakajima maeda fujita ogawa goto okada hasegawa murakami "
    "kondo ishii saito sakamoto endo aoki fujii nishimura fukuda ota miura okamoto matsuda "
    "nakagawa arai"
)
_VIETNAMESE = _wordset(
    "nguyen tran le pham hoang huynh phan vu vo dang bui do ho ngo duong ly truong dinh doan "
    "lam mai trinh cao luu"
)
_WORD = re.compile(r"[^\W\d_]+(?:[-'\u2019][^\W\d_]+)*\.?")  # O'Neil, O\u2019Neil
_INITIAL = re.compile(r"[^\W\d_]\.")


@dataclass(frozen=True, slots=True)
class PrintedName:
    """A name line taken apart; `name` is what a salutation uses (no honorific)."""

    honorific: str  # "Dr.", "Prof. Dr.", "TS." or ""
    name: str  # given ... family suffix, in mixed case
    given: str
    family: str


@cache
def _detector() -> Detector:
    from gender_guesser.detector import Detector

    return Detector(case_sensitive=False)


@cache
def _honorifics() -> frozenset[str]:
    with warnings.catch_warnings():  # nameparser warns about its own renamed constants
        warnings.simplefilter("ignore", DeprecationWarning)
        from nameparser.config import titles

    return frozenset(titles.TITLES) - _JOB_WORDS | _EXTRA_HONORIFICS


@cache
def _suffix_acronyms() -> frozenset[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from nameparser.config import suffixes

    return frozenset(suffixes.SUFFIX_ACRONYMS)


def is_given_name(word: str) -> bool:
    """In the given-name dictionary, whatever the case it is printed in."""
    bare = word.strip(".")
    return len(bare) >= 2 and _detector().get_gender(bare.lower()) != "unknown"


def _folded(word: str) -> str:
    """Lower-case ASCII: "Đỗ" -> "do" (Đ has no decomposition of its own)."""
    word = word.lower().strip(".,").replace("đ", "d")
    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()


def is_east_asian_family(word: str) -> bool:
    """A common romanised Korean, Chinese, Japanese or Vietnamese family name."""
    key = _folded(word)
    return key in _KOREAN or key in _CHINESE or key in _JAPANESE or key in _VIETNAMESE


def _vietnamese_order(core: list[str]) -> bool:
    """Printed family first, the Vietnamese way: a Vietnamese family name first and a last
    word that is none ("Nguyen Van An", "Đỗ Chí Phi"; not "Linh Nguyen")."""
    return (
        len(core) >= 2
        and _folded(core[0]) in _VIETNAMESE
        and (len(core) >= 3 or not is_east_asian_family(core[-1]))
    )


def is_latin(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and all(unicodedata.name(ch, "").startswith("LATIN") for ch in letters)


def latin_part(text: str) -> str:
    """The Latin-script part of a bilingual line ("황선규 (Sunkyoo Hwang)" -> "Sunkyoo
    Hwang"); the line itself when it is all Latin; "" when it has no Latin words."""
    if is_latin(text):
        return text
    words = [w.strip("()[]/|,\uff08\uff09") for w in text.split()]  # also fullwidth ( )
    latin = [w for w in words if w and is_latin(w)]
    return " ".join(latin)


def _is_honorific(word: str) -> bool:
    key = word.lower()
    return key in _honorifics() or key.rstrip(".") in _honorifics()


def _is_suffix(word: str, after_comma: bool, all_caps: bool) -> bool:
    key = word.lower().strip(",")
    if key in _WORD_SUFFIXES:
        return True
    if key.replace(".", "") not in _suffix_acronyms():
        return False
    # "Do", "Chi", "Ma" are acronyms in nameparser's list and names on a card: an
    # acronym is a suffix after a comma, in capitals in a mixed-case line, or dotted.
    bare = word.strip(",.")
    return (
        after_comma
        or "." in word.strip(".")
        or (not all_caps and len(bare) >= 2 and bare[1:] != bare[1:].lower())  # MBA, PhD
        or (all_caps and len(bare) >= 3 and not is_given_name(bare))
    )


def _mixed_case(word: str, first: bool) -> str:
    if not first and word.lower() in _PARTICLES:
        return word.lower()
    return re.sub(r"[^\W\d_]+", lambda m: m.group(0).capitalize(), word)


def parse_name(text: str) -> PrintedName | None:
    """The line as a person's name, when it has the shape of one: two to four words of
    letters (initials allowed) after any honorifics, before any suffixes; else None."""
    line = latin_part(text).strip()
    words = line.replace(",", " , ").split()
    # what the OCR makes of a glyph in another script beside the name ("Seoyeon Lee O|")
    while len(words) > 2 and re.fullmatch(r"[^\W\d_]?[|/\\()\[\]]+|[|/\\]", words[-1]):
        words.pop()
    honorifics: list[str] = []
    while words and len(words) > 2 and _is_honorific(words[0]):
        honorifics.append(words.pop(0))
    letters = [ch for ch in line if ch.isalpha()]
    all_caps = bool(letters) and all(ch.isupper() for ch in letters)
    suffixes: list[str] = []
    comma = False
    while len(words) > 2:
        after_comma = len(words) >= 2 and words[-2] == ","
        if words[-1] == ",":
            words.pop()
            comma = comma or bool(suffixes)
        elif _is_suffix(words[-1], after_comma, all_caps):
            suffixes.insert(0, words.pop())
        else:
            break
    while words and words[-1] == ",":
        words.pop()
    core = [w for w in words if w != ","]
    if not 2 <= len(core) <= 4 or len(core) != len(words):
        return None
    if core[0] in _PARTICLES or core[-1] in _PARTICLES:  # printed lower case: "von", "de"
        return None
    if not all(_WORD.fullmatch(w) for w in core) or _INITIAL.fullmatch(core[-1]):
        return None
    if sum(1 for w in core if len(w.strip(".")) >= 2) < 2:
        return None
    restyle = all_caps or (bool(letters) and all(ch.islower() for ch in letters))
    if not restyle and not all(w[0].isupper() or w in _PARTICLES for w in core):
        return None  # mixed case: every word but "von", "de" starts with a capital
    vietnamese = _vietnamese_order(core)  # "VAN" there is a middle name, not a particle
    shown = [_mixed_case(w, i == 0 or vietnamese) if restyle else w for i, w in enumerate(core)]
    shown_suffixes = (
        [_mixed_case(s, True) if s.lower() in _WORD_SUFFIXES else s.upper() for s in suffixes]
        if restyle
        else suffixes
    )
    if core[0].isupper() and not all_caps and len(core) == 2:  # "ARAI Masashi": family first
        given, family = shown[1], shown[0]
    elif vietnamese:
        given, family = " ".join(shown[1:]), shown[0]
    else:  # particles ("van der") belong to the family name
        split = len(shown) - 1
        while split > 1 and shown[split - 1] in _PARTICLES:
            split -= 1
        given, family = " ".join(shown[:split]), " ".join(shown[split:])
    honorific = " ".join(
        _mixed_case(h, True) if all_caps and len(h.strip(".")) > 3 else h for h in honorifics
    )
    printed = " ".join(shown) + ("," if comma else "")
    return PrintedName(honorific, " ".join([printed, *shown_suffixes]), given, family)


def parse_one_word(text: str) -> PrintedName | None:
    """A line of one word that the dictionary knows as a given name ("Vijay", "VIJAY"):
    the name of someone who goes by one name; None otherwise."""
    word = latin_part(text).strip()
    if not _WORD.fullmatch(word) or word.endswith(".") or len(word) < 3:
        return None
    if not is_given_name(word) or _is_honorific(word) or word.lower() in _WORD_SUFFIXES:
        return None
    shown = _mixed_case(word, True) if word.isupper() or word.islower() else word
    return PrintedName("", shown, shown, "")


def person_evidence(name: PrintedName) -> float:
    """How much the words say "person": a known given name first (or last, for
    family-first orders), a common East-Asian family name, and the person/company
    classifier's verdict."""
    words = name.name.split()
    score = 0.0
    if is_given_name(words[0]):
        score += 1.0
    elif is_given_name(words[-1]) or (len(words) > 2 and is_given_name(words[1])):
        score += 0.6
    east_asian = len(words) > 1 and (
        is_east_asian_family(words[0]) or is_east_asian_family(words[-1])
    )
    if east_asian:  # a Vietnamese name in its own order is unmistakable
        score = max(score, 1.0 if len(words) >= 3 and _vietnamese_order(words) else 0.6)
    kind = classify(unicodedata.normalize("NFKD", name.name).encode("ascii", "ignore").decode())
    if kind == "Corporation":  # the classifier learnt from US records: less sure of these
        score -= 0.5 if east_asian else 1.0
    elif kind == "Person":
        score += 0.4
    return score


def classify(text: str) -> str:
    """probablepeople's "Person", "Corporation" or "Household"; "" when it cannot say."""
    import probablepeople

    try:
        _, kind = probablepeople.tag(text)
    except probablepeople.RepeatedLabelError:
        return ""
    return str(kind)
