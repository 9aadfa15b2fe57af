"""Word lists for the demo pharmacy: names (with cp1252 accents), places, drugs, sigs.

All of it is invented; any resemblance to a real person is chance. The NDC codes are made up
(5-4-2 format) and are not real products' codes.
"""

from __future__ import annotations

from dataclasses import dataclass


def _words(text: str) -> list[str]:
    return text.split()


FIRST_NAMES_F = [
    *_words(
        "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy "
        "Betty Margaret Sandra Ashley Kimberly Emily Donna Michelle Carol Amanda Dorothy "
        "Melissa Deborah Stephanie Rebecca Sharon Laura Cynthia Kathleen Amy Angela Shirley "
        "Anna Brenda Pamela Emma Nicole Helen Samantha Katherine Christine Debra Rachel "
        "Carolyn Janet Catherine Maria Heather Diane Ruth Julie Olivia Joyce Virginia "
        "Victoria Kelly Lauren Christina Joan Evelyn Judith Megan Andrea Cheryl Hannah "
        "Jacqueline Martha Gloria Teresa Ann Sara Madison Frances Kathryn Janice Jean Abigail "
        "Alice Judy Sophia Grace Denise Amber Doris Marilyn Danielle Beverly Isabella Theresa "
        "Diana Natalie Brittany Charlotte Marie Kayla Alexis Lori"
    ),
    "Zoë",
    "Renée",
    "Chloé",
    "Inés",
    "Agnès",
    "Noëlle",
    "Béatrice",
    "Hélène",
    "María José",
    "Zoé",
    "Anaïs",
    "Siân",
    "Åsa",
    "Sørine",
]

FIRST_NAMES_M = [
    *_words(
        "James Robert John Michael David William Richard Joseph Thomas Christopher Charles "
        "Daniel Matthew Anthony Mark Donald Steven Andrew Paul Joshua Kenneth Kevin Brian "
        "George Timothy Ronald Jason Edward Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan "
        "Stephen Larry Justin Scott Brandon Benjamin Samuel Gregory Alexander Patrick Frank "
        "Raymond Jack Dennis Jerry Tyler Aaron Henry Douglas Peter Adam Nathan Zachary Walter "
        "Kyle Harold Carl Jeremy Gerald Keith Roger Arthur Terry Lawrence Sean Christian "
        "Ethan Austin Joe Albert Jesse Willie Billy Bryan Bruce Noah Jordan Dylan Ralph Roy "
        "Alan Wayne Eugene Juan Gabriel Louis Russell Randy Vincent Philip"
    ),
    "José",
    "François",
    "Ramón",
    "Björn",
    "Søren",
    "Noël",
    "Jesús",
    "André",
    "Óscar",
    "Joël",
    "Jürgen",
    "Raphaël",
    "Iñigo",
]

LAST_NAMES = [
    *_words(
        "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore "
        "Martin Jackson Thompson White Harris Clark Lewis Robinson Walker Young Allen King "
        "Wright Scott Hill Green Adams Baker Nelson Carter Mitchell Roberts Turner Phillips "
        "Campbell Parker Evans Edwards Collins Stewart Morris Murphy Cook Rogers Morgan "
        "Cooper Peterson Reed Bailey Bell Kelly Howard Ward Cox Richardson Wood Watson Brooks "
        "Bennett Gray James Hughes Price Sanders Myers Long Ross Foster Powell Jenkins Perry "
        "Russell Sullivan Fisher Henderson Coleman Simmons Patterson Jordan Reynolds Hamilton "
        "Graham Kim Wallace Cole West Stone Hayes Gibson Ellis Ford Marshall Owens Nguyen "
        "Tran Patel Shah Chen Wang Lee Rivera Torres Ramirez Flores Cruz Reyes Morales Ortiz "
        "Gutierrez Chavez Ramos Ruiz Alvarez Mendoza Castillo Vasquez Romero Herrera Medina "
        "Aguilar"
    ),
    "García",
    "Martínez",
    "Rodríguez",
    "Hernández",
    "González",
    "Pérez",
    "Sánchez",
    "Gómez",
    "Peña",
    "Núñez",
    "Muñoz",
    "Ibáñez",
    "Müller",
    "Schäfer",
    "Köhler",
    "Weiß",
    "Brontë",
    "Lefèvre",
    "Bélanger",
    "Côté",
    "Gagné",
    "O'Brien",
    "O'Connor",
    "D'Angelo",
    "Åberg",
    "Jørgensen",
    "Šimek",
    "Strauß",
    "Nowak",
    "Kowalski",
]

MIDDLE_INITIALS = list("ABCDEFGHJKLMNPRSTW")

