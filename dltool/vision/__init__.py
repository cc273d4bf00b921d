"""Computer vision tasks."""
