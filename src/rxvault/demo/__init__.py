"""A seeded generator of a realistic demo pharmacy in Visual FoxPro format.

>>> from rxvault.demo import generate
>>> info = generate("/tmp/pharmacy", patients=50, seed=1)     # doctest: +SKIP
>>> info.tables["prescriptions"].records                      # doctest: +SKIP
"""

from rxvault.demo._generate import AS_OF, DemoInfo, DemoTable, generate
from rxvault.demo._next_day import DayChanges, next_day
from rxvault.demo._schema import DBC_NAME, TABLES, TableDef

__all__ = [
    "AS_OF",
    "DBC_NAME",
    "TABLES",
    "DayChanges",
    "DemoInfo",
    "DemoTable",
    "TableDef",
    "generate",
    "next_day",
]
