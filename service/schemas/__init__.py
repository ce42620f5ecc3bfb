"""Schemas by role: `requests` (what clients send), `responses` (what they get back). The
contract's task payloads stay internal: they are built from requests, never returned as-is."""