STREETS = _words(
    "Main Oak Maple Cedar Pine Elm Washington Lake Hill Park Walnut Sunset Lincoln Jackson Church "
    "River Highland Meadow Forest Spring Willow Jefferson Madison Franklin Chestnut Cherry "
    "Ridge Valley Mill Prospect Laurel Dogwood Magnolia Sycamore Birch Hickory Poplar Adams"
)
STREET_TYPES = ["St", "Ave", "Rd", "Dr", "Ln", "Ct", "Blvd", "Way", "Pl", "Ter"]
UNITS = ["Apt 1", "Apt 2B", "Apt 3C", "Unit 4", "Apt 12", "Suite 200", "Apt 5A", "#7", "Lot 14"]

# (city, state, first three digits of the ZIP code)
CITIES = [
    ("Springfield", "IL", "627"),
    ("Riverside", "CA", "925"),
    ("Franklin", "TN", "370"),
    ("Greenville", "SC", "296"),
    ("Bristol", "CT", "060"),
    ("Clinton", "IA", "527"),
    ("Fairview", "OR", "970"),
    ("Salem", "MA", "019"),
    ("Madison", "WI", "537"),
    ("Georgetown", "TX", "786"),
    ("Arlington", "VA", "222"),
    ("Ashland", "OH", "448"),
    ("Burlington", "VT", "054"),
    ("Manchester", "NH", "031"),
    ("Milton", "FL", "325"),
    ("Newport", "RI", "028"),
    ("Oxford", "MS", "386"),
    ("Dover", "DE", "199"),
    ("Auburn", "AL", "368"),
    ("Jackson", "MI", "492"),
    ("Santa Fe", "NM", "875"),
    ("Española", "NM", "875"),
    ("Cañon City", "CO", "812"),
    ("Boise", "ID", "837"),
]
AREA_CODES = ["217", "951", "615", "864", "860", "563", "503", "978", "608", "512", "703", "419"]

EMAIL_DOMAINS = ["example.com", "example.net", "example.org", "mail.example.com"]

INSURANCE_PLANS = [
    "Medicare Part D",
    "Medicaid",
    "BlueCross PPO",
    "Aetna Choice",
    "UnitedHealthcare",
    "Cigna HMO",
    "Humana Gold",
    "Tricare",
]

PATIENT_NOTES = [
    "Prefers large-print labels.",
    "Call before refilling; patient travels often.",
    "Spanish-speaking; print labels in Spanish.",
    "Uses blister packs.",
    "Deliver to home on Tuesdays.",
    "Caregiver picks up: daughter.",
    "Easy-open caps requested.",
    "Hard of hearing; text message preferred.",
    "Pays cash; ask about discount card.",
    "Vacation supply approved by plan once a year.",
]

ALLERGENS = [
    ("Penicillin", "SEVERE"),
    ("Sulfa drugs", "MODERATE"),
    ("Codeine", "MODERATE"),
    ("Aspirin", "MILD"),
    ("Ibuprofen", "MILD"),
    ("Latex", "MODERATE"),
    ("Amoxicillin", "SEVERE"),
    ("Cephalosporins", "MODERATE"),
    ("Morphine", "MODERATE"),
    ("Peanuts", "SEVERE"),
    ("Shellfish", "SEVERE"),
    ("Eggs", "MILD"),
    ("Iodine contrast", "MODERATE"),
    ("Tetracycline", "MILD"),
    ("Erythromycin", "MILD"),
]
REACTIONS = ["Hives", "Rash", "Anaphylaxis", "Nausea", "Swelling", "Itching", "Wheezing"]

CREDENTIALS = ["MD", "MD", "MD", "DO", "NP", "PA-C", "DDS", "DPM"]
PRACTICE_WORDS = ["Family", "Internal", "Community", "Valley", "Lakeside", "Riverside", "Summit"]
PRACTICE_KINDS = ["Medicine", "Health Center", "Clinic", "Medical Group", "Pediatrics", "Dental"]

PHARMACISTS = ["JRM", "ALK", "DPW", "SMT", "KLC", "RHB", "MEG"]


@dataclass(frozen=True)
class Drug:
    name: str
    generic: str
    strengths: tuple[str, ...]
    form: str
    schedule: str | None
    unit_price: float  # per dispensed unit (tablet, mL, gram, inhaler)
    chronic: bool
    weight: float  # how often it is prescribed, relative


def _d(
    name: str,
    generic: str,
    strengths: str,
    form: str,
    price: float,
    *,
    schedule: str | None = None,
    chronic: bool = True,
    weight: float = 1.0,
) -> Drug:
    return Drug(name, generic, tuple(strengths.split("|")), form, schedule, price, chronic, weight)


