"""Progress of each job, fanned out to whoever follows it (the SSE route).

A follower that falls behind drops events rather than holding the
scheduler back: it reads the job object again at the end anyway.
"""

import asyncio
import collections

BACKLOG = 256


class Events:
    def __init__(self):
        self.followers: dict[str, set[asyncio.Queue]] = collections.defaultdict(set)

    def follow(self, job_id: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(BACKLOG)
        self.followers[job_id].add(queue)
        return queue

    def leave(self, job_id: str, queue: asyncio.Queue) -> None:
        queues = self.followers.get(job_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self.followers[job_id]

    def publish(self, job_id: str, kind: str, data: dict) -> None:
        for queue in self.followers.get(job_id, ()):
            try:
                queue.put_nowait((kind, data))
            except asyncio.QueueFull:
                pass
