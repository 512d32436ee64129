"""PII detection: Bastion's detectors next to Presidio's pattern recognizers, in one run.

Both read the same generated corpus (`pii_corpus.py`: support tickets and loan notes with
valid personal data and look-alikes that are not) and are scored against its labels:

- **match rule**: a detected span is a true positive when it has the entity of a labelled
  span not yet matched and overlaps it by at least half of their union (Jaccard >= 0.5);
  every other detection is a false positive, every unmatched label a false negative.
- precision, recall and F2 (recall weighs twice: a missed value leaks, a false alarm only
  over-redacts) per entity, and texts/s for each engine over the whole corpus, one thread,
  timed interleaved chunk by chunk so that other load on the machine hits all engines alike.

Presidio runs `AnalyzerEngine` with a `NoOpNlpEngine` (no spaCy model) and a registry of
its six predefined pattern recognizers for the shared entities (e-mail, phone, card, IBAN,
US SSN, IP), its phone recognizer on the same regions as Bastion, default score threshold.
Bastion runs `Redactor.find` twice: on the six shared entities (the comparison: scores and
speed) and with NATIONAL_ID (DE, FR, ES, IT, NL) added, which Presidio's predefined pattern
set has no counterpart for, so that row is Bastion's alone.

Run: ``.venv/bin/python benchmarks/pii.py [--texts 6000] [--seed 20240601]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import NoOpNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    UsSsnRecognizer,
)

from bastion.guard.pii import ENTITIES, Redactor
from pii_corpus import PHONE_REGIONS, Sample, Span, generate

PRESIDIO_ENTITIES = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "US_SSN",
    "IP_ADDRESS": "IP_ADDRESS",
}
SHARED = tuple(PRESIDIO_ENTITIES.values())
NATIONAL_ID_COUNTRIES = ("DE", "FR", "ES", "IT", "NL")
F2_BETA = 2.0
THROUGHPUT_TARGET = 20.0

Detect = Callable[[str], list[Span]]


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f2(self) -> float:
        p, r, b2 = self.precision, self.recall, F2_BETA**2
        return (1 + b2) * p * r / (b2 * p + r) if p + r else 0.0


def bastion_detector(entities: Sequence[str]) -> Detect:
    redactor = Redactor(
        dict.fromkeys(entities, "replace"),
        countries=NATIONAL_ID_COUNTRIES,
        regions=PHONE_REGIONS,
    )

    def detect(text: str) -> list[Span]:
        return [Span(f.entity, f.start, f.end) for f in redactor.find(text)]

    return detect


def presidio_detector() -> Detect:
    # The e-mail recognizer's tldextract fetches the public suffix list once and logs a long
    # traceback when offline before falling back to its bundled copy.
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    registry = RecognizerRegistry(
        recognizers=[
            EmailRecognizer(),
            PhoneRecognizer(supported_regions=PHONE_REGIONS),
            CreditCardRecognizer(),
            IbanRecognizer(),
            UsSsnRecognizer(),
            IpRecognizer(),
        ]
    )
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    engine = AnalyzerEngine(registry=registry, nlp_engine=nlp)

    def detect(text: str) -> list[Span]:
        return [
            Span(PRESIDIO_ENTITIES[r.entity_type], r.start, r.end)
            for r in engine.analyze(text, language="en")
            if r.entity_type in PRESIDIO_ENTITIES
        ]

    return detect


def score(samples: Sequence[Sample], predictions: Sequence[list[Span]]) -> dict[str, Score]:
    scores = {entity: Score() for entity in ENTITIES}
    for sample, predicted in zip(samples, predictions, strict=True):
        unmatched = list(sample.spans)
        for p in predicted:
            match = next(
                (g for g in unmatched if g.entity == p.entity and _jaccard(g, p) >= 0.5), None
            )
            if match is None:
                scores[p.entity].fp += 1
            else:
                unmatched.remove(match)
                scores[p.entity].tp += 1
        for g in unmatched:
            scores[g.entity].fn += 1
    return scores


def _jaccard(a: Span, b: Span) -> float:
    inter = min(a.end, b.end) - max(a.start, b.start)
    union = max(a.end, b.end) - min(a.start, b.start)
    return max(inter, 0) / union


def run(
    engines: dict[str, Detect], texts: Sequence[str], repeat: int, chunks: int = 30
) -> tuple[dict[str, list[list[Span]]], dict[str, float]]:
    """Predictions and texts/s of each engine, timed interleaved so that load from other
    processes hits every engine alike: the corpus is cut into `chunks`; each chunk is run by
    every engine in turn (alternating the order), `repeat` times; each engine's time is the
    sum over chunks of its fastest run. A warm-up on 100 texts comes first."""
    for detect in engines.values():
        for text in texts[:100]:
            detect(text)
    size = -(-len(texts) // chunks)
    bounds = [(lo, min(lo + size, len(texts))) for lo in range(0, len(texts), size)]
    best = {name: [float("inf")] * len(bounds) for name in engines}
    predictions: dict[str, list[list[Span]]] = {name: [[] for _ in texts] for name in engines}
    names = list(engines)
    for r in range(repeat):
        for i, (lo, hi) in enumerate(bounds):
            for name in names if (i + r) % 2 == 0 else reversed(names):
                detect = engines[name]
                start = time.perf_counter()
                out = [detect(t) for t in texts[lo:hi]]
                best[name][i] = min(best[name][i], time.perf_counter() - start)
                predictions[name][lo:hi] = out
    return predictions, {name: len(texts) / sum(times) for name, times in best.items()}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes (best kept)")
    args = parser.parse_args()

    samples = generate(args.texts, args.seed)
    texts = [s.text for s in samples]
    labels = sum(len(s.spans) for s in samples)
    engines = {
        "bastion": bastion_detector(SHARED),
        "bastion+national": bastion_detector(ENTITIES),
        "presidio": presidio_detector(),
    }
    predictions, rates = run(engines, texts, args.repeat)
    b_pred, all_pred, p_pred = (predictions[n] for n in engines)
    b_rate, all_rate, p_rate = (rates[n] for n in engines)
    b_scores, p_scores = score(samples, b_pred), score(samples, p_pred)
    all_scores = score(samples, all_pred)

    print(
        f"corpus: {len(texts)} texts, {labels} labelled values, seed {args.seed}; "
        f"{os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}, "
        f"{dt.date.today().isoformat()}\n"
    )
    print(
        "| entity | gold | Bastion P | Bastion R | Bastion F2 | Presidio P | Presidio R "
        "| Presidio F2 | F2 ≥ Presidio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    verdicts = []
    for entity in ENTITIES:
        b = b_scores[entity] if entity in SHARED else all_scores[entity]
        gold = b.tp + b.fn
        if entity in SHARED:
            p = p_scores[entity]
            ok = b.f2 >= p.f2
            verdicts.append(ok)
            presidio = f"{p.precision:.3f} | {p.recall:.3f} | {p.f2:.3f}"
            verdict = "PASS" if ok else "MISS"
        else:
            presidio, verdict = "n/a | n/a | n/a", "(Bastion only)"
        print(
            f"| {entity} | {gold} | {b.precision:.3f} | {b.recall:.3f} | {b.f2:.3f} "
            f"| {presidio} | {verdict} |"
        )
    changed = [e for e in SHARED if all_scores[e].f2 != b_scores[e].f2]
    for entity in changed:
        print(f"with NATIONAL_ID on, {entity} F2 is {all_scores[entity].f2:.3f}")

    ratio = b_rate / p_rate
    print(
        f"\n| engine (entities) | texts/s | µs/text | vs Presidio |\n|---|---:|---:|---:|\n"
        f"| Bastion `Redactor.find` (the 6 shared) | {b_rate:,.0f} | {1e6 / b_rate:.0f} "
        f"| {ratio:.1f}x |\n"
        f"| Bastion `Redactor.find` (6 + NATIONAL_ID) | {all_rate:,.0f} | {1e6 / all_rate:.0f} "
        f"| {all_rate / p_rate:.1f}x |\n"
        f"| Presidio pattern recognizers (the 6 shared) | {p_rate:,.0f} | {1e6 / p_rate:.0f} "
        f"| 1.0x |\n"
    )
    f2_ok = all(verdicts)
    speed_ok = ratio >= THROUGHPUT_TARGET
    print(f"F2 >= Presidio on every shared entity: {'PASS' if f2_ok else 'MISS'}")
    print(
        f"throughput >= {THROUGHPUT_TARGET:.0f}x Presidio: {'PASS' if speed_ok else 'MISS'} ({ratio:.1f}x)"
    )


if __name__ == "__main__":
    main()
