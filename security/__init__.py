"""Identity, authorization helpers and payload encryption shared by the API, the workers
and the tools: nothing here names a vendor or a workflow."""
