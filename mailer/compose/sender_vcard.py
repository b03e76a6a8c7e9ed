"""The sender's vCard: `Profile` -> the card every mail attaches and `mailer card` prints.

3.0 is what most address books import; 4.0 (RFC 6350) writes phones as tel: URIs
and the photo as a data: URI.  Social networks become X-SOCIALPROFILE, messengers
IMPP (RFC 4770), both as Apple and Google export them; web links become URL
(custom labels as an Apple-style `itemN.X-ABLabel` group).  vobject serialises.
"""

from __future__ import annotations

import base64
from typing import Any

from ..errors import ConfigError
from .profile import NETWORKS, VCARD_VERSIONS, Profile


def sender_vcard(profile: Profile, version: str = "3.0", lang: str = "") -> str:
    """The sender's card, CRLF line ends.  `lang` translates the labels of generic
    links, as in that language's mail."""
    if version not in VCARD_VERSIONS:
        raise ConfigError(
            f"vCard version {version!r} is not one of {', '.join(VCARD_VERSIONS)}."
        )
    import vobject  # slow to import: here, so that `mailer --help` does not pay for it

    v4 = version == "4.0"
    card = vobject.vCard()
    card.add("version").value = version
    if v4:
        card.add("kind").value = "individual"
    _add_identity(card, profile, v4)
    _add_phones(card, profile.phones, v4)
    _add_address(card, profile, v4)
    _add_photo(card, profile, v4)
    _add_channels(card, profile, v4, lang)
    text: str = card.serialize()
    return text


def _add_identity(card: Any, profile: Profile, v4: bool) -> None:
    import vobject

    card.add("fn").value = profile.name
    card.add("n").value = vobject.vcard.Name(family=profile.family, given=profile.given)
    if profile.org:
        card.add("org").value = [profile.org]
    if profile.title:
        card.add("title").value = profile.title
    _add(card, "email", profile.email, type_paramlist=["work"] if v4 else ["INTERNET", "WORK"])


def _add_phones(card: Any, phones: tuple[str, ...], v4: bool) -> None:
    import phonenumbers

    for phone in phones:
        number = phonenumbers.parse(phone)
        # a mobile number is "Mobile" in the address book; a fixed line (or a number
        # whose plan cannot tell, as in the US) stays a work phone
        mobile = phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
        types = ["CELL"] if mobile else ["WORK", "VOICE"]
        if v4:
            uri = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.RFC3966)
            _add(card, "tel", uri, type_paramlist=[t.lower() for t in types], value_param="uri")
        else:
            _add(card, "tel", phone, type_paramlist=types)


def _add_address(card: Any, profile: Profile, v4: bool) -> None:
    import vobject

    if profile.address is None:
        return
    a = profile.address
    adr = card.add("adr")
    adr.value = vobject.vcard.Address(
        street=a.street, city=a.city, region=a.region, code=a.postcode, country=a.country
    )
    adr.type_param = "work" if v4 else "WORK"


def _add_photo(card: Any, profile: Profile, v4: bool) -> None:
    if profile.photo is None:
        return
    if v4:
        encoded = base64.b64encode(profile.photo.data).decode("ascii")
        photo = card.add("photo")
        photo.value = f"data:{profile.photo.mime};base64,{encoded}"
        # a URI, not text: escaped as "\;" and "\," it would be broken for URI readers
        photo.encoded = True
    else:  # vobject base64-encodes the bytes itself
        mime_type = profile.photo.mime.removeprefix("image/").upper()
        _add(card, "photo", profile.photo.data, encoding_param="b", type_param=mime_type)


def _add_channels(card: Any, profile: Profile, v4: bool, lang: str) -> None:
    item = 0
    for channel in profile.channels:
        network = NETWORKS[channel.network]
        if network.kind == "social":
            _add(card, "x-socialprofile", channel.url, type_param=network.service)
        elif network.kind == "impp":
            impp = f"skype:{channel.text}" if channel.network == "skype" else channel.url
            _add(card, "impp", impp, x_service_type_param=network.service)
        elif channel.network == "web":
            _add(card, "url", channel.url, type_param="work" if v4 else "WORK")
        else:  # a labelled link: Apple's item group, which other readers see as a plain URL
            item += 1
            _add(card, f"item{item}.url", channel.url)
            _add(card, f"item{item}.x-ablabel", channel.label_for(lang))


def _add(card: Any, name: str, value: str | bytes, **params: str | list[str]) -> None:
    prop = card.add(name)
    prop.value = value
    for key, param in params.items():
        setattr(prop, key, param)
