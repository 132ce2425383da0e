import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster: the Ray Serve team server (model.cluster); -m cluster or -k ray")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/cluster/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.cluster)
