"""One mailbox, however its address is written.

Addresses are kept as people give them, and each variant is its own subscriber; but
what protects a mailbox from being flooded — the confirmation cooldown and the
per-address rate limits — counts per mailbox: case does not matter, a `+tag` in the
local part is dropped, and so are dots in the local part where the provider ignores
them (Gmail, under either of its domains). `A.lice+1@GMAIL.com` and
`alice+2@googlemail.com` are one mailbox, `alice@gmail.com`."""

from __future__ import annotations

# Domains whose mailboxes ignore dots in the local part, and the domain each stands for.
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox(address: str) -> str:
    """The mailbox `address` delivers to, as a key; any string is accepted."""
    address = address.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return address
    domain = domain.rstrip(".")
    local = local.split("+", 1)[0] or local
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "") or local
        domain = DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"
