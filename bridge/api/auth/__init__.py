"""Authentication of API callers: Negotiate (Kerberos), OAuth bearer JWTs and API keys.

`Authenticator.caller(request)` answers who is calling or raises a 401 problem whose
`WWW-Authenticate` headers list the schemes this API is configured for.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from bridge.api.auth.bearer import BearerValidator
from bridge.api.auth.caller import ALL_SCOPES, Caller
from bridge.api.auth.keys import ApiKeys, new_key
from bridge.api.auth.negotiate import NegotiateAcceptor
from bridge.api.problems import ApiProblem
from bridge.api.settings import ApiSettings

__all__ = ["ALL_SCOPES", "Authenticator", "Caller", "new_key"]

API_KEY_HEADER = "X-API-Key"


class Authenticator:
    def __init__(self, settings: ApiSettings) -> None:
        self.negotiate = NegotiateAcceptor(settings.negotiate) if settings.negotiate else None
        self.bearer = BearerValidator(settings.oauth) if settings.oauth else None
        self.keys = ApiKeys(settings.keys)

    def challenges(self) -> list[str]:
        offered = []
        if self.negotiate is not None:
            offered.append("Negotiate")
        if self.bearer is not None:
            offered.append('Bearer realm="medbridge"')
        offered.append('ApiKey header="X-API-Key"')
        return offered

    def _refuse(self, detail: str) -> ApiProblem:
        return ApiProblem(
            401,
            "unauthenticated",
            "Authentication required",
            detail,
            headers={"WWW-Authenticate": ", ".join(self.challenges())},
        )

    async def caller(self, request: Request) -> Caller:
        """Who is calling.

        Raises:
            ApiProblem: 401 with the accepted schemes when no credential checks out.
        """
        key = request.headers.get(API_KEY_HEADER)
        if key and "authorization" in request.headers:
            raise self._refuse("Send one credential: an API key or an Authorization header.")
        if key:
            found = self.keys.caller(key)
            if found is None:
                raise self._refuse("The API key is not valid.")
            return found
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "negotiate" and self.negotiate is not None and value:
            accepted = await run_in_threadpool(self.negotiate.accept, value)
            if accepted is None:
                raise self._refuse("The Kerberos ticket was not accepted.")
            return accepted
        if scheme == "bearer" and self.bearer is not None and value:
            validated = await run_in_threadpool(self.bearer.validate, value)
            if validated is None:
                raise self._refuse("The bearer token is not valid for this API.")
            return validated
        raise self._refuse("Sign in with " + " or ".join(self.challenges()) + ".")
