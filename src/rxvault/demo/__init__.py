"""A seeded generator of a realistic demo pharmacy in Visual FoxPro format."""