DRUGS = [
    _d("Lisinopril", "lisinopril", "5 mg|10 mg|20 mg|40 mg", "tablet", 0.12, weight=6),
    _d("Atorvastatin", "atorvastatin calcium", "10 mg|20 mg|40 mg|80 mg", "tablet", 0.18, weight=6),
    _d("Metformin", "metformin hydrochloride", "500 mg|850 mg|1000 mg", "tablet", 0.08, weight=5),
    _d(
        "Levothyroxine",
        "levothyroxine sodium",
        "25 mcg|50 mcg|75 mcg|100 mcg",
        "tablet",
        0.22,
        weight=5,
    ),
    _d("Amlodipine", "amlodipine besylate", "2.5 mg|5 mg|10 mg", "tablet", 0.10, weight=5),
    _d(
        "Metoprolol Succinate ER",
        "metoprolol succinate",
        "25 mg|50 mg|100 mg",
        "tablet",
        0.25,
        weight=4,
    ),
    _d("Omeprazole", "omeprazole", "20 mg|40 mg", "capsule", 0.20, weight=4),
    _d("Simvastatin", "simvastatin", "10 mg|20 mg|40 mg", "tablet", 0.09, weight=3),
    _d("Losartan", "losartan potassium", "25 mg|50 mg|100 mg", "tablet", 0.14, weight=4),
    _d("Albuterol HFA", "albuterol sulfate", "90 mcg/act", "inhaler", 32.50, weight=2),
    _d("Gabapentin", "gabapentin", "100 mg|300 mg|400 mg", "capsule", 0.15, weight=3),
    _d("Hydrochlorothiazide", "hydrochlorothiazide", "12.5 mg|25 mg", "tablet", 0.06, weight=3),
    _d("Sertraline", "sertraline hydrochloride", "25 mg|50 mg|100 mg", "tablet", 0.11, weight=3),
    _d("Escitalopram", "escitalopram oxalate", "10 mg|20 mg", "tablet", 0.13, weight=2),
    _d("Amoxicillin", "amoxicillin", "250 mg|500 mg", "capsule", 0.18, chronic=False, weight=3),
    _d(
        "Amoxicillin",
        "amoxicillin",
        "250 mg/5 mL|400 mg/5 mL",
        "suspension",
        0.05,
        chronic=False,
        weight=1,
    ),
    _d("Azithromycin", "azithromycin", "250 mg|500 mg", "tablet", 0.95, chronic=False, weight=2),
    _d("Cephalexin", "cephalexin", "250 mg|500 mg", "capsule", 0.21, chronic=False, weight=1.5),
    _d(
        "Ciprofloxacin",
        "ciprofloxacin hydrochloride",
        "250 mg|500 mg",
        "tablet",
        0.30,
        chronic=False,
    ),
    _d("Prednisone", "prednisone", "5 mg|10 mg|20 mg", "tablet", 0.07, chronic=False, weight=2),
    _d(
        "Hydrocodone/APAP",
        "hydrocodone bitartrate and acetaminophen",
        "5-325 mg|10-325 mg",
        "tablet",
        0.45,
        schedule="2",
        chronic=False,
        weight=1.5,
    ),
    _d(
        "Oxycodone",
        "oxycodone hydrochloride",
        "5 mg|10 mg",
        "tablet",
        0.60,
        schedule="2",
        chronic=False,
    ),
    _d(
        "Methylphenidate ER",
        "methylphenidate hydrochloride",
        "18 mg|36 mg",
        "tablet",
        3.10,
        schedule="2",
    ),
    _d("Alprazolam", "alprazolam", "0.25 mg|0.5 mg|1 mg", "tablet", 0.10, schedule="4"),
    _d("Lorazepam", "lorazepam", "0.5 mg|1 mg", "tablet", 0.12, schedule="4"),
    _d("Zolpidem", "zolpidem tartrate", "5 mg|10 mg", "tablet", 0.16, schedule="4"),
    _d("Tramadol", "tramadol hydrochloride", "50 mg", "tablet", 0.12, schedule="4", chronic=False),
    _d("Pregabalin", "pregabalin", "75 mg|150 mg", "capsule", 0.55, schedule="5"),
    _d("Fluticasone", "fluticasone propionate", "50 mcg/act", "nasal spray", 14.80),
    _d("Insulin Glargine", "insulin glargine", "100 units/mL", "injection", 24.00),
    _d("Montelukast", "montelukast sodium", "10 mg", "tablet", 0.19, weight=2),
    _d("Pantoprazole", "pantoprazole sodium", "20 mg|40 mg", "tablet", 0.17, weight=3),
    _d("Furosemide", "furosemide", "20 mg|40 mg", "tablet", 0.05, weight=2),
    _d("Warfarin", "warfarin sodium", "2 mg|5 mg", "tablet", 0.09),
    _d("Clopidogrel", "clopidogrel bisulfate", "75 mg", "tablet", 0.16, weight=2),
    _d("Tamsulosin", "tamsulosin hydrochloride", "0.4 mg", "capsule", 0.14, weight=2),
    _d("Meloxicam", "meloxicam", "7.5 mg|15 mg", "tablet", 0.06, weight=2),
    _d(
        "Cyclobenzaprine",
        "cyclobenzaprine hydrochloride",
        "5 mg|10 mg",
        "tablet",
        0.08,
        chronic=False,
    ),
    _d("Trazodone", "trazodone hydrochloride", "50 mg|100 mg", "tablet", 0.09, weight=2),
    _d("Bupropion XL", "bupropion hydrochloride", "150 mg|300 mg", "tablet", 0.40),
    _d("Rosuvastatin", "rosuvastatin calcium", "5 mg|10 mg|20 mg", "tablet", 0.21, weight=2),
    _d("Carvedilol", "carvedilol", "3.125 mg|6.25 mg|12.5 mg|25 mg", "tablet", 0.07),
    _d("Spironolactone", "spironolactone", "25 mg|50 mg", "tablet", 0.10),
    _d("Glipizide", "glipizide", "5 mg|10 mg", "tablet", 0.07),
    _d("Ondansetron ODT", "ondansetron", "4 mg|8 mg", "tablet", 0.35, chronic=False),
    _d("Valacyclovir", "valacyclovir hydrochloride", "500 mg|1 g", "tablet", 0.70, chronic=False),
    _d("Famotidine", "famotidine", "20 mg|40 mg", "tablet", 0.06),
    _d("Estradiol", "estradiol", "1 mg|2 mg", "tablet", 0.20),
    _d("Doxycycline Hyclate", "doxycycline hyclate", "100 mg", "capsule", 0.45, chronic=False),
    _d(
        "Nitrofurantoin",
        "nitrofurantoin monohydrate/macrocrystals",
        "100 mg",
        "capsule",
        0.80,
        chronic=False,
    ),
    _d("Benzonatate", "benzonatate", "100 mg|200 mg", "capsule", 0.20, chronic=False),
    _d("Triamcinolone", "triamcinolone acetonide", "0.1 %|0.5 %", "cream", 0.25, chronic=False),
    _d("Mupirocin", "mupirocin", "2 %", "ointment", 0.55, chronic=False),
    _d("Latanoprost", "latanoprost", "0.005 %", "eye drops", 9.50),
]

