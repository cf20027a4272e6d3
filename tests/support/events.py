"""A real Redis subscriber, as AppV2 subscribes (plain SUBSCRIBE), and predicates on what it received."""

from __future__ import annotations

from tests.support.waiting import wait_until


class Subscriber:
    """A real Redis subscriber (plain SUBSCRIBE, as AppV2 does) collecting messages in a thread."""

    def __init__(self, redis_url: str, channels: tuple[str, ...]):
        import threading

        import redis

        self.messages: list[tuple[str, dict]] = []
        self._client = redis.Redis.from_url(redis_url)
        self._pubsub = self._client.pubsub()
        self._pubsub.subscribe(*channels)
        confirmed = 0
        while confirmed < len(channels):  # wait until every SUBSCRIBE is acknowledged
            message = self._pubsub.get_message(timeout=5)
            if message is None:
                raise RuntimeError("SUBSCRIBE was not acknowledged")
            confirmed += message["type"] == "subscribe"
        self._stop = threading.Event()
        self._hook = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def on_message(self, hook) -> None:
        """Call hook(channel, body) in the subscriber thread as each message arrives."""
        self._hook = hook

    def _run(self) -> None:
        import json

        import redis

        while not self._stop.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.1)
            except redis.ConnectionError:
                return
            if message and message["type"] == "message":
                channel = message["channel"].decode()
                body = json.loads(message["data"])
                if self._hook is not None:
                    self._hook(channel, body)
                self.messages.append((channel, body))

    def events(self, name: str | None = None, channel: str | None = None) -> list[tuple[str, dict]]:
        return [(c, b) for c, b in list(self.messages)
                if (name is None or b.get("event") == name) and (channel is None or c == channel)]

    def wait_for(self, predicate, timeout: float = 30.0) -> list[tuple[str, dict]]:
        try:
            wait_until(lambda: predicate(list(self.messages)), timeout, "the awaited events", every=0.02)
        except AssertionError as err:
            raise AssertionError(f"{err}; received: {[(c, b.get('event')) for c, b in self.messages]}") from None
        return list(self.messages)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._pubsub.close()
        self._client.close()


def completed(job_id: str):
    """Predicate: the cache_sync_completed event of `job_id` arrived on AppV2's channel."""
    from tickstockpl.events import catalog

    def check(messages) -> bool:
        return any(c == catalog.CACHE_SYNC_COMPLETE and b["payload"].get("job_id") == job_id for c, b in messages)

    return check
