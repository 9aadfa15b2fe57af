"""rxvault: publish a pharmacy's Visual FoxPro records so that only each patient can read their own.

Packages:

- :mod:`rxvault.dbf`: a pure, strict, columnar reader (and a writer) of Visual FoxPro / dBase files.
- :mod:`rxvault.format`: the wire format and all cryptography (pure, no I/O).
- :mod:`rxvault.demo`: a seeded generator of a realistic demo pharmacy in VFP format.
"""

__version__ = "0.1.0.dev0"
