"""Console pages of the transactions app, one module per audience: `transactions` (everyone who reads transactions),
`ingest` (the integration role) and `processes` (managers). Routes are in transactions/urls.py.

Plain function views: they read through selectors, write through services (which audit in the same transaction),
and turn a service's DomainError into a message or a form error, never a 500 (console.lib.views has the helpers).
"""
