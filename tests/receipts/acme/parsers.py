from receipts.parsers.firetext import FiretextInboundParser, FiretextReceiptParser


class AcmeReceiptParser(FiretextReceiptParser):
    """As `receipts/parsers/acme.py` would be (Firetext's format under another name)."""

    name = "acme"
    display_name = "Acme"


class AcmeInboundParser(FiretextInboundParser):
    name = "acme-inbound"
    display_name = "Acme"
