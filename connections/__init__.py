"""Stored connections: a tenant's CRM or chat connected once, its secrets encrypted here, calls naming its id.

crypto.py (keys, encryption, fingerprints), store.py (the storage interface), sqlite.py and postgres.py (its
backends, with migrations), manager.py (validation, cache, rotation), routes.py (the admin API), __main__.py (CLI).
"""
