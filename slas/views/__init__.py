"""Console pages of the slas app."""
