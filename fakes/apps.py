from django.apps import AppConfig


class FakesConfig(AppConfig):
    """Local Firetext, MMG and SES for `make run`, the tests and the benchmarks: a development
    and test tool, not part of sending (no models)."""

    name = "fakes"
    verbose_name = "Fake providers"