# Sig templates per dosage form: (text, dispensed units per day)
SIGS: dict[str, list[tuple[str, float]]] = {
    "tablet": [
        ("Take 1 tablet by mouth once daily", 1),
        ("Take 1 tablet by mouth twice daily", 2),
        ("Take 1 tablet by mouth three times daily", 3),
        ("Take 1 tablet by mouth at bedtime", 1),
        ("Take 1 tablet by mouth every morning", 1),
        ("Take 2 tablets by mouth once daily", 2),
        ("Take 1/2 tablet by mouth once daily", 0.5),
        ("Take 1 tablet by mouth once daily with food", 1),
        ("Take 1 tablet by mouth every 6 hours as needed for pain", 4),
        ("Take 1 tablet by mouth every 8 hours as needed for nausea", 3),
    ],
    "capsule": [
        ("Take 1 capsule by mouth once daily", 1),
        ("Take 1 capsule by mouth twice daily", 2),
        ("Take 1 capsule by mouth three times daily", 3),
        ("Take 1 capsule by mouth every 12 hours until gone", 2),
        ("Take 1 capsule by mouth 30 minutes before breakfast", 1),
    ],
    "suspension": [
        ("Take 5 mL by mouth twice daily for 10 days", 10),
        ("Take 7.5 mL by mouth every 12 hours for 10 days; shake well", 15),
    ],
    "inhaler": [("Inhale 2 puffs by mouth every 4 to 6 hours as needed for wheezing", 0)],
    "nasal spray": [("Use 2 sprays in each nostril once daily", 0)],
    "injection": [("Inject 20 units under the skin at bedtime", 0)],
    "cream": [("Apply a thin layer to the affected area twice daily", 0)],
    "ointment": [("Apply to the affected area three times daily for 10 days", 0)],
    "eye drops": [("Instill 1 drop in each eye at bedtime", 0)],
}

# Units dispensed per fill for forms whose quantity is a package, not a daily count
PACKAGE_QUANTITY = {
    "inhaler": 1.0,
    "nasal spray": 16.0,
    "injection": 10.0,
    "cream": 30.0,
    "ointment": 22.0,
    "eye drops": 2.5,
}
