"""The CI gate over pip-audit's report (scripts/audit_dependencies.py): red on a vulnerability
with a fix, green (and loud) when nothing could be audited."""

import importlib.util

from tests.conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location(
    "audit_dependencies", REPO_ROOT / "scripts" / "audit_dependencies.py"
)
audit_dependencies = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit_dependencies)
verdict = audit_dependencies.verdict


def report(*dependencies: dict) -> dict:
    return {"dependencies": list(dependencies), "fixes": []}


def test_a_vulnerability_with_a_fix_fails_naming_it():
    code, lines = verdict(
        report(
            {"name": "django", "version": "5.2.19", "vulns": []},
            {
                "name": "requests",
                "version": "2.0.0",
                "vulns": [
                    {
                        "id": "PYSEC-2023-74",
                        "fix_versions": ["2.31.0"],
                        "aliases": ["CVE-2023-32681"],
                    }
                ],
            },
        )
    )
    assert code == 1
    assert "VULNERABLE: requests 2.0.0: PYSEC-2023-74, CVE-2023-32681; fixed in 2.31.0" in lines
    assert lines[-1] == "2 pinned requirement(s) audited, 1 vulnerability(ies) to fix"


def test_a_vulnerability_without_a_fix_is_reported_and_passes():
    code, lines = verdict(
        report(
            {"name": "x", "version": "1", "vulns": [{"id": "GHSA-1", "fix_versions": []}]},
        )
    )
    assert code == 0
    assert "known, no fix yet: x 1: GHSA-1" in lines


def test_an_unreachable_service_passes_loudly():
    code, lines = verdict(None)
    assert code == 0
    assert lines == ["WARNING: pip-audit could not reach its vulnerability service: NOT audited"]


def test_a_package_the_service_does_not_know_is_named():
    code, lines = verdict(report({"name": "gunicorn", "skip_reason": "not found on PyPI"}))
    assert code == 0
    assert lines[0] == "WARNING: gunicorn not audited: not found on PyPI"
