"""Errors of the messenger's domain rules; the server maps each class to one HTTP status.

StoreError
 ├── NotFound        unknown id, or an id the caller may not see (another tenant's)
 ├── Forbidden       the caller is known but lacks the right (not an admin of the group)
 ├── Conflict        a unique thing exists already (e-mail, device id, domain)
 │    └── MembershipChanged  the members changed since the change the client last saw
 ├── InvalidInput    well-formed request with values the rules refuse
 ├── GroupFull       a conversation would exceed the member limit
 ├── CrossTenant     the tenants involved have not both allowed each other
 └── QuotaExceeded   an upload does not fit the user's quota or the tenant's capacity
"""

from __future__ import annotations


class StoreError(Exception):
    code = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(StoreError):
    code = "not_found"


class Forbidden(StoreError):
    code = "forbidden"


class Conflict(StoreError):
    code = "conflict"


class MembershipChanged(Conflict):
    code = "membership_changed"


class InvalidInput(StoreError):
    code = "bad_request"


class GroupFull(StoreError):
    code = "group_full"


class CrossTenant(StoreError):
    code = "cross_tenant"


class QuotaExceeded(StoreError):
    code = "quota_exceeded"
