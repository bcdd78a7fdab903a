"""The audit suite's pytest wiring: plugins (hooks) and fixtures, loaded for audits/ and tests/ alike."""

pytest_plugins = [
    "plugins.options",
    "plugins.settings",
    "plugins.markers",
    "plugins.parametrize",
    "plugins.distribution",
    "plugins.recording",
    "plugins.errors",
    "plugins.collector",
    "plugins.writer",
    "plugins.presenters",
    "fixtures.models",
    "fixtures.data",
    "fixtures.recording",
]
