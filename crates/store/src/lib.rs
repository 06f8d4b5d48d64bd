//! Database pool over SQLite (embedded default) and PostgreSQL, migrations, notifications for long polling, test harness.
