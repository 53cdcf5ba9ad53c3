from sending.clients.firetext import FiretextClient


class AcmeClient(FiretextClient):
    """As `sending/clients/acme.py` would be (Firetext's format under another name)."""

    name = "acme"
