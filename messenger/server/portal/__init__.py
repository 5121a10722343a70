"""The admin web portal at `/admin`: server-rendered pages (Jinja2, plain forms, no script)
for instance and tenant administrators; see docs/messenger-portal.md."""

from messenger.server.portal.pages import install

__all__ = ["install"]
