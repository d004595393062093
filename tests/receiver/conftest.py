from tests.receiver.support import events_table, receiver, webhook_secret  # noqa: F401 - fixtures
