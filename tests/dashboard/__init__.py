"""Dashboard tests; their sample data in :mod:`tests.dashboard.sample_home`."""
