"""Console pages of the exceptions app: `triage` for finance operations, `manage` for managers' configuration."""
