"""A synthetic, deterministic credit-application data set for the demo.

One row is one consumer-loan application. The columns, in frame order:

================== ========== ============================================================
column             unit       meaning
================== ========== ============================================================
income             EUR / year gross annual income, lognormal around a country median and
                              an age curve; lower for students, pensioners and people out
                              of work. float64, whole euros, > 0.
debt_ratio         ratio      existing debt service divided by income, 0 to 1.5; missing
                              (NaN) for about 4 % of applications. float64.
utilization        ratio      credit-card balance divided by the card limit, 0 to 1.25;
                              above 1 means over the limit. float64.
age                years      applicant's age, 18 to 90. int64.
employment_years   years      years with the current employer, 0 to ``age - 16``; missing
                              (NaN) for students, pensioners, people out of work and a
                              few who did not say. float64, one decimal.
channel            --         where the application came in: ``web``, ``branch``,
                              ``partner`` (a retailer or broker) or ``phone``. category.
country            --         applicant's country: ``DE``, ``FR``, ``NL``, ``ES``, ``IT``.
                              category.
amount             EUR        requested loan amount, 500 to 75 000, in steps of 100;
                              depends on the loan's purpose and the income. float64.
note               --         free text typed by the applicant (web) or the agent (other
                              channels): the loan's purpose and the applicant's job, in
                              varied phrasing, some with typos. Contains no personal data.
                              string.
default            --         the label: 1 if the loan defaulted, else 0; about 11 % ones.
                              int64.
================== ========== ============================================================

The label is drawn from a logistic function of the features plus an unobserved noise
term, so a model can learn it well but not perfectly (held-out ROC AUC about 0.8).
``channel`` and ``country`` always carry the full, fixed category lists `CHANNELS` and
`COUNTRIES`, whatever the sample, so category codes agree between any two frames.

Drift modes
-----------
``generate_applications(n, seed=..., drift=MODE)`` draws the same frame as without `drift`
(same seed, same rows) and then changes exactly one thing, so a monitor can be checked for
flagging what moved and nothing else. Each mode's extra randomness comes from its own
generator, so the columns a mode leaves alone are identical, value for value, to the frame
drawn without drift.

============== ===================================== ======================================
mode           moves                                 leaves alone
============== ===================================== ======================================
income_shift   ``income`` multiplied by 1.4 for      every other column, the label
               every applicant (wage growth, or      included: the label was drawn before
               gross reported where net was meant)   the shift, so risk did not change
new_channel    ``channel``: 30 % of applications     the other features, ``note`` and the
               (taken evenly from every channel)     label; the dtype's categories are
               come in through ``app``, a channel    `CHANNELS` + ``["app"]``
               the training data never saw
noisy_notes    ``note``: half the notes are written  every model feature and the label
               in German or Spanish, the others get
               two or three typos each
concept        the label: ``default`` is drawn       every feature's values (and so every
               again from a different risk function  marginal); the default rate stays
               (debt, card utilisation and income    close (about 9 % instead of 11 %)
               now act the other way round), so a
               model trained before is mostly wrong
============== ===================================== ======================================

Example
-------
>>> frame = generate_applications(1_000, seed=1)
>>> frame.shape
(1000, 10)
>>> list(frame[FEATURES].columns) == FEATURES
True
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd

from bastion.errors import InvalidInput

#: model input columns, in the order the model is trained on
FEATURES = [
    "income",
    "debt_ratio",
    "utilization",
    "age",
    "employment_years",
    "channel",
    "country",
    "amount",
]
#: what a scoring request carries: the model's features plus the free-text note
REQUEST_COLUMNS = [*FEATURES, "note"]
LABEL = "default"

CHANNELS = ["web", "branch", "partner", "phone"]
COUNTRIES = ["DE", "FR", "NL", "ES", "IT"]
CHANNEL_DTYPE = pd.CategoricalDtype(CHANNELS)
COUNTRY_DTYPE = pd.CategoricalDtype(COUNTRIES)

Drift = Literal["income_shift", "new_channel", "noisy_notes", "concept"]
#: the drift modes of `generate_applications`, described in the module docstring
DRIFTS: tuple[Drift, ...] = get_args(Drift)
#: the channel the ``new_channel`` mode brings in, and the share of applications it takes
NEW_CHANNEL = "app"
NEW_CHANNEL_SHARE = 0.3
#: the factor the ``income_shift`` mode multiplies every income by
INCOME_FACTOR = 1.4
#: which request columns each mode moves (the label aside); the others stay as they were
DRIFTED_COLUMNS: dict[Drift, tuple[str, ...]] = {
    "income_shift": ("income",),
    "new_channel": ("channel",),
    "noisy_notes": ("note",),
    "concept": (),
}

_CHANNEL_WEIGHTS = [0.45, 0.25, 0.20, 0.10]
_COUNTRY_WEIGHTS = [0.35, 0.25, 0.10, 0.13, 0.17]
_COUNTRY_MEDIAN_INCOME = np.array([45_000.0, 40_000.0, 47_000.0, 30_000.0, 33_000.0])
# effects on the log-odds of default, in the order of CHANNELS and COUNTRIES
_CHANNEL_RISK = np.array([0.0, -0.4, 0.6, 0.3])
_COUNTRY_RISK = np.array([-0.15, 0.0, -0.25, 0.2, 0.3])
_INTERCEPT = -2.7
# sd of the unobserved part of the risk: sets how well any model can do
_HIDDEN_RISK_SD = 0.6

Floats = npt.NDArray[np.float64]

# Loan purposes: (noun phrase, verb phrase, median amount in EUR).
_PURPOSES: list[tuple[str, str, float]] = [
    ("a new car", "buy a new car", 16_000.0),
    ("a used car", "buy a used car", 8_000.0),
    ("the kitchen renovation", "renovate the kitchen", 18_000.0),
    ("a new bathroom", "redo the bathroom", 14_000.0),
    ("debt consolidation", "consolidate existing loans", 12_000.0),
    ("furniture", "buy furniture for a new flat", 4_000.0),
    ("a family holiday", "pay for a family holiday", 3_000.0),
    ("the wedding", "pay for the wedding", 9_000.0),
    ("university fees", "cover university fees", 7_000.0),
    ("a dental treatment", "pay for a dental treatment", 5_000.0),
    ("equipment for the business", "buy equipment for a small business", 15_000.0),
    ("a new laptop and phone", "replace a laptop and phone", 2_000.0),
    ("solar panels", "install solar panels on the roof", 13_000.0),
]
_CONSOLIDATION = 4

_JOBS = [
    "nurse",
    "software developer",
    "teacher",
    "electrician",
    "warehouse worker",
    "accountant",
    "bus driver",
    "sales assistant",
    "chef",
    "civil engineer",
    "hairdresser",
    "police officer",
    "plumber",
    "graphic designer",
    "care worker",
    "truck driver",
    "office manager",
    "pharmacist",
    "farmer",
    "car mechanic",
]
_STUDENT, _RETIRED, _OUT_OF_WORK = -1, -2, -3


def generate_applications(
    n_rows: int = 20_000, *, seed: int = 7, drift: Drift | None = None
) -> pd.DataFrame:
    """Draw `n_rows` synthetic credit applications with their default label.

    Parameters
    ----------
    n_rows : int
        Number of applications, at least 1.
    seed : int
        Seed for the `numpy.random.Generator`; the same seed gives the same frame.
    drift : one of `DRIFTS`, or None
        Change one thing about the applications (see "Drift modes" in the module
        docstring); None draws them as the model was trained on.

    Returns
    -------
    pandas.DataFrame of shape ``(n_rows, 10)``
        Columns ``FEATURES + ["note", LABEL]``, described in the module docstring.
    """
    if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < 1:
        raise InvalidInput(f"n_rows must be a whole number ≥ 1, got {n_rows!r}")
    if drift is not None and drift not in DRIFTS:
        raise InvalidInput(f"drift must be one of {', '.join(DRIFTS)} or None, got {drift!r}")
    rng = np.random.default_rng(seed)
    n = n_rows

    age = np.minimum(18.0 + rng.gamma(4.0, 6.5, n), 90.0).round().astype(np.int64)
    job = _draw_jobs(rng, age)
    employed = job >= 0
    channel = rng.choice(len(CHANNELS), size=n, p=_CHANNEL_WEIGHTS)
    country = rng.choice(len(COUNTRIES), size=n, p=_COUNTRY_WEIGHTS)

    tenure = np.minimum(rng.exponential(7.0, n), age - 16.0).round(1)
    employment_years = np.where(employed & (rng.random(n) > 0.03), tenure, np.nan)

    # income peaks around 50; students, pensioners and people out of work earn less
    age_curve = 0.35 * np.exp(-(((age - 50.0) / 18.0) ** 2)) - 0.2
    status_factor = np.select(
        [job == _STUDENT, job == _RETIRED, job == _OUT_OF_WORK], [0.35, 0.7, 0.4], 1.0
    )
    log_income = np.log(_COUNTRY_MEDIAN_INCOME[country] * status_factor) + age_curve
    income = np.maximum(np.exp(log_income + rng.normal(0.0, 0.45, n)), 3_000.0).round()

    debt_ratio = np.minimum(rng.gamma(2.0, 0.15, n), 1.5).round(3)
    debt_ratio[rng.random(n) < 0.04] = np.nan
    utilization = np.where(rng.random(n) < 0.12, 0.0, rng.beta(2.0, 3.0, n))
    over_limit = rng.random(n) < 0.03
    utilization[over_limit] = rng.uniform(1.0, 1.25, int(over_limit.sum()))
    utilization = utilization.round(3)

    purpose = _draw_purposes(rng, debt_ratio)
    medians = np.array([p[2] for p in _PURPOSES])[purpose]
    scale = (income / 40_000.0) ** 0.4 * rng.lognormal(0.0, 0.4, n)
    amount = (np.clip(medians * scale, 500.0, 75_000.0) / 100.0).round() * 100.0

    risk = (
        _INTERCEPT
        + 3.5 * (np.nan_to_num(debt_ratio, nan=0.45) - 0.3)
        + 0.5 * np.isnan(debt_ratio)
        + 2.5 * (utilization - 0.4)
        - 0.8 * np.log(income / 38_000.0)
        + 0.6 * np.log(amount / income / 0.25)
        + 0.04 * np.maximum(35.0 - age, 0.0)
        - 0.06 * np.minimum(np.nan_to_num(employment_years, nan=0.0), 15.0)
        + 0.5 * np.isnan(employment_years)
        + _CHANNEL_RISK[channel]
        + _COUNTRY_RISK[country]
        + rng.normal(0.0, _HIDDEN_RISK_SD, n)
    )
    default = (rng.random(n) < 1.0 / (1.0 + np.exp(-risk))).astype(np.int64)

    notes = _write_notes(rng, purpose, job, employment_years, channel)
    frame = pd.DataFrame(
        {
            "income": income,
            "debt_ratio": debt_ratio,
            "utilization": utilization,
            "age": age,
            "employment_years": employment_years,
            "channel": pd.Categorical.from_codes(channel, dtype=CHANNEL_DTYPE),
            "country": pd.Categorical.from_codes(country, dtype=COUNTRY_DTYPE),
            "amount": amount,
            "note": notes,
            LABEL: default,
        }
    )
    if drift is None:
        return frame
    # its own generator, so the columns a mode leaves alone are exactly the undrifted ones
    drift_rng = np.random.default_rng([seed, 1 + DRIFTS.index(drift)])
    return _drifted(frame, drift, drift_rng, purpose)


def _drifted(
    frame: pd.DataFrame, drift: Drift, rng: np.random.Generator, purpose: npt.NDArray[np.int64]
) -> pd.DataFrame:
    """`frame` with one mode's change applied (see the module docstring)."""
    n = len(frame)
    if drift == "income_shift":
        frame["income"] = (frame["income"] * INCOME_FACTOR).round()
    elif drift == "new_channel":
        channels = pd.Categorical(
            frame["channel"], categories=[*CHANNELS, NEW_CHANNEL], ordered=False
        )
        channels[rng.random(n) < NEW_CHANNEL_SHARE] = NEW_CHANNEL
        frame["channel"] = channels
    elif drift == "noisy_notes":
        frame["note"] = _noisy_notes(rng, frame["note"].tolist(), purpose)
    else:
        frame[LABEL] = _concept_labels(rng, frame)
    return frame


