"""The audit suite's pytest wiring: plugins (hooks) and fixtures, loaded for audits/ and tests/ alike."""

pytest_plugins = [
    "plugins.options",
    "plugins.settings",
    "plugins.parametrize",
    "plugins.distribution",
    "plugins.recording",
    "plugins.errors",
    "plugins.report",
    "fixtures.models",
    "fixtures.data",
    "fixtures.recording",
]
