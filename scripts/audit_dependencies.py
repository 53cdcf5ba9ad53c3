"""CI: pip-audit over the pinned requirements. Fails (exit 1) on a known vulnerability that has
a fixed version to move to; reports one without a fix. When the vulnerability service can't be
reached, or can't answer for a package, it says so loudly and passes: a network blip must not
turn CI red, and the next run audits again.

    .venv/bin/python scripts/audit_dependencies.py requirements.txt requirements-dev.txt
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ATTEMPTS = 2


def audit(requirements: list[str]) -> dict | None:
    """pip-audit's JSON report, or None when it could not produce one."""
    pip_audit = Path(sys.executable).with_name("pip-audit")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        for attempt in range(1, ATTEMPTS + 1):
            command = [str(pip_audit), "--no-deps", "--disable-pip", "--progress-spinner=off"]
            command += [f"--requirement={name}" for name in requirements]
            command += ["--format=json", f"--output={report}", "--timeout=30"]
            try:
                result = subprocess.run(command, capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.TimeoutExpired) as err:  # not installed, or hung
                print(f"pip-audit attempt {attempt} failed: {err}")
                continue
            # 0: nothing found; 1: vulnerabilities found. Anything else, or no report: the
            # service (or the network) failed.
            if result.returncode in (0, 1) and report.exists():
                return json.loads(report.read_text())
            print(f"pip-audit attempt {attempt} failed: {result.stderr.strip()[-500:]}")
    return None


def verdict(report: dict | None) -> tuple[int, list[str]]:
    """The exit code and the lines to print for a pip-audit JSON report."""
    if report is None:
        return 0, ["WARNING: pip-audit could not reach its vulnerability service: NOT audited"]
    lines, fixable = [], 0
    for dependency in report.get("dependencies", []):
        name, version = dependency["name"], dependency.get("version", "?")
        if "skip_reason" in dependency:
            lines.append(f"WARNING: {name} not audited: {dependency['skip_reason']}")
        for vuln in dependency.get("vulns", []):
            fixes = vuln.get("fix_versions") or []
            ids = ", ".join([vuln["id"], *vuln.get("aliases", [])])
            if fixes:
                fixable += 1
                lines.append(f"VULNERABLE: {name} {version}: {ids}; fixed in {', '.join(fixes)}")
            else:
                lines.append(f"known, no fix yet: {name} {version}: {ids}")
    audited = sum("skip_reason" not in d for d in report.get("dependencies", []))
    lines.append(f"{audited} pinned requirement(s) audited, {fixable} vulnerability(ies) to fix")
    return (1 if fixable else 0), lines


def main(requirements: list[str]) -> int:
    code, lines = verdict(audit(requirements))
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["requirements.txt"]))
