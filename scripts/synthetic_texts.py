"""Realistic synthetic texts for scale benchmarks: the real Banking77 and Humanloop texts, varied until unique.

Text i is base text `i % B` (B = 15,429 real texts: Banking77 train + test, and the Humanloop export), kept
as it is on its first use and varied on every later one by deterministic, seeded edits a customer's message
shows: amounts and currencies replaced (or "of 40 euros" added after "transfer", "payment"...), card types
("my card" -> "my Visa card"), dates and times ("yesterday" -> "on 3 March", or "last Tuesday" added),
an opening ("Hi,", "Quick question:", a name: "Hello, this is Maria Lopez."), a closing ("Thanks!", "Please
advise.", "(account ending 4821)"), lower-casing, and typos (two letters swapped, one dropped or doubled).
A variant that still repeats an earlier text (about 1 in 100 at 1M) gets an account number closing and
is tried again, so every text is unique; no counter suffix. Labels are the base text's intent (Humanloop's
unlabelled points stay unlabelled), 3% of labelled variants flipped to another intent of the same source
(planted label noise for the analyses to find); splits: Banking77 test -> testing, train -> training with 10%
validation, Humanloop 80/10/10, all by a hash of the row.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

OPENINGS = ["Hi, ", "Hello, ", "Hey, ", "Hi there. ", "Good morning, ", "Good evening. ", "Quick question: ",
            "Excuse me, ", "Hello team, ", "Sorry to bother you, ", "Urgent: ", "Help! ", "Hi again, ",
            "Dear support, ", "Yo, ", "Please help: ", "Question - ", "Hiya, "]
CLOSINGS = [" Thanks.", " Thanks!", " Thank you.", " Please advise.", " Any ideas?", " Cheers.", " Help please.",
            " Thanks in advance.", " Appreciate it.", " ASAP please.", " Kind regards.", " thx", " ??",
            " Sent from my phone.", " Is that possible?", " What should I do?"]
FIRST = ["Maria", "John", "Aisha", "Wei", "Carlos", "Priya", "Olga", "Tom", "Fatima", "Lukas", "Sofia", "Kenji",
         "Amara", "Diego", "Hannah", "Omar", "Chloe", "Ivan", "Nadia", "Sam"]
LAST = ["Lopez", "Smith", "Khan", "Chen", "Garcia", "Patel", "Ivanova", "Brown", "Ali", "Muller", "Rossi",
        "Tanaka", "Okafor", "Fernandez", "Schmidt", "Haddad", "Martin", "Petrov", "Nowak", "Jones"]
CARDS = ["Visa", "Mastercard", "debit", "credit", "virtual", "Amex", "contactless", "metal", "business", "travel"]
CURRENCIES = [("$", ""), ("£", ""), ("€", ""), ("", " euros"), ("", " dollars"), ("", " pounds"), ("", " GBP"),
              ("", " USD"), ("", " CHF"), ("", " yen")]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

_AMOUNT = re.compile(r"[$£€]\d+(?:[.,]\d+)?|\b\d+(?:[.,]\d+)? ?(?:euros?|dollars?|pounds?|usd|gbp|eur)\b",
                     re.IGNORECASE)
_MONEY_WORD = re.compile(r"\b(transfer|payment|charge|fee|top[- ]up|refund|withdrawal|deposit)\b", re.IGNORECASE)
_CARD = re.compile(r"\b(my|the|a|new) card\b", re.IGNORECASE)
_WHEN = re.compile(r"\b(yesterday|today|last week|this morning|recently|a few days ago|two days ago)\b",
                   re.IGNORECASE)


@dataclass(frozen=True)
class Base:
    """A real text with its intent (None: unlabelled), where it came from and its split there."""

    text: str
    label: str | None
    source: str  # "banking77" or "humanloop"
    split: str | None  # banking77's "train"/"test"; None for humanloop


def load_bases(shared: Path = SHARED) -> list[Base]:
    """The real texts: Banking77 train and test (CSV, text + category), then the Humanloop export."""
    import csv

    bases = []
    for name in ("train", "test"):
        with (shared / "banking77" / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
            bases += [Base(row["text"].strip(), row["category"], "banking77", name) for row in csv.DictReader(fh)
                      if row["text"].strip()]
    items = json.loads((shared / "humanloop" / "chatbot_intent_classifier_data.json").read_text(encoding="utf-8"))
    for item in items:
        data = json.loads(item["data"])
        text = (data.get("text") or "").strip()
        if text:
            bases.append(Base(text, data.get("intent") or None, "humanloop", None))
    return bases


def _amount(rng: random.Random) -> str:
    prefix, suffix = rng.choice(CURRENCIES)
    value = rng.choice([rng.randint(1, 99), rng.randint(100, 2000), round(rng.uniform(1, 500), 2)])
    return f"{prefix}{value}{suffix}"


def _date(rng: random.Random) -> str:
    return rng.choice([f"on {rng.randint(1, 28)} {rng.choice(MONTHS)}", f"last {rng.choice(DAYS)}",
                       f"on {rng.choice(MONTHS)} {rng.randint(1, 28)}", f"{rng.randint(2, 14)} days ago",
                       f"on {rng.randint(1, 28)}/{rng.randint(1, 12)}"])


def _typo(text: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(text) if c.isalpha()]
    if len(letters) < 4:
        return text
    i = rng.choice(letters[1:-1])
    kind = rng.randrange(3)
    if kind == 0 and i + 1 < len(text):
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if kind == 1:
        return text[:i] + text[i + 1:]
    return text[:i] + text[i] + text[i:]


def vary(text: str, rng: random.Random) -> str:
    """One realistic variant of `text`: each edit applied with its own probability, at least one applied."""
    out = text
    if _AMOUNT.search(out) and rng.random() < 0.8:
        out = _AMOUNT.sub(lambda _: _amount(rng), out, count=1)
    elif (m := _MONEY_WORD.search(out)) and rng.random() < 0.5:
        out = out[:m.end()] + f" of {_amount(rng)}" + out[m.end():]
    if (m := _CARD.search(out)) and rng.random() < 0.5:
        out = out[:m.start()] + f"{m.group(1)} {rng.choice(CARDS)} card" + out[m.end():]
    if (m := _WHEN.search(out)) and rng.random() < 0.7:
        out = out[:m.start()] + _date(rng) + out[m.end():]
    elif rng.random() < 0.15:
        out = out.rstrip("?.! ") + f" {_date(rng)}" + (out[-1] if out[-1] in "?.!" else "")
    if rng.random() < 0.5:
        opening = rng.choice(OPENINGS) if rng.random() < 0.8 else \
            f"Hello, this is {rng.choice(FIRST)} {rng.choice(LAST)}. "
        out = opening + (out[0].lower() + out[1:] if opening.rstrip()[-1] == "," else out)
    if rng.random() < 0.45:
        out = out.rstrip() + rng.choice(CLOSINGS)
    if rng.random() < 0.15:
        out = out.lower()
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        out = _typo(out, rng)
    if out == text:
        out = out.rstrip() + rng.choice(CLOSINGS)
    return out


def _bucket(key: str, i: int) -> int:
    """A stable 0..99 of row i (not Python's salted hash)."""
    return zlib.crc32(f"{key}:{i}".encode()) % 100


def generate(n: int, seed: int = 0, flip_share: float = 0.03, bases: list[Base] | None = None,
             ) -> Iterator[tuple[int, str, str | None, str, int]]:
    """(id, text, label, split, base index) of n unique texts."""
    bases = bases if bases is not None else load_bases()
    labels = {src: sorted({b.label for b in bases if b.source == src and b.label})
              for src in ("banking77", "humanloop")}
    rng = random.Random(seed)
    seen: set[str] = set()
    for i in range(n):
        b = i % len(bases)
        base = bases[b]
        text = base.text if i < len(bases) else vary(base.text, rng)
        while text in seen:
            text = vary(text, rng) if rng.random() < 0.5 else \
                text.rstrip() + f" (account ending {rng.randint(1000, 9999)})"
        seen.add(text)
        label = base.label
        if label is not None and i >= len(bases) and rng.random() < flip_share:
            label = rng.choice([x for x in labels[base.source] if x != label])
        if base.source == "banking77":
            split = "testing" if base.split == "test" else ("validation" if _bucket("v", i) < 10 else "training")
        else:
            r = _bucket("h", i)
            split = "training" if r < 80 else ("validation" if r < 90 else "testing")
        yield i, text, label, split, b


def write_parquet(path: Path, n: int, seed: int = 0) -> list[int]:
    """Write n texts as Parquet (id, text, label, split) to `path`; returns each row's base index."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    bases = load_bases()
    ids, texts, labels, splits, base_of = [], [], [], [], []
    for i, text, label, split, b in generate(n, seed, bases=bases):
        ids.append(i)
        texts.append(text)
        labels.append(label)
        splits.append(split)
        base_of.append(b)
    table = pa.table({"id": pa.array(ids, pa.int64()), "text": texts, "label": labels, "split": splits})
    pq.write_table(table, path)
    return base_of
