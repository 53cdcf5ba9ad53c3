"""Posts receipts back to the service when they fall due, with bounded threads and memory.

One scheduler thread keeps due times in a heap and hands due receipts to a small pool of
posting threads; at most `max_pending` receipts wait at once (more are dropped and logged). A
receipt the service refuses or can't take is logged and dropped: the fake never stops over it.
"""

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests

from fakes.providers import Receipt

logger = logging.getLogger(__name__)


class ReceiptSender:
    def __init__(
        self,
        *,
        base_url: str | None,
        workers: int = 4,
        max_pending: int = 100_000,
        timeout: float = 5.0,
        keep: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout = timeout
        self.max_pending = max_pending
        self._clock = clock
        self._heap: list[tuple[float, int, Receipt]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._stopped = False
        # Bounds the receipts handed to the pool and not yet posted.
        self._in_flight = threading.BoundedSemaphore(workers * 2)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="fake-receipts")
        self._sessions = threading.local()
        self._log: deque[dict] = deque(maxlen=keep)
        self._thread = threading.Thread(
            target=self._run, name="fake-receipts-scheduler", daemon=True
        )

    @property
    def enabled(self) -> bool:
        return self.base_url is not None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def clear(self) -> None:
        with self._changed:
            self._heap.clear()
            self._log.clear()

    def schedule(self, receipt: Receipt, delay: float) -> bool:
        with self._changed:
            if len(self._heap) >= self.max_pending:
                logger.warning(
                    "fake receipt dropped: too many waiting",
                    extra={"provider": receipt.provider, "pending": len(self._heap)},
                )
                return False
            heapq.heappush(self._heap, (self._clock() + delay, next(self._order), receipt))
            self._changed.notify()
        return True

    def pending(self) -> int:
        with self._changed:
            return len(self._heap)

    def posted(self) -> list[dict]:
        with self._changed:
            return list(self._log)

    def url_for(self, receipt: Receipt) -> str:
        if receipt.url.startswith(("http://", "https://")):
            return receipt.url
        return f"{self.base_url}{receipt.url}"

    def _run(self) -> None:
        while True:
            with self._changed:
                receipt = self._next_due()
                if receipt is None:
                    return
            while not self._in_flight.acquire(timeout=0.2):
                if self._stopped:
                    return
            self._pool.submit(self._post, receipt)

    def _next_due(self) -> Receipt | None:
        """Wait (holding the condition) until a receipt is due; None once stopped."""
        while not self._stopped:
            if not self._heap:
                self._changed.wait()
                continue
            wait = self._heap[0][0] - self._clock()
            if wait > 0:
                self._changed.wait(wait)
                continue
            return heapq.heappop(self._heap)[2]
        return None

    def _post(self, receipt: Receipt) -> None:
        url = self.url_for(receipt)
        record = {
            "provider": receipt.provider,
            "url": url,
            "reference": receipt.reference,
            "status": receipt.status,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        try:
            response = self._session().post(
                url,
                data=receipt.body,
                headers={"Content-Type": receipt.content_type, **receipt.headers},
                timeout=self.timeout,
            )
            record["answer"] = response.status_code
            if not response.ok:
                logger.warning(
                    "fake receipt refused",
                    extra={"provider": receipt.provider, "status_code": response.status_code},
                )
        except requests.RequestException as err:
            record["answer"] = type(err).__name__
            logger.warning(
                "fake receipt not delivered",
                extra={"provider": receipt.provider, "error": type(err).__name__},
            )
        finally:
            self._in_flight.release()
            with self._changed:
                self._log.append(record)

    def _session(self) -> requests.Session:
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session
