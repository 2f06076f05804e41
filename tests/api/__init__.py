"""API tests; shared helpers in :mod:`tests.api.helpers`."""
