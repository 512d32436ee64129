"""A labelled corpus for the PII benchmark: support tickets and loan notes with personal data.

Every text is one or two sentences from templates in the style of support tickets and
loan-officer notes. Each entity slot holds either a valid value (labelled with its span) or,
about a third of the time, a look-alike of the same shape that is *not* personal data and
carries no label: card numbers failing Luhn, IBANs with wrong check digits, SSNs in never
issued ranges (area 000/666/9xx, group 00, serial 0000), impossible IPs (999.1.1.1),
national ids with a wrong check digit, file names with an ``@``. Neutral slots add order
and invoice numbers that parse as phone numbers, dates, amounts, times and versions.

Valid values come from the entities' own rules: phone numbers from each region's numbering
plan (checked with phonenumbers), cards from issuer prefixes with a Luhn digit, IBANs and
national ids with stdnum's check digits. Everything is drawn from one seeded generator.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn
from stdnum.de import idnr
from stdnum.es import ccc, dni
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.nl import bsn

Value = tuple[str, str | None]  # (text, entity label or None for a look-alike)


@dataclass(frozen=True)
class Span:
    entity: str
    start: int
    end: int


@dataclass(frozen=True)
class Sample:
    text: str
    spans: tuple[Span, ...]


FIRST = [
    "Anna",
    "Ben",
    "Chloe",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Karim",
    "Lea",
    "Marco",
    "Nina",
    "Omar",
    "Paula",
]
LAST = [
    "Schmidt",
    "Dubois",
    "Garcia",
    "Rossi",
    "Jansen",
    "Miller",
    "Nowak",
    "Smith",
    "Martin",
    "Weber",
    "Bernard",
    "Ricci",
]
DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "example.co.uk", "example.de"]
PHONE_REGIONS = ("US", "GB", "DE", "FR")

TEMPLATES = [
    "Customer {NAME} ({EMAIL}) called from {PHONE} about a declined payment on card {CARD}.",
    "Please update the payout account to {IBAN} for loan application {APP}.",
    "Applicant SSN {SSN} verified against the bureau file on {DATE}.",
    "Login to the portal from {IP} at {TIME}; user {EMAIL} asked for a password reset.",
    "Ticket {TICKET}: card {CARD} was charged {AMOUNT} twice.",
    "Reach me on {PHONE} or by mail at {EMAIL}, thanks!",
    "Order number {ORDER} shipped on {DATE}; the customer wants a refund of {AMOUNT}.",
    "Borrower provided tax id {NATID} and payslips for {MONTHS} months.",
    "Direct debit mandate signed for {IBAN}, first installment of {AMOUNT} due {DATE}.",
    "Fraud team: transactions from {IP} used card {CARD} and phone {PHONE}.",
    "Co-applicant {NAME}, SSN {SSN}, phone {PHONE}, employed since {YEAR}.",
    "Server at {IP} returned error 502 for request {TICKET}.",
    "App crashed on {VERSION} right after the user typed IBAN {IBAN}.",
    "Please call back {NAME} at {PHONE} regarding case {TICKET}.",
    "Income verified: {AMOUNT} per month, salary paid into {IBAN}.",
    "Email to {EMAIL} bounced; alternate contact {EMAIL}.",
    "Duplicate charge of {AMOUNT} on card {CARD} (invoice {ORDER}).",
    "Loan note: applicant ID {NATID}, requested {AMOUNT} over {MONTHS} months.",
    "VPN logs show {IP} and {IP} for the same session.",
    "Customer {NAME} disputes the SSN on file ({SSN}) and asks us to call {PHONE}.",
    "Screenshot attached as {FILE}, sent by {EMAIL}.",
    "Loan officer reviewed the file on {DATE} and asked for two more payslips.",
    "Invoice {ORDER} for {AMOUNT} is overdue since {DATE}.",
    "Call scheduled for {TIME} on {DATE} with the underwriting team.",
    "Refund to {IBAN} approved; card {CARD} closed at the customer's request.",
    "Tax id {NATID} does not match the name {NAME} on the application.",
    "New device signed in from {IP}; confirmation sent to {PHONE}.",
    "Hi, my card number is {CARD} and my phone is {PHONE}, please help.",
]


class CorpusGenerator:
    """Draws values and fills templates from one `random.Random(seed)`."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.slots: dict[str, Callable[[], Value]] = {
            "EMAIL": self.email,
            "PHONE": self.phone,
            "CARD": self.card,
            "IBAN": self.iban,
            "SSN": self.ssn,
            "IP": self.ip,
            "NATID": self.national_id,
        }

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    def invalid(self) -> bool:
        return self.rng.random() < 0.33

    # --- personal data (valid, or a look-alike) ---

    def email(self) -> Value:
        if self.invalid():
            return self.rng.choice(
                [f"image{self.rng.randint(1, 99)}@2x.png", "support@", f"@{self.name().lower()}"]
            ), None
        first, last = self.rng.choice(FIRST).lower(), self.rng.choice(LAST).lower()
        local = self.rng.choice(
            [f"{first}.{last}", f"{first}{self.rng.randint(1, 99)}", f"{first[0]}{last}+loans"]
        )
        return f"{local}@{self.rng.choice(DOMAINS)}", "EMAIL"

    def phone(self) -> Value:
        region = self.rng.choice(PHONE_REGIONS)
        kind = self.rng.choice(
            [phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE]
        )
        example = phonenumbers.example_number_for_type(region, kind)
        assert example is not None
        national = str(example.national_number)
        for _ in range(50):
            number = phonenumbers.parse(f"+{example.country_code}{national[:-4]}{self.digits(4)}")
            if phonenumbers.is_valid_number(number):
                break
        style = self.rng.choice(["national", "national", "international", "e164"])
        fmt = {
            "national": phonenumbers.PhoneNumberFormat.NATIONAL,
            "international": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            "e164": phonenumbers.PhoneNumberFormat.E164,
        }[style]
        text = phonenumbers.format_number(number, fmt)
        if region == "US" and style == "national" and self.rng.random() < 0.4:
            text = text.replace("(", "").replace(") ", ".").replace("-", ".")
        return text, "PHONE"

    def card(self) -> Value:
        brand = self.rng.choice(["visa", "visa", "mastercard", "amex", "discover"])
        prefix, length = {
            "visa": ("4", 16),
            "mastercard": (str(self.rng.randint(51, 55)), 16),
            "amex": (self.rng.choice(["34", "37"]), 15),
            "discover": ("6011", 16),
        }[brand]
        body = prefix + self.digits(length - len(prefix) - 1)
        check = luhn.calc_check_digit(body)
        valid = not self.invalid()
        if not valid:  # any other last digit fails Luhn
            check = str((int(check) + self.rng.randint(1, 9)) % 10)
        number = body + check
        sep = self.rng.choice([" ", " ", "-", ""])
        if length == 15:
            text = sep.join([number[:4], number[4:10], number[10:]])
        else:
            text = sep.join(number[i : i + 4] for i in range(0, 16, 4))
        return text, "CREDIT_CARD" if valid else None

    def iban(self) -> Value:
        country = self.rng.choice(["DE", "GB", "FR", "NL", "ES", "IT"])
        for _ in range(1000):
            bban = {
                "DE": lambda: self.digits(18),
                "GB": lambda: self.rng.choice(["NWBK", "BARC", "HBUK", "MIDL"]) + self.digits(14),
                "FR": lambda: self.digits(10) + self.digits(11) + self.digits(2),
                "NL": lambda: self.rng.choice(["ABNA", "INGB", "RABO"]) + self.digits(10),
                "ES": lambda: _spanish_account(self.digits(20)),
                "IT": lambda: self.rng.choice(string.ascii_uppercase) + self.digits(22),
            }[country]()
            number = country + iban.calc_check_digits(country + "00" + bban) + bban
            if iban.is_valid(number):
                break
        else:
            raise RuntimeError(f"no valid {country} IBAN drawn")
        valid = not self.invalid()
        if not valid:
            wrong = (int(number[2:4]) + self.rng.randint(1, 90)) % 97 + 2
            number = number[:2] + f"{wrong:02d}" + number[4:]
            if iban.is_valid(number):
                valid = True
        text = iban.format(number) if self.rng.random() < 0.8 else number
        return text, "IBAN" if valid else None

    def ssn(self) -> Value:
        area = self.rng.choice([n for n in range(1, 900) if n != 666])
        group, serial = self.rng.randint(1, 99), self.rng.randint(1, 9999)
        label: str | None = "US_SSN"
        if self.invalid():
            label = None
            flaw = self.rng.choice(["000", "666", "9xx", "group", "serial"])
            if flaw == "000":
                area = 0
            elif flaw == "666":
                area = 666
            elif flaw == "9xx":
                area = self.rng.randint(900, 999)
            elif flaw == "group":
                group = 0
            else:
                serial = 0
        sep = "-" if self.rng.random() < 0.85 else " "
        return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}", label

    def ip(self) -> Value:
        if self.invalid():
            return self.rng.choice(
                [
                    f"999.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.1",
                    f"{self.rng.randint(256, 400)}.12.0.{self.rng.randint(1, 254)}",
                    f"10.0.{self.rng.randint(256, 999)}.4",
                    f"v{self.rng.randint(1, 9)}.{self.rng.randint(0, 20)}.{self.rng.randint(0, 9)}.1",
                ]
            ), None
        kind = self.rng.random()
        if kind < 0.6:
            return ".".join(str(self.rng.randint(1, 254)) for _ in range(4)), "IP_ADDRESS"
        groups = [f"{self.rng.randint(0, 0xFFFF):x}" for _ in range(8)]
        if kind < 0.8:
            return ":".join(groups), "IP_ADDRESS"
        return f"2001:db8:{groups[2]}::{groups[7]}", "IP_ADDRESS"

    def national_id(self) -> Value:
        kind = self.rng.choice(["de", "fr", "es", "it", "nl"])
        for _ in range(10000):
            text, ok = self._national(kind)
            if ok:
                break
        else:
            raise RuntimeError(f"no valid {kind} national id drawn")
        if self.invalid():
            last = text[-1]
            swap = string.digits if last.isdigit() else string.ascii_uppercase
            for _ in range(20):
                wrong = text[:-1] + self.rng.choice(swap.replace(last, ""))
                if not self._valid_national(kind, wrong):
                    return wrong, None
        return text, "NATIONAL_ID"

    def _national(self, kind: str) -> tuple[str, bool]:
        if kind == "de":
            text = str(self.rng.randint(1, 9)) + self.digits(10)
            text = f"{text[:2]} {text[2:5]} {text[5:8]} {text[8:]}"
        elif kind == "fr":
            body = (
                f"{self.rng.randint(1, 2)}{self.rng.randint(40, 99)}{self.rng.randint(1, 12):02d}"
            )
            body += f"{self.rng.randint(1, 95):02d}{self.digits(3)}{self.digits(3)}"
            text = f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:]} "
            text += nir.calc_check_digits(body)
        elif kind == "es":
            body = self.digits(8)
            text = body + dni.calc_check_digit(body)
        elif kind == "it":
            letters = "".join(self.rng.choice(string.ascii_uppercase) for _ in range(6))
            month = self.rng.choice("ABCDEHLMPRST")
            day = self.rng.choice([self.rng.randint(1, 28), self.rng.randint(41, 68)])
            body = f"{letters}{self.digits(2)}{month}{day:02d}{self.rng.choice('ABCDEFGHLM')}{self.digits(3)}"
            text = body + codicefiscale.calc_check_digit(body)
        else:
            text = self.digits(9)
        return text, self._valid_national(kind, text)

    @staticmethod
    def _valid_national(kind: str, text: str) -> bool:
        module = {"de": idnr, "fr": nir, "es": dni, "it": codicefiscale, "nl": bsn}[kind]
        return bool(module.is_valid(text))

    # --- neutral slots ---

    def name(self) -> str:
        return f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"

    def neutral(self, slot: str) -> str:
        r = self.rng
        if slot == "NAME":
            return self.name()
        if slot == "DATE":
            y, m, d = r.randint(2019, 2025), r.randint(1, 12), r.randint(1, 28)
            return r.choice(
                [f"{y}-{m:02d}-{d:02d}", f"{d:02d}.{m:02d}.{y}", f"{m:02d}/{d:02d}/{y}"]
            )
        if slot == "TIME":
            return f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}"
        if slot == "AMOUNT":
            return (
                r.choice(["EUR ", "$", "GBP "])
                + f"{r.randint(100, 250000):,}.{r.randint(0, 99):02d}"
            )
        if slot == "ORDER":
            # Order and invoice numbers drawn like phone numbers, but they are not.
            digits = r.choice(["212555", "312555", "0207946", "0301234"]) + self.digits(4)
            return r.choice([f"#{digits}", f"ORD-{digits}", digits])
        if slot == "TICKET":
            return f"TCK-{r.randint(10000, 99999)}"
        if slot == "APP":
            return f"APP-{r.randint(2019, 2025)}-{r.randint(1, 99999):05d}"
        if slot == "MONTHS":
            return str(r.choice([3, 6, 12, 24, 36, 60]))
        if slot == "YEAR":
            return str(r.randint(1995, 2024))
        if slot == "VERSION":
            return f"version {r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)}"
        if slot == "FILE":
            return f"scan_{r.randint(1, 999)}.pdf"
        raise KeyError(slot)

    # --- texts ---

    def sentence(self, template: str) -> tuple[str, list[Span]]:
        parts: list[str] = []
        spans: list[Span] = []
        at = 0
        for literal, slot in _split(template):
            parts.append(literal)
            at += len(literal)
            if slot is None:
                continue
            if slot in self.slots:
                text, label = self.slots[slot]()
                if label is not None:
                    spans.append(Span(label, at, at + len(text)))
            else:
                text = self.neutral(slot)
            parts.append(text)
            at += len(text)
        return "".join(parts), spans

    def sample(self) -> Sample:
        text, spans = self.sentence(self.rng.choice(TEMPLATES))
        if self.rng.random() < 0.4:
            more, more_spans = self.sentence(self.rng.choice(TEMPLATES))
            offset = len(text) + 1
            text = f"{text} {more}"
            spans += [Span(s.entity, s.start + offset, s.end + offset) for s in more_spans]
        return Sample(text, tuple(spans))


def _spanish_account(digits: str) -> str:
    """A Spanish CCC (the IBAN's BBAN) with its two national check digits."""
    return digits[:8] + ccc.calc_check_digits(digits) + digits[10:]


def _split(template: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    rest = template
    while "{" in rest:
        literal, _, tail = rest.partition("{")
        slot, _, rest = tail.partition("}")
        out.append((literal, slot))
    out.append((rest, None))
    return out


def generate(n: int = 6000, seed: int = 20240601) -> list[Sample]:
    """`n` labelled texts, the same for the same seed."""
    gen = CorpusGenerator(seed)
    return [gen.sample() for _ in range(n)]
