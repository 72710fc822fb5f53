from gitrepo import repo  # noqa: F401 - the fixture
