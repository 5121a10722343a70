"""The lab's Microsoft Graph face: Entra-like OAuth and Graph REST over the lab's store."""

from exlab.graph.app import GraphFace, create_graph_app, mount_graph

__all__ = ["GraphFace", "create_graph_app", "mount_graph"]
