"""The audit suite's pytest wiring: plugins (hooks) and fixtures, loaded for audits/ and tests/ alike.

Listed so that a plugin comes after the plugins it imports (pytest warns when a plugin module was
imported before it registers it)."""

pytest_plugins = [
    "plugins.options",
    "plugins.settings",
    "plugins.interruptions",
    "plugins.markers",
    "plugins.parametrize",
    "plugins.record_transport",
    "plugins.error_display",
    "plugins.worker_channel",
    "plugins.run_notes",
    "plugins.data_check",
    "plugins.selection",
    "plugins.baseline",
    "plugins.sharding",
    "plugins.collector",
    "plugins.distribution",
    "plugins.progress",
    "plugins.json_report",
    "plugins.terminal_summary",
    "plugins.html_page",
    "fixtures.models",
    "fixtures.data",
    "fixtures.recording",
    "fixtures.baseline",
    "fixtures.corruption",
]
