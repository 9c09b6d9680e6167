"""The shared bottom layer: every app may import it; it imports no app."""
