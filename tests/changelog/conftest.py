"""Store tests run against both backends through the `stores` fixture
(orchestrator/lab/pytest_plugin.py)."""