def _concept_labels(rng: np.random.Generator, frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Default drawn from a changed risk function of the same features.

    Debt, card utilisation and income act the other way round (as after a shock that hits
    the applicants who looked safest), the other effects stay; the intercept keeps the
    default rate close to the original one.
    """
    debt_ratio = frame["debt_ratio"].to_numpy(dtype=np.float64)
    employment_years = frame["employment_years"].to_numpy(dtype=np.float64)
    income = frame["income"].to_numpy(dtype=np.float64)
    age = frame["age"].to_numpy(dtype=np.float64)
    risk = (
        _INTERCEPT
        - 3.5 * (np.nan_to_num(debt_ratio, nan=0.45) - 0.3)
        - 2.5 * (frame["utilization"].to_numpy(dtype=np.float64) - 0.4)
        + 0.8 * np.log(income / 38_000.0)
        + 0.6 * np.log(frame["amount"].to_numpy(dtype=np.float64) / income / 0.25)
        + 0.04 * np.maximum(35.0 - age, 0.0)
        - 0.06 * np.minimum(np.nan_to_num(employment_years, nan=0.0), 15.0)
        + 0.5 * np.isnan(employment_years)
        + _CHANNEL_RISK[frame["channel"].cat.codes.to_numpy()]
        + _COUNTRY_RISK[frame["country"].cat.codes.to_numpy()]
        + rng.normal(0.0, _HIDDEN_RISK_SD, len(frame))
    )
    default: npt.NDArray[np.int64] = (rng.random(len(frame)) < 1.0 / (1.0 + np.exp(-risk))).astype(
        np.int64
    )
    return default


def _draw_jobs(rng: np.random.Generator, age: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """An index into `_JOBS`, or `_STUDENT`, `_RETIRED`, `_OUT_OF_WORK`, per applicant."""
    n = len(age)
    job = rng.integers(0, len(_JOBS), n)
    draw = rng.random(n)
    job[draw < 0.05] = _OUT_OF_WORK
    job[(age < 26) & (draw > 0.65)] = _STUDENT
    job[(age >= 60) & (age < 67) & (draw > 0.7)] = _RETIRED
    job[(age >= 67) & (draw > 0.1)] = _RETIRED
    return job


def _draw_purposes(rng: np.random.Generator, debt_ratio: Floats) -> npt.NDArray[np.int64]:
    """A purpose per application; people with more debt consolidate more often."""
    n = len(debt_ratio)
    purpose = rng.integers(0, len(_PURPOSES), n)
    consolidate = rng.random(n) < 0.5 * np.nan_to_num(debt_ratio, nan=0.3)
    purpose[consolidate] = _CONSOLIDATION
    return purpose


def _article(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _job_clause(job: int, years: float, first_person: bool, pick: float) -> str:
    """What the applicant does for a living: "I work as ..." or, for an agent, "works as ..."."""
    if job == _STUDENT:
        return (
            "I'm a student with a part-time job"
            if first_person
            else "is a student with a part-time job"
        )
    if job == _RETIRED:
        return (
            "I'm retired and get a monthly pension"
            if first_person
            else "is retired and receives a pension"
        )
    if job == _OUT_OF_WORK:
        return "I'm between jobs at the moment" if first_person else "is currently looking for work"
    title = _article(_JOBS[job])
    if not np.isnan(years) and years >= 2 and pick < 0.5:
        if first_person:
            return f"I have been working as {title} for {int(years)} years"
        return f"has been employed as {title} for {int(years)} years"
    return f"I work as {title}" if first_person else f"works as {title}"


# {noun}/{verb}: the purpose; {job}: the job clause; {who}: how an agent names the applicant
_APPLICANT_TEMPLATES = [
    "I would like to {verb}. {Job}.",
    "Loan for {noun}. {Job}.",
    "Need the money to {verb}, {job}.",
    "Hi, this is for {noun}. {Job} and can pay it back monthly.",
    "Planning to {verb} this year. {Job}.",
    "The loan is for {noun}; {job}.",
]
_AGENT_TEMPLATES = [
    "{Who} wants to {verb}. {Who} {job}.",
    "{Who} asked about a loan for {noun}; {who} {job}.",
    "Wants to {verb}. {Who} {job}.",
    "Purpose: {noun}. {Who} {job}.",
    "Discussed {noun} with the {who}, who {job}.",
    "{Who} plans to {verb} and {job}. Documents checked.",
]
_AGENT_NAMES = ["customer", "applicant", "client"]


def _write_notes(
    rng: np.random.Generator,
    purpose: npt.NDArray[np.int64],
    job: npt.NDArray[np.int64],
    employment_years: Floats,
    channel: npt.NDArray[np.int64],
) -> list[str]:
    """One note per application from templates; web notes are first person, others an agent's."""
    draws = rng.random((len(purpose), 6))
    notes = []
    for i in range(len(purpose)):
        first_person = channel[i] == 0
        templates = _APPLICANT_TEMPLATES if first_person else _AGENT_TEMPLATES
        template = templates[int(draws[i, 0] * len(templates))]
        noun, verb, _ = _PURPOSES[purpose[i]]
        clause = _job_clause(int(job[i]), float(employment_years[i]), first_person, draws[i, 1])
        who = _AGENT_NAMES[int(draws[i, 5] * len(_AGENT_NAMES))]
        note = template.format(
            noun=noun,
            verb=verb,
            job=clause,
            Job=clause[0].upper() + clause[1:],
            who=who,
            Who=who.capitalize(),
        )
        if draws[i, 2] < 0.1:
            note = _add_typo(note, draws[i, 3])
        if draws[i, 4] < 0.08:
            note = note.lower().rstrip(".")
        notes.append(note)
    return notes


def _add_typo(text: str, pick: float) -> str:
    """Swap two neighbouring letters in one of the longer words, as fast typists do."""
    words = text.split(" ")
    long_words = [i for i, word in enumerate(words) if len(word) >= 5 and word.isalpha()]
    if not long_words:
        return text
    index = long_words[int(pick * len(long_words))]
    word = words[index]
    at = 1 + int(pick * 997) % (len(word) - 2)
    words[index] = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    return " ".join(words)


# The purposes of `_PURPOSES`, in the same order, in German and Spanish.
_FOREIGN_PURPOSES = {
    "de": [
        "ein neues Auto",
        "ein Gebrauchtwagen",
        "die Renovierung der Küche",
        "ein neues Badezimmer",
        "die Umschuldung bestehender Kredite",
        "neue Möbel",
        "ein Familienurlaub",
        "die Hochzeit",
        "die Studiengebühren",
        "eine Zahnbehandlung",
        "Ausrüstung für das Geschäft",
        "ein neuer Laptop und ein Handy",
        "Solaranlage auf dem Dach",
    ],
    "es": [
        "un coche nuevo",
        "un coche de segunda mano",
        "la reforma de la cocina",
        "un baño nuevo",
        "la consolidación de deudas",
        "muebles para el piso",
        "unas vacaciones en familia",
        "la boda",
        "la matrícula de la universidad",
        "un tratamiento dental",
        "equipos para el negocio",
        "un portátil y un móvil nuevos",
        "placas solares en el tejado",
    ],
}
_FOREIGN_TEMPLATES = {
    "de": [
        "Der Kredit ist für {noun}. Ich arbeite seit Jahren und kann monatlich zahlen.",
        "Kunde möchte {noun} finanzieren, Unterlagen geprüft.",
        "Brauche das Geld für {noun}, Rückzahlung über drei Jahre.",
    ],
    "es": [
        "El préstamo es para {noun}. Trabajo desde hace años y puedo pagar cada mes.",
        "El cliente quiere financiar {noun}; documentos revisados.",
        "Necesito el dinero para {noun}, lo devolveré en tres años.",
    ],
}


def _noisy_notes(
    rng: np.random.Generator, notes: list[str], purpose: npt.NDArray[np.int64]
) -> list[str]:
    """Half the notes rewritten in German or Spanish (same purpose), the rest with typos."""
    draws = rng.random((len(notes), 6))
    noisy = []
    for i, note in enumerate(notes):
        if draws[i, 0] < 0.5:
            language = "de" if draws[i, 1] < 0.5 else "es"
            templates = _FOREIGN_TEMPLATES[language]
            template = templates[int(draws[i, 2] * len(templates))]
            noisy.append(template.format(noun=_FOREIGN_PURPOSES[language][purpose[i]]))
            continue
        for pick in draws[i, 3 : 5 if draws[i, 2] < 0.5 else 6]:
            note = _add_typo(note, float(pick))
        noisy.append(note)
    return noisy
