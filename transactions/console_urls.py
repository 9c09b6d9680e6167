"""Console pages of the transactions app (HTML)."""

urlpatterns: list = []
