"""A labelled set of generated sentences for PII redaction: planted PII (with its type) and planted
look-alikes that must survive (dates, year ranges, order, invoice, reference and tracking numbers).

Card numbers pass the Luhn check and IBANs the mod-97 check, as real ones do; everything is drawn from a
seeded generator, so the set is the same on every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

NAMES = (
    "Maria",
    "Tom",
    "Anna",
    "Lukas",
    "Sofia",
    "James",
    "Priya",
    "Omar",
    "Elena",
    "Kenji",
    "Fatima",
    "Noah",
)
IBAN_BBAN = {"DE": "18d", "GB": "4a14d", "NL": "4a10d", "FR": "23d", "ES": "20d", "IT": "1a22d", "BE": "12d"}


@dataclass
class Sentence:
    """A sentence, its PII spans with their placeholder type, and spans that must stay as they are."""

    text: str
    pii: list[tuple[str, str]] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    """A Luhn-valid Visa, Mastercard or Amex number, plain, spaced or dashed as people write them."""
    prefix, length = rng.choice([("4", 16), ("5" + rng.choice("12345"), 16), (rng.choice(("34", "37")), 15)])
    body = prefix + _digits(rng, length - len(prefix) - 1)
    number = body + _luhn_digit(body)
    groups = (
        [number[:4], number[4:10], number[10:]]
        if length == 15
        else [number[i : i + 4] for i in (0, 4, 8, 12)]
    )
    return rng.choice(["", " ", "-"]).join(groups)


def iban(rng: random.Random) -> str:
    """A valid IBAN (mod 97) of a common country, compact or in groups of four."""
    country, shape = rng.choice(sorted(IBAN_BBAN.items()))
    letters = int(shape.split("a")[0]) if "a" in shape else 0
    bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(letters))
    bban += _digits(rng, int(shape.split("a")[-1].rstrip("d")))
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    compact = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return compact
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def phone(rng: random.Random) -> str:
    """A phone number in one of the formats people write."""
    d = lambda n: _digits(rng, n)  # noqa: E731
    return rng.choice(
        [
            f"+44 20 7946 {d(4)}",
            f"(555) {d(3)}-{d(4)}",
            f"555-{d(3)}-{d(4)}",
            f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
            f"020 7946 {d(4)}",
            f"+49 30 {d(8)}",
            f"+1 415 555 {d(4)}",
        ]
    )


def date(rng: random.Random) -> str:
    """A date in one of the numeric formats (never a phone)."""
    y, m, dd = rng.randint(1990, 2030), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice(
        [
            f"{y}-{m:02d}-{dd:02d}",
            f"{dd:02d}/{m:02d}/{y}",
            f"{dd:02d}.{m:02d}.{y}",
            f"{y}/{m:02d}/{dd:02d}",
            f"{dd:02d}-{m:02d}-{y}",
        ]
    )


def order(rng: random.Random) -> tuple[str, str]:
    """A labelled identifier: (the text with its label, the number that must survive)."""
    d = lambda n: _digits(rng, n)  # noqa: E731
    number, label = rng.choice(
        [
            (f"{d(9)}", "order #"),
            (f"{d(4)} {d(4)} {d(2)}", "Order No. "),
            (f"INV-{rng.randint(2019, 2025)}-{d(6)}", "invoice "),
            (f"{d(4)}-{d(4)}-{d(4)}", "ref "),
            (f"{d(8)}", "booking reference "),
            (f"{d(8)}", "customer ID "),
            (f"{d(10)}", "tracking number "),
        ]
    )
    return label + number, number


def _sentence(rng: random.Random, k: int) -> Sentence:
    name = rng.choice(NAMES)
    mail = f"{name.lower()}.{_digits(rng, 2)}@example.com"
    c, i, p, dt = card(rng), iban(rng), phone(rng), date(rng)
    (o_text, o_num) = order(rng)
    bad_card = c.replace(c[-1], str((int(c[-1]) + 1) % 10)) if c[-1].isdigit() else c  # Luhn fails
    bad_iban = i[:2] + "00" + i[4:]  # check digits 00 never pass mod 97
    amount = f"{rng.randint(1, 99)},{_digits(rng, 3)}.{_digits(rng, 2)}"
    dotted = f"555.{_digits(rng, 3)}.{_digits(rng, 4)}"
    y0 = rng.randint(1985, 2005)
    years = f"{y0}-{y0 + rng.randint(1, 15)}"
    templates = [
        (f"Your {o_text} placed on {dt} was charged to card {c}.", [(c, "CARD")], [o_num, dt]),
        (f"Please transfer the balance to {i} before {dt}.", [(i, "IBAN")], [dt]),
        (f"For delivery questions call {p}, quoting {o_text}.", [(p, "PHONE")], [o_num]),
        (f"Ask {name} at {mail} about {o_text}.", [(name, "PERSON"), (mail, "EMAIL")], [o_num]),
        (f"Between {years} we shipped everything under {o_text}.", [], [years, o_num]),
        (f"{name}: {p} (evenings only, from {dt}).", [(name, "PERSON"), (p, "PHONE")], [dt]),
        (f"Refund card {c} and account {i} on {dt}.", [(c, "CARD"), (i, "IBAN")], [dt]),
        (f"The meeting moved to {dt}; see {o_text} for the room.", [], [dt, o_num]),
        (
            f"Questions? Write to {mail} ({name}) or call {p}.",
            [(mail, "EMAIL"), (name, "PERSON"), (p, "PHONE")],
            [],
        ),
        (f"Paid with {c} on {dt}, {o_text}.", [(c, "CARD")], [dt, o_num]),
        (f"Serial {bad_card} and test account {bad_iban} are placeholders.", [], [bad_card, bad_iban]),
        (f"Tel. {dotted} for the total of EUR {amount} due {dt}.", [(dotted, "PHONE")], [amount, dt]),
    ]
    text, pii, keep = templates[k % len(templates)]
    return Sentence(text, pii, keep)


def corpus(n: int = 240, seed: int = 22) -> list[Sentence]:
    """`n` labelled sentences, every template in turn."""
    rng = random.Random(seed)
    return [_sentence(rng, k) for k in range(n)]


def score(sentences: list[Sentence], redacted: list[str]) -> tuple[float, float, dict[str, int]]:
    """Precision and recall over planted spans: a PII span counts when it is gone and a placeholder of
    its type stands in the text; a kept span that changed, or a placeholder no planted span explains,
    is a false positive."""
    tp = fn = fp = 0
    for s, out in zip(sentences, redacted, strict=True):
        expected: dict[str, int] = {}
        for span, kind in s.pii:
            expected[kind] = expected.get(kind, 0) + 1
            if span not in out and f"[{kind}]" in out:
                tp += 1
            else:
                fn += 1
        fp += sum(1 for span in s.keep if span not in out)
        for kind in ("EMAIL", "URL", "PHONE", "PERSON", "CARD", "IBAN"):
            fp += max(0, out.count(f"[{kind}]") - expected.get(kind, 0))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, {"tp": tp, "fp": fp, "fn": fn}


if __name__ == "__main__":  # python -m tests.pii_corpus [--spacy]: the figures the tests' floors rest on
    import sys

    from mmfs.transforms.text.pii import redact_batch, redact_patterns

    sentences = corpus()
    if "--spacy" in sys.argv:
        from mmfs.config import PipelineConfig, TextConfig
        from mmfs.stages.text import TextStage
        from mmfs.transforms.text.tokens import TextAnalyzer

        cfg = PipelineConfig(text=TextConfig(redact_pii=True))
        spans = TextStage(cfg, TextAnalyzer(cfg.text), None).person_spans
        out = [r.text for r in redact_batch([s.text for s in sentences], spans)]
    else:
        out = [redact_patterns(s.text).text for s in sentences]
    p, r, counts = score(sentences, out)
    print(f"{len(sentences)} sentences, {counts}: precision {p:.3f}, recall {r:.3f}")
