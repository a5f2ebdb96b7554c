pytest_plugins = ["tests.support.fixtures", "tests.simulator.fixtures"]
