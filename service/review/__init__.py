"""Review writes with an audit trail, callable from the API, the CLI or a trigger: they take the workspace,
the dataset's lock and its audit log, never a request or the API's state."""
