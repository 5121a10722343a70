"""The Microsoft Graph backend (O365), as a package of the parts every backend has.

- `backend`: `GraphBackend`, the `med.backends.base.Backend` over Graph.
- `connection`: O365's connection and protocol pointed at the configured Graph host.
- `convert`: Graph JSON <-> `med.model` values, and med's ids for Graph objects.
- `errors`: the Graph error-code table and the translation of error answers.
- `events`: change notifications (with their listener) and delta polling as `MailboxEvent`s.

Graph needs no patches: O365 is adapted by subclasses, never changed for the whole process.
"""

from med.backends.graph.backend import GraphBackend
from med.backends.graph.errors import GRAPH_CODES, translate

__all__ = ["GRAPH_CODES", "GraphBackend", "translate"]
