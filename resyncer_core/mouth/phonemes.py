"""Phones → visemes: what the mouth does for each speech sound.

A viseme is a target for the rig's articulation parameters (see articulation.py) plus how
strongly the phone insists on each of them (its dominance, Cohen & Massaro 1993): a bilabial
must close the lips whatever its neighbours do, but takes its jaw and lip rounding from them;
a vowel sets every parameter.

Phone names accepted (case-insensitive for ARPAbet):
- ARPAbet as CMUdict and pocketsphinx write it (stress digits ignored: "AA1" is "AA"), with
  pocketsphinx's fillers (SIL, +NSN+, +SPN+, ...) as silence;
- IPA as espeak-ng writes it (`--ipa`, phoneme events with the IPA option): stress marks and
  length marks are ignored, affricates and diphthongs may be written as one or two symbols.
Diphthongs (AW, AY, EY, OW, OY) move from one viseme to another: `phone_segments` splits them.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from ..errors import ResyncerInputError
from .articulation import ARTICULATION_PARAMETERS

# Dominance strengths. Vowels set the whole mouth; consonants set their critical parameters
# strongly and let the vowel context decide the rest (so "s" in "soon" is rounded).
_VOWEL_DOMINANCE = 1.0
_CRITICAL_DOMINANCE = 2.0
_CONTEXT_DOMINANCE = 0.15
_CLOSURE_DOMINANCE = 12.0  # bilabial and silence closures win over any neighbour
_SILENCE_DOMINANCE = 1.0


@dataclass(frozen=True)
class Viseme:
    name: str
    target: tuple[float, ...]  # one value per articulation parameter
    dominance: tuple[float, ...]


def _viseme(name: str, vowel: bool = False, closure_dominance: float | None = None, **target: float) -> Viseme:
    unknown = set(target) - set(ARTICULATION_PARAMETERS)
    if unknown:
        raise ValueError(f"viseme {name}: unknown articulation parameters {sorted(unknown)}")
    values = tuple(float(target.get(p, 0.0)) for p in ARTICULATION_PARAMETERS)
    if vowel:
        dominance = [_VOWEL_DOMINANCE] * len(values)
    else:
        dominance = [_CRITICAL_DOMINANCE if p in target else _CONTEXT_DOMINANCE for p in ARTICULATION_PARAMETERS]
    if closure_dominance is not None:
        dominance[ARTICULATION_PARAMETERS.index("closure")] = closure_dominance
    return Viseme(name, values, tuple(dominance))


# Targets in rig units (0 rest, 1 the rig's full movement). Jaw values follow the usual
# vowel-height ordering (aa > ae > ao > ah > eh > ey > ih > iy, uw).
VISEMES: dict[str, Viseme] = {v.name: v for v in (
    Viseme("sil", (0.0,) * len(ARTICULATION_PARAMETERS), (_SILENCE_DOMINANCE,) * len(ARTICULATION_PARAMETERS)),
    _viseme("PP", jaw=0.05, closure=1.0, closure_dominance=_CLOSURE_DOMINANCE),  # p b m
    _viseme("FF", jaw=0.12, tuck=1.0, raise_upper=0.25),  # f v
    _viseme("TH", jaw=0.22, spread=0.15),  # th dh
    _viseme("DD", jaw=0.25),  # t d n l
    _viseme("KK", jaw=0.3),  # k g ng
    _viseme("CH", jaw=0.2, round=0.55, raise_upper=0.45),  # ch jh sh zh
    _viseme("SS", jaw=0.1, spread=0.35),  # s z
    _viseme("RR", jaw=0.2, round=0.5),  # r
    _viseme("WW", jaw=0.1, round=1.0),  # w
    _viseme("YY", jaw=0.2, spread=0.45),  # y
    _viseme("HH", jaw=0.3),  # h: takes its shape from the next vowel
    _viseme("AA", vowel=True, jaw=1.0),
    _viseme("AE", vowel=True, jaw=0.78, spread=0.35),
    _viseme("AH", vowel=True, jaw=0.6),
    _viseme("AO", vowel=True, jaw=0.75, round=0.45),
    _viseme("EH", vowel=True, jaw=0.5, spread=0.35),
    _viseme("ER", vowel=True, jaw=0.3, round=0.45),
    _viseme("IH", vowel=True, jaw=0.3, spread=0.45),
    _viseme("IY", vowel=True, jaw=0.18, spread=0.85),
    _viseme("UH", vowel=True, jaw=0.3, round=0.6),
    _viseme("UW", vowel=True, jaw=0.18, round=1.0),
    _viseme("AX", vowel=True, jaw=0.4),  # schwa
)}

# Every ARPAbet phone → one viseme, or two for diphthongs (start, end).
_ARPABET: dict[str, tuple[str, ...]] = {
    "P": ("PP",), "B": ("PP",), "M": ("PP",),
    "F": ("FF",), "V": ("FF",),
    "TH": ("TH",), "DH": ("TH",),
    "T": ("DD",), "D": ("DD",), "N": ("DD",), "L": ("DD",),
    "K": ("KK",), "G": ("KK",), "NG": ("KK",),
    "CH": ("CH",), "JH": ("CH",), "SH": ("CH",), "ZH": ("CH",),
    "S": ("SS",), "Z": ("SS",),
    "R": ("RR",), "W": ("WW",), "Y": ("YY",), "HH": ("HH",),
    "AA": ("AA",), "AE": ("AE",), "AH": ("AH",), "AO": ("AO",), "EH": ("EH",), "ER": ("ER",),
    "IH": ("IH",), "IY": ("IY",), "UH": ("UH",), "UW": ("UW",), "AX": ("AX",),
    "AW": ("AA", "UW"), "AY": ("AA", "IY"), "EY": ("EH", "IY"), "OW": ("AO", "UW"), "OY": ("AO", "IY"),
    "SIL": ("sil",),
}

# IPA (espeak-ng's English inventory and common alternatives) → ARPAbet.
_IPA: dict[str, str] = {
    "p": "P", "b": "B", "m": "M", "f": "F", "v": "V", "θ": "TH", "ð": "DH",
    "t": "T", "d": "D", "n": "N", "l": "L", "ɾ": "D", "ɫ": "L", "ɬ": "L", "ʔ": "T",
    "k": "K", "ɡ": "G", "g": "G", "ŋ": "NG", "x": "HH", "h": "HH",
    "tʃ": "CH", "dʒ": "JH", "ʧ": "CH", "ʤ": "JH", "ʃ": "SH", "ʒ": "ZH", "s": "S", "z": "Z",
    "ɹ": "R", "r": "R", "ɻ": "R", "w": "W", "ʍ": "W", "j": "Y",
    "ɑ": "AA", "a": "AA", "ɐ": "AH", "æ": "AE", "ʌ": "AH", "ɒ": "AO", "ɔ": "AO", "ɛ": "EH", "e": "EH",
    "ɜ": "ER", "ɝ": "ER", "ɚ": "ER", "ə": "AX", "ᵻ": "IH", "ɪ": "IH", "i": "IY", "ʊ": "UH", "u": "UW",
    "o": "OW", "aʊ": "AW", "aɪ": "AY", "eɪ": "EY", "oʊ": "OW", "əʊ": "OW", "ɔɪ": "OY",
    "iə": "IY", "eə": "EH", "ʊə": "UH", "ɑɹ": "AA", "ɔɹ": "AO", "ɪɹ": "IH", "ɛɹ": "EH", "ʊɹ": "UH", "ɜɹ": "ER",
    "əl": "L", "ʉ": "UW", "ʲ": "Y",
}
_IPA_IGNORED = "ˈˌːˑ‿:ʰ "
_LONGEST_IPA = max(len(k) for k in _IPA)

# Silence and non-speech labels of pocketsphinx and espeak-ng (pauses are "_" there).
_SILENCES = {"", "SIL", "SP", "SPN", "NSN", "+NSN+", "+SPN+", "+BREATH+", "+COUGH+", "+NOISE+", "+UH+", "+UM+",
             "+SMACK+", "<S>", "</S>", "<SIL>", "_", "_:", "_!", "_^_", "||", "|", "PAU", "H#"}


def phone_visemes(phone: str) -> tuple[str, ...]:
    """The viseme names of one phone (two for diphthongs); ResyncerInputError for unknown phones."""
    name = phone.strip()
    upper = name.upper()
    if upper in _SILENCES or upper.startswith("+"):
        return ("sil",)
    arpabet = upper.rstrip("012")
    if arpabet in _ARPABET:
        return _ARPABET[arpabet]
    ipa = "".join(ch for ch in unicodedata.normalize("NFD", name)
                  if ch not in _IPA_IGNORED and not unicodedata.combining(ch))
    if not ipa:
        return ("sil",)
    visemes: list[str] = []
    while ipa:  # an unlisted cluster (triphthong, vowel + r) is read as its longest listed parts
        for length in range(min(_LONGEST_IPA, len(ipa)), 0, -1):
            if ipa[:length] in _IPA:
                visemes += _ARPABET[_IPA[ipa[:length]]]
                ipa = ipa[length:]
                break
        else:
            raise ResyncerInputError(f"unknown phone {phone!r}; give ARPAbet (CMUdict) or IPA phone names")
    return tuple(visemes)


def phone_segments(timings: list[tuple[str, float, float]]) -> list[tuple[Viseme, float, float]]:
    """Viseme segments (viseme, start_s, end_s) of phone timings, diphthongs split in two halves."""
    segments = []
    for phone, start, end in timings:
        if not end >= start:
            raise ResyncerInputError(f"phone {phone!r} ends ({end}) before it starts ({start}); give (phone, start_s, end_s)")
        names = phone_visemes(phone)
        bounds = np.linspace(start, end, len(names) + 1)
        segments.extend((VISEMES[n], float(a), float(b)) for n, a, b in zip(names, bounds[:-1], bounds[1:]))
    return segments
