"""Browser fixtures (being built): one Debian Chromium per test session via Playwright."""
