"""The lab's EWS face: SOAP framework (`soap`), ids, and one module per group of operations."""
