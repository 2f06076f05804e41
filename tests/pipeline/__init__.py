"""Pipeline tests; real services in :mod:`tests.pipeline.services`."""
