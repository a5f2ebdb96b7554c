import os

# The settings default to production; tests run the development configuration, as `make run` does.
os.environ.setdefault("ENVIRONMENT", "development")

pytest_plugins = ["tests.support.fixtures", "tests.simulator.fixtures"]
