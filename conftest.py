"""The audit suite's pytest wiring: plugins (hooks) and fixtures, loaded for audits/ and tests/ alike."""

pytest_plugins = [
    "plugins.options",
    "plugins.settings",
    "plugins.interruptions",
    "plugins.markers",
    "plugins.parametrize",
    "plugins.distribution",
    "plugins.recording",
    "plugins.errors",
    "plugins.worker_channel",
    "plugins.progress",
    "plugins.collection",
    "plugins.collector",
    "plugins.writer",
    "plugins.presenters",
    "fixtures.models",
    "fixtures.data",
    "fixtures.recording",
]
