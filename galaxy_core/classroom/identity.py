"""Who someone is, from what the school's OpenID Connect provider vouches for (the ID token's claims that
Streamlit's `st.user` holds after `st.login`).

A person is known by the provider's issuer and subject: the one pair a provider promises never to give anyone
else. Their e-mail address is what people see, and it decides their role only when the provider has verified it
(`email_verified`): a provider where people set their own address (self-registration) would otherwise let anyone
sign in as the teacher. `trust_unverified_email = true` relaxes that for a provider that never sends the claim
(galaxy-lab serve warns when it is on).
"""

from __future__ import annotations

from collections.abc import Mapping

from galaxy_core.classroom.people import STUDENT, TEACHER, User, printable, user_key


def verified_email(claims: Mapping, trust_unverified: bool) -> str:
    """The claims' e-mail address, when it may decide a role or a domain ("" otherwise)."""
    email = user_key(str(claims.get("email") or ""))
    verified = claims.get("email_verified") in (True, "true")
    return email if email and (verified or trust_unverified) else ""


def oidc_user(claims: Mapping, settings) -> tuple[User | None, str]:
    """(the user these claims vouch for, or None with why) under the settings' teachers, sign-in domains and
    trust_unverified_email."""
    issuer, subject = str(claims.get("iss") or ""), str(claims.get("sub") or "")
    if not issuer or not subject:
        return None, "your school account did not tell this lab who you are (no issuer and subject)"
    email = verified_email(claims, settings.trust_unverified_email)
    shown_email = user_key(str(claims.get("email") or ""))
    if settings.sign_in_domains:
        allowed = ", ".join(f"@{domain}" for domain in settings.sign_in_domains)
        if not email:
            return None, f"this lab is for {allowed} accounts, and your provider has not verified your e-mail address"
        if email.rpartition("@")[2] not in settings.sign_in_domains:
            return None, f"this lab is for {allowed} accounts; you signed in as {email}"
    role = TEACHER if email and email in settings.teachers else STUDENT
    name = printable(str(claims.get("name") or shown_email or subject))
    return User(f"{issuer}#{subject}", name, role), ""
