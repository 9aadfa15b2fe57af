"""A pure, strict, columnar reader of Visual FoxPro and dBase tables."""
