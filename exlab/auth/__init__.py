"""Logins to the lab: Basic, NTLM and Negotiate/Kerberos, as IIS offers them for Exchange."""

from exlab.auth.authenticator import (
    DEMO_DOMAIN,
    LabAuthenticator,
    PasswordChecker,
    UserDirectory,
    demo_passwords,
    mailbox_address,
)

__all__ = [
    "DEMO_DOMAIN",
    "LabAuthenticator",
    "PasswordChecker",
    "UserDirectory",
    "demo_passwords",
    "mailbox_address",
]
