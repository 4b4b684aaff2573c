"""What a teacher should check before a lesson: who signs in and how, who is a teacher, where the lab is served,
and what would leave it open. `galaxy-lab serve` prints it at start; the Home page repeats the warnings."""

from __future__ import annotations

import ipaddress

from galaxy_core.classroom.access import Action, require
from galaxy_core.classroom.people import User
from galaxy_core.classroom.roster import TEACHER_NAME, Roster

LOOPBACK_NAMES = ("localhost",)


def is_loopback(address: str | None) -> bool:
    """Whether a server bound to `address` is reachable from this machine only ("" or None: every interface)."""
    if not address:
        return False
    if address in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warnings(settings, address: str | None) -> list[str]:
    """What leaves this lab open to more than its class, in the words of a warning."""
    warnings = []
    if settings.auth == "none" and not is_loopback(address):
        warnings.append(
            'Sign-in is off (auth = "none") and the lab is served beyond this machine: anyone who can open it is the '
            'teacher. Serve it on 127.0.0.1, or set auth = "roster" or "oidc" (docs/admin.md, "Serving a class").'
        )
    if settings.auth == "oidc" and settings.trust_unverified_email:
        warnings.append(
            "trust_unverified_email is on: an e-mail address the provider has not verified can match a teacher or a "
            "sign-in domain, so anyone who can set their own address at the provider can sign in as a teacher."
        )
    if settings.auth == "roster" and not Roster(settings.runs_dir).has_teacher_secret():
        warnings.append("The roster has no teacher secret yet: galaxy-lab roster teacher makes one.")
    return warnings


def sign_in_summary(settings, address: str | None, port: int) -> list[str]:
    """The lines `galaxy-lab serve` prints before it serves: the address, the settings, who signs in and the
    warnings."""
    where = f"{address}:{port}" if address else f"every address of this machine, port {port}"
    lines = [f"serving on {where}", f"settings: {settings.source}", f"runs: {settings.runs_dir}"]
    if settings.auth == "none":
        lines.append('sign-in: none (auth = "none"): whoever opens the lab is the teacher')
    elif settings.auth == "roster":
        roster = Roster(settings.runs_dir)
        secret = "set" if roster.has_teacher_secret() else "not set"
        lines.append(
            f"sign-in: roster, {len(roster.students())} student(s); the teacher signs in as "
            f"{TEACHER_NAME!r} (secret {secret})"
        )
    else:
        domains = ", ".join(f"@{domain}" for domain in settings.sign_in_domains) or "any account of the provider"
        lines.append(f"sign-in: oidc (.streamlit/secrets.toml [auth]); who may sign in: {domains}")
        lines.append(f"teachers (by verified e-mail): {', '.join(settings.teachers) or 'none'}")
    if settings.auth != "none":
        lines.append(f"client addresses from X-Forwarded-For of: {', '.join(settings.trusted_proxies) or 'no proxy'}")
    return lines + [f"WARNING: {warning}" for warning in exposure_warnings(settings, address)]


def server_settings(settings, user: User) -> list[str]:
    """The settings in force, for a teacher (NotAllowedError for a student): where they were read from, the server's
    folders and its limits."""
    require(user, Action.SEE_SERVER_SETTINGS)
    roots = [f"  {root}" + ("" if root.is_dir() else " (missing)") for root in settings.data_roots]
    return [
        f"Read from: {settings.source}",
        "Data roots:",
        *(roots or ["  none: only the synthetic dataset is offered"]),
        f"New sessions start on: {settings.default_dataset}",
        f"Cache: {settings.cache_dir}",
        f"Runs: {settings.runs_dir}",
        f"Upload limit: {settings.upload_limit_mb} MB",
        f"Training: at most {settings.max_concurrent_runs} run(s) at once, {settings.max_queued_runs} waiting, "
        f"{settings.max_epochs} epochs each",
    ]
