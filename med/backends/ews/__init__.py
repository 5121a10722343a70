"""The EWS backend (exchangelib), as a package of the parts every backend has.

- `backend`: `EwsBackend`, the `med.backends.base.Backend` over exchangelib.
- `convert`: exchangelib values <-> `med.model` values.
- `errors`: the EWS response-code table and the translation of every exchangelib error.
- `events`: streaming/pull subscriptions as `MailboxEvent`s.
- `patches`: what medbridge changes in exchangelib, behind an explicit `install()`.
"""

from med.auth.negotiate import NEGOTIATE
from med.backends.ews.backend import EwsBackend
from med.backends.ews.errors import EWS_ERRORS, translate_error

__all__ = ["EWS_ERRORS", "NEGOTIATE", "EwsBackend", "translate_error"]
