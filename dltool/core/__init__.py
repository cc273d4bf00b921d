"""Shared engine: errors, console, device, seeding, I/O, tables, training loop.

Nothing here imports a domain package; domains import from here.
"""
