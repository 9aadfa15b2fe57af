"""Security harnesses: a malicious server, a stolen database, attacks on the web app."""
